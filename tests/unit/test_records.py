"""vsearch/records.py: CSV/TSV/JSON/JSONL/text readers, format detection and the errors a user sees (the same
errors through the CLI: tests/e2e/test_records.py)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vsearch.records as records
from vsearch.errors import InputError, UsageError
from vsearch.records import (Format, Record, detect_format, image_folder, is_image_source, is_unicode, read_lines,
                             read_records, read_source, read_stream, sniff_format)

# Every value a string, so that CSV/TSV (which only know strings) and JSON can hold the same records.
ROWS = [
    {"id": "a1", "text": "plain words", "n": "1"},
    {"id": "b2", "text": "comma, and \"quotes\" and ünïcödé ☃", "n": "-2.5"},
    {"id": "c3", "text": "", "n": "300"},
]


def _delimited(rows: list[dict], sep: str) -> str:
    def cell(value: str) -> str:
        if any(c in value for c in (sep, '"', "\n")):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [sep.join(rows[0])] + [sep.join(cell(v) for v in row.values()) for row in rows]
    return "\n".join(lines) + "\n"


def write_same_data(tmp_path: Path, fmt: str, rows: list[dict] = ROWS) -> Path:
    path = tmp_path / f"data.{fmt}"
    if fmt == "csv":
        path.write_text(_delimited(rows, ","), encoding="utf-8")
    elif fmt == "tsv":
        path.write_text(_delimited(rows, "\t"), encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def data(path: Path | str, fmt: Format) -> list[dict]:
    return [r.check().data for r in read_records(str(path), fmt)]


def input_error(call) -> str:
    with pytest.raises(InputError) as caught:
        call()
    return str(caught.value)


# ---------------------------------------------------------------------------------------------------
# Same data, every format


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl"])
def test_every_format_gives_the_same_records(tmp_path, fmt) -> None:
    path = write_same_data(tmp_path, fmt)
    detected = detect_format(str(path), None)
    assert detected is Format(fmt)
    got = list(read_records(str(path), detected))
    assert [r.data for r in got] == ROWS
    assert {r.source for r in got} == {str(path)}
    # Lines say where each record is, so that errors can point at it.
    expected_lines = {"csv": [2, 3, 4], "tsv": [2, 3, 4], "jsonl": [1, 2, 3], "json": [2, 7, 12]}[fmt]
    assert [r.line for r in got] == expected_lines
    assert got[1].where() == f"{path} line {expected_lines[1]}"


def test_csv_with_a_byte_order_mark(tmp_path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _delimited(ROWS, ",").replace("\n", "\r\n").encode("utf-8"))
    assert data(path, Format.csv) == ROWS
    assert list(data(path, Format.csv)[0]) == ["id", "text", "n"]  # not '\ufeffid'


def test_tsv_keeps_commas_and_spaces_and_skips_blank_rows(tmp_path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text("id\tname\tnote\n1\tSmith, John\t a b \n\n2\tDoe, Jane\tx,y\n", encoding="utf-8")
    got = list(read_records(str(path), Format.tsv))
    assert [r.data for r in got] == [{"id": "1", "name": "Smith, John", "note": " a b "},
                                     {"id": "2", "name": "Doe, Jane", "note": "x,y"}]
    assert [r.line for r in got] == [2, 4]


def test_csv_header_names_are_trimmed_and_must_be_unique(tmp_path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(" id , text \n1,hello\n", encoding="utf-8")
    assert data(path, Format.csv) == [{"id": "1", "text": "hello"}]
    path.write_text("id,text,id\n1,2,3\n", encoding="utf-8")
    assert input_error(lambda: data(path, Format.csv)).startswith(f"{path} line 1: ")


def test_empty_files_give_no_records(tmp_path) -> None:
    for fmt in Format:
        path = tmp_path / f"empty.{fmt.value}"
        path.write_text("[]" if fmt is Format.json else "", encoding="utf-8")
        assert data(path, fmt) == []


def test_json_array_and_single_object(tmp_path) -> None:
    array = tmp_path / "array.json"
    array.write_text('  [ {"id": 1, "tags": ["x", "y"]} , {"id": 2, "meta": {"k": null}} ]  \n', encoding="utf-8")
    assert data(array, Format.json) == [{"id": 1, "tags": ["x", "y"]}, {"id": 2, "meta": {"k": None}}]

    single = tmp_path / "one.json"
    single.write_text('\n{\n  "id": "only",\n  "vector": [0.5, 1e-3]\n}\n', encoding="utf-8")
    got = list(read_records(str(single), Format.json))
    assert [r.data for r in got] == [{"id": "only", "vector": [0.5, 0.001]}]
    assert got[0].line == 2


def test_jsonl_with_blank_lines(tmp_path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text('\n{"id": 1}\n\n   \n{"id": 2, "s": "a\\nb"}\r\n\n', encoding="utf-8")
    got = list(read_records(str(path), Format.jsonl))
    assert [r.data for r in got] == [{"id": 1}, {"id": 2, "s": "a\nb"}]
    assert [r.line for r in got] == [2, 5]


# ---------------------------------------------------------------------------------------------------
# The streaming JSON reader across chunk boundaries

TRICKY_JSON = r"""[
  {"id": 1, "nested": {"a": [1, 22, {"b": null, "c": [true, false]}], "d": {}}, "n": 123456789},
  {"id": 22, "s": "he said \"[not an array]\" {nor an object}, ok", "esc": "back\\slash \\\" ] , }"},
  {"f": -1.5e-3, "g": 0, "h": 1E+10, "i": -0.0, "u": "\u00fcn\u00efc\u00f8d\u00e9 ☃ \ud83d\ude00", "list": []},

  {"last": 7777777}
]
"""
COMPACT_JSON = '[{"a":1},{"a":22},{"a":333},{"a":4444,"b":[55555]},{"s":"]\\"["}]'


@pytest.mark.parametrize("chunk", [1, 2, 7])
@pytest.mark.parametrize("text", [TRICKY_JSON, COMPACT_JSON], ids=["multiline", "compact"])
def test_streaming_json_matches_json_load(tmp_path, monkeypatch, chunk, text) -> None:
    path = tmp_path / "tricky.json"
    path.write_text(text, encoding="utf-8")
    expected = json.loads(text)
    default = list(read_records(str(path), Format.json))
    monkeypatch.setattr(records, "JSON_CHUNK", chunk)
    got = list(read_records(str(path), Format.json))
    assert [r.data for r in got] == expected
    assert [r.line for r in got] == [r.line for r in default]
    if text is TRICKY_JSON:
        assert [r.line for r in got] == [2, 3, 4, 6]


@pytest.mark.parametrize("chunk", [1, 2, 7])
def test_streaming_json_single_object_in_tiny_chunks(tmp_path, monkeypatch, chunk) -> None:
    path = tmp_path / "one.json"
    text = '{"id": 12345, "s": "}\\"{", "x": [1.25, -3]}'
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(records, "JSON_CHUNK", chunk)
    assert data(path, Format.json) == [json.loads(text)]


# ---------------------------------------------------------------------------------------------------
# Errors name the file and the line


def test_csv_row_with_the_wrong_number_of_fields(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    # Record 2 spans lines 3-4 (a quoted newline), so the bad row is on line 5.
    path.write_text('id,text,n\n1,ok,1\n2,"two\nlines",2\n3,short\n4,never,4\n', encoding="utf-8")
    records = list(read_records(str(path), Format.csv))
    assert [r.data.get("id") for r in records] == ["1", "2", None, "4"]  # the reader goes on past the bad row
    bad = records[2]
    assert input_error(bad.check) == f"{path} line 5: 2 fields, but the header has 3"
    assert bad.raw == "3,short\n"  # exactly as received, for --rejects
    assert records[1].raw == '2,"two\nlines",2\n'


def test_malformed_quoting_in_csv(tmp_path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('id,text\n1,"fine"\n2,"broken"x\n', encoding="utf-8")
    message = input_error(lambda: data(path, Format.csv))
    assert message.startswith(f"{path} line 3: malformed CSV")


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_malformed_json_array_element_names_its_line(tmp_path, monkeypatch, chunk) -> None:
    if chunk:
        monkeypatch.setattr(records, "JSON_CHUNK", chunk)
    path = tmp_path / "bad.json"
    # Element 3 starts on line 4; its error is on line 5.
    path.write_text('[\n  {"id": 1},\n  {"id": 2},\n  {"id": 3,\n   "x": 1,,\n   "y": 2},\n  {"id": 4}\n]\n',
                    encoding="utf-8")
    seen: list[int] = []

    def consume() -> None:
        for record in read_records(str(path), Format.json):
            seen.append(record.data["id"])

    message = input_error(consume)
    assert message.startswith(f"{path} line 5: malformed JSON")
    assert seen == [1, 2]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[\n  {"id": 1},\n  5\n]', 3, "expected a JSON object, got int"),
        ('[\n  {"id": 1},\n  ["a"]\n]', 3, "expected a JSON object, got list"),
        ('[\n  {"id": 1}\n  {"id": 2}\n]', 3, "malformed JSON (expected ','"),
        ('[\n  {"id": 1},\n', 3, "malformed JSON"),
        ('[{"id": 1}]\n\n]', 3, "extra data"),
        ('"just a string"', 1, "malformed JSON (expected '['"),
    ],
    ids=["number-element", "array-element", "missing-comma", "truncated", "extra-data", "not-an-array"],
)
def test_json_structure_errors(tmp_path, text, line, words) -> None:
    path = tmp_path / "s.json"
    path.write_text(text, encoding="utf-8")
    message = input_error(lambda: data(path, Format.json))
    assert message.startswith(f"{path} line {line}: ")
    assert words in message


def test_malformed_jsonl_line(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2, "text": "unterminated}\n{"id": 4}\n', encoding="utf-8")
    message = input_error(lambda: data(path, Format.jsonl))
    assert message.startswith(f"{path} line 3: malformed JSON")


def test_jsonl_line_that_is_an_array(tmp_path) -> None:
    path = tmp_path / "arr.jsonl"
    path.write_text('{"id": 1}\n[{"id": 2}]\n', encoding="utf-8")
    assert input_error(lambda: data(path, Format.jsonl)) == f"{path} line 2: expected a JSON object, got list"


@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
@pytest.mark.parametrize("fmt", [*Format, "lines"], ids=lambda f: getattr(f, "value", f))
def test_non_utf8_bytes_name_the_file_and_line(tmp_path, monkeypatch, fmt, via_stdin) -> None:
    body = {"csv": "id,text\n1,ok\n2,caf\xe9\n", "tsv": "id\ttext\n1\tok\n2\tcaf\xe9\n",
            "json": '[{"text": "ok"},\n {"text": "fine"},\n {"text": "caf\xe9"}]',
            "jsonl": '{"text": "ok"}\n\n{"text": "caf\xe9"}\n', "lines": "ok\n\ncaf\xe9\n"}[getattr(fmt, "value", fmt)]
    path = tmp_path / "latin1.bin"
    path.write_bytes(body.encode("latin-1"))
    name = str(path)
    if via_stdin:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body.encode("latin-1"))))
        name = "-"
    reader = (lambda: list(read_lines(name))) if fmt == "lines" else (lambda: data(name, fmt))
    shown = "<stdin>" if via_stdin else str(path)
    column = "" if fmt is Format.json else " at column 14" if fmt is Format.jsonl else " at column 6" if fmt != "lines" else " at column 4"
    assert input_error(reader) == f"{shown} line 3: not UTF-8 text (byte 0xe9{column})"


@pytest.mark.parametrize("fmt", [*Format, "lines"], ids=lambda f: getattr(f, "value", f))
def test_missing_file(tmp_path, fmt) -> None:
    path = tmp_path / "nowhere.txt"
    reader = (lambda: list(read_lines(str(path)))) if fmt == "lines" else (lambda: data(path, fmt))
    assert input_error(reader) == f"file not found: {path}"


# ---------------------------------------------------------------------------------------------------
# detect_format


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.csv", Format.csv), ("A.CSV", Format.csv), ("a.tsv", Format.tsv), ("a.tab", Format.tsv),
     ("a.json", Format.json), ("a.jsonl", Format.jsonl), ("a.ndjson", Format.jsonl)],
)
def test_detect_format_by_extension(tmp_path, name, expected) -> None:
    path = tmp_path / name
    path.write_text("this content would sniff as nothing at all\n", encoding="utf-8")
    assert detect_format(str(path), None) is expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('  \n[{"id": 1}]', Format.json),
        ('{"id": 1}\n{"id": 2}\n', Format.jsonl),
        ('{\n  "id": 1\n}\n', Format.json),
        ("id\ttext, with comma\n1\thello\n", Format.tsv),
        ("id,text\n1,hello\n", Format.csv),
        ("\ufeffid,text\n1,hello\n", Format.csv),
    ],
    ids=["json-array", "jsonl", "json-object", "tsv", "csv", "csv-bom"],
)
def test_detect_format_by_sniffing_an_unknown_extension(tmp_path, content, expected) -> None:
    path = tmp_path / "export.dat"
    path.write_text(content, encoding="utf-8")
    assert detect_format(str(path), None) is expected
    assert len(data(path, expected)) >= 1  # and the sniffed format really reads it


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl"])
def test_stdin_is_sniffed_and_then_read_from_its_start(tmp_path, monkeypatch, fmt) -> None:
    body = write_same_data(tmp_path, fmt).read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body), encoding="utf-8"))
    detected = detect_format("-", None)
    assert detected is Format(fmt)
    got = list(read_records("-", detected))
    assert [r.data for r in got] == ROWS  # the peeked bytes were not lost
    assert {r.source for r in got} == {"<stdin>"}


def test_explicit_format_wins(tmp_path) -> None:
    path = tmp_path / "mislabelled.csv"
    path.write_text('{"id": 1}\n', encoding="utf-8")
    assert detect_format(str(path), Format.jsonl) is Format.jsonl
    assert detect_format(str(tmp_path / "whatever.dat"), Format.tsv) is Format.tsv  # not even opened


@pytest.mark.parametrize("content", ["just some words\nand more\n", "", "\n  \n"], ids=["prose", "empty", "blank"])
def test_unknown_format_asks_for_format(tmp_path, content) -> None:
    path = tmp_path / "notes.dat"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as caught:  # the command line must say which format: a usage error
        detect_format(str(path), None)
    assert "--format" in str(caught.value) and str(path) in str(caught.value)


# ---------------------------------------------------------------------------------------------------
# read_lines


def test_read_lines_skips_blank_lines_and_numbers_by_line(tmp_path) -> None:
    path = tmp_path / "texts.txt"
    path.write_bytes("\ufefffirst\n\n   \n  second, with comma  \r\n\t\nthird".encode("utf-8"))
    got = list(read_lines(str(path)))
    assert [r.data for r in got] == [{"id": "1", "text": "first"}, {"id": "4", "text": "second, with comma"},
                                     {"id": "6", "text": "third"}]
    assert [r.line for r in got] == [1, 4, 6]


# ---------------------------------------------------------------------------------------------------
# A first JSONL record longer than what detect_format peeks at


class ShortReads(io.RawIOBase):
    """A pipe: each read gives at most `size` bytes, so a peek at stdin sees only the first of them."""

    def __init__(self, data: bytes, size: int) -> None:
        self.source, self.size = io.BytesIO(data), size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.source.read(min(len(buffer), self.size))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def _long_jsonl(rows: int = 3) -> bytes:
    # `vsearch encode` output of 384-d vectors is ~8 KB a line; long texts make longer lines still.
    return "".join(json.dumps({"id": f"r{i}", "vector": [0.123456789] * 384, "text": "word " * 4000}) + "\n"
                   for i in range(rows)).encode()


def test_a_piped_jsonl_whose_first_line_is_longer_than_one_read_is_jsonl(monkeypatch) -> None:
    """`vsearch encode texts.txt | vsearch load NAME -`: a pipe gives 4 KiB a read, and a line cut there does not
    parse; it was taken for a JSON object over several lines, and the load failed at line 2 with 'extra data'."""
    body = _long_jsonl()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(ShortReads(body, 4096))))
    detected = detect_format("-", None)
    assert detected is Format.jsonl
    assert [r.check().data["id"] for r in read_records("-", detected)] == ["r0", "r1", "r2"]


def test_a_jsonl_file_whose_first_line_is_longer_than_the_peek_is_jsonl(tmp_path) -> None:
    path = tmp_path / "export.dat"  # no extension to go by
    path.write_bytes(_long_jsonl().replace(b'"text": "', b'"text": "' + b"x" * 70_000))
    assert detect_format(str(path), None) is Format.jsonl
    assert len(data(path, Format.jsonl)) == 3


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'{"id": 1, "text": "' + b"w" * 10_000, Format.jsonl),  # cut mid-line: a long JSONL record
        (b'{"id": 1}', Format.jsonl),  # one object on one line reads the same either way
        (b'{"id": 1,\n "text": "x"}\n', Format.json),  # an object over several lines
        (b"{\n", Format.json),
    ],
    ids=["cut-first-line", "one-line-object", "multi-line-object", "brace-alone"],
)
def test_sniff_format_of_objects(head, expected) -> None:
    assert sniff_format(head) is expected


# ---------------------------------------------------------------------------------------------------
# Record: where it came from, and its errors


def test_a_record_names_its_source_and_line_in_every_error() -> None:
    good = Record("in.csv", 4, {"id": "1", "text": "x"})
    assert good.where() == "in.csv line 4" and good.check() is good and good.value("text") == "x"
    with pytest.raises(InputError) as caught:
        good.value("title")
    assert str(caught.value) == "in.csv line 4: no field 'title' (fields: id, text)"
    with pytest.raises(InputError) as caught:
        Record("<stdin>", 9, {}, error="malformed JSON (Expecting value at column 3)").check()
    assert str(caught.value) == "<stdin> line 9: malformed JSON (Expecting value at column 3)"


def test_a_missing_field_lists_at_most_twelve_of_the_fields() -> None:
    wide = Record("w.csv", 2, {f"c{i}": "" for i in range(30)})
    with pytest.raises(InputError) as caught:
        wide.value("id")
    assert str(caught.value).endswith("(fields: " + ", ".join(f"c{i}" for i in range(12)) + ")")


@pytest.mark.parametrize(("text", "unicode"), [("plain", True), ("Größe 東京 🙂", True), ("\ud800", False),
                                               ("bad\udcffname.jpg", False), ("", True)])
def test_is_unicode_is_whether_redis_can_hold_the_text(text, unicode) -> None:
    assert is_unicode(text) is unicode


# ---------------------------------------------------------------------------------------------------
# Image folders and globs


@pytest.mark.parametrize(("source", "folder"), [("icons/*/*.png", "icons"), ("a/b/c?.jpg", "a/b"),
                                                ("/abs/x/*.jpg", "/abs/x"), ("a/[ab]/x.png", "a"),
                                                ("photos/**/*.jpg", "photos")])
def test_a_glob_s_ids_start_at_its_parts_before_the_first_wildcard(source, folder) -> None:
    assert image_folder(source) == Path(folder)


def test_a_glob_that_starts_with_a_wildcard_starts_at_the_working_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert image_folder("*.png") == tmp_path


def _images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.jpg", "sub/c.PNG", "sub/d.svg", "notes.txt", "a.webp"):
        (folder / name).write_bytes(b"x")
    (folder / "sub" / "dir.jpg").mkdir()  # a folder named like an image is no image
    (folder / "link.jpg").symlink_to(folder / "b.jpg")
    return folder


def test_a_folder_lists_its_images_by_relative_path_sorted_with_symlinks_under_their_own_name(tmp_path) -> None:
    folder = _images(tmp_path)
    got = list(read_source(str(folder), None))
    ids = ["a.webp", "b.jpg", "link.jpg", "sub/c.PNG", "sub/d.svg"]  # SVG listed, to be named as unsupported
    assert [r.data for r in got] == [{"id": i, "image": i} for i in ids]
    assert [r.line for r in got] == [1, 2, 3, 4, 5] and {r.source for r in got} == {str(folder)}


def test_a_glob_lists_what_it_matches_relative_to_its_fixed_part(tmp_path) -> None:
    folder = _images(tmp_path)
    assert [r.data["id"] for r in read_source(str(folder / "*" / "*.PNG"), None)] == ["sub/c.PNG"]
    assert [r.data["id"] for r in read_source(str(folder / "*.jpg"), None)] == ["b.jpg", "link.jpg"]


def test_a_folder_or_glob_is_an_image_source_and_a_file_or_stdin_is_not(tmp_path) -> None:
    folder = _images(tmp_path)
    assert is_image_source(str(folder)) and is_image_source(str(folder / "*.jpg"))
    assert not is_image_source("-") and not is_image_source(str(folder / "notes.txt"))
    assert not is_image_source(str(tmp_path / "absent.csv"))
    odd = tmp_path / "odd[1].csv"  # a file whose name looks like a glob is a file
    odd.write_text("id\n1\n")
    assert not is_image_source(str(odd))


def test_a_file_name_that_is_not_utf8_is_one_record_with_an_error(tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"bad\xffname.jpg"), "wb") as handle:
        handle.write(b"x")
    (folder / "good.jpg").write_bytes(b"x")
    got = list(read_source(str(folder), None))
    assert [r.data for r in got] == [{}, {"id": "good.jpg", "image": "good.jpg"}]
    assert got[0].error == "file name 'bad\\udcffname.jpg' is not UTF-8: it cannot be an id; rename the file".replace(
        "'bad", f"'{folder}/bad")


# ---------------------------------------------------------------------------------------------------
# Parsers, drawn by hypothesis: what a writer of each format writes reads back the same, line by line

few = settings(max_examples=20, deadline=None)
column_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8).map(
    str.strip).filter(bool)
cells = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5)
objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)


@few
@given(header=st.lists(column_names, min_size=1, max_size=4, unique=True), data=st.data(),
       fmt=st.sampled_from([Format.csv, Format.tsv]))
def test_any_csv_or_tsv_a_csv_writer_makes_reads_back_with_its_lines(header, data, fmt) -> None:
    rows = data.draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=4))
    out = io.StringIO()
    csv.writer(out, delimiter="\t" if fmt is Format.tsv else ",", lineterminator="\r\n").writerows([header, *rows])
    got = list(read_stream(io.BytesIO(out.getvalue().encode()), "drawn", fmt))
    assert [r.error for r in got] == [None] * len(rows)
    assert [r.data for r in got] == [dict(zip(header, row)) for row in rows]
    # A record ends on its last physical line: one, and one more for each line break its quoted cells hold.
    def lines(row: list[str]) -> int:
        return 1 + sum(c.count("\n") + c.count("\r") - c.count("\r\n") for c in row)

    assert [r.line for r in got] == list(itertools.accumulate(map(lines, rows), initial=lines(header)))[1:]
    assert "".join(r.raw for r in got) == out.getvalue().split("\r\n", 1)[1]


@few
@given(rows=st.lists(objects, max_size=4), chunk=st.integers(1, 9), indent=st.sampled_from([None, 2]),
       ascii=st.booleans())
def test_any_json_array_reads_back_element_by_element_whatever_the_chunks(rows, chunk, indent, ascii) -> None:
    text = json.dumps(rows, indent=indent, ensure_ascii=ascii)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(records, "JSON_CHUNK", chunk)
        assert [r.data for r in read_stream(io.BytesIO(text.encode()), "drawn", Format.json)] == rows


@few
@given(rows=st.lists(objects, max_size=4), blank=st.sampled_from(["", "\n", "  \n"]), ascii=st.booleans())
def test_any_jsonl_reads_back_with_its_line_numbers_and_raw_lines(rows, blank, ascii) -> None:
    lines = [json.dumps(row, ensure_ascii=ascii) + "\n" for row in rows]
    got = list(read_stream(io.BytesIO((blank + blank.join(lines)).encode()), "drawn", Format.jsonl))
    step = 1 + blank.count("\n")
    assert [r.data for r in got] == rows and [r.raw for r in got] == lines
    assert [r.line for r in got] == [blank.count("\n") + 1 + i * step for i in range(len(rows))]


@few
@given(body=st.binary(max_size=60), fmt=st.sampled_from(list(Format)))
def test_any_bytes_are_records_or_one_input_error_never_a_crash(body, fmt) -> None:
    try:
        for record in read_stream(io.BytesIO(body), "drawn", fmt):
            assert isinstance(record.data, dict)
            if record.error:
                assert record.data == {} and "\n" not in record.error
    except InputError as error:
        assert str(error).startswith("drawn line ")
