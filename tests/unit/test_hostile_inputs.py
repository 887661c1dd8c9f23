"""Input built to hurt, without a server or a model: terminal escapes in tables, image bombs, malformed and huge files.

Each case must end in data shown literally or in one clear error, with memory bounded by design. The same input
through the CLI and into the real server: tests/e2e/test_hostile_inputs.py, which shares the helpers of this file.

- JSON and JSONL output is always valid JSON (no bare NaN or Infinity); a CSV cell with a CR is quoted.
- An image too large, truncated, or not an image at all is one InputError naming only the path given.
- A JSON array is read one element at a time: a bad element early in a big file fails at once, one huge value
  takes few reads, and a record over the size limit names its line.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vsearch import models, records
from vsearch.errors import InputError
from vsearch.models import open_image
from vsearch.output import OutputFormat, render
from vsearch.records import Format, read_records, read_stream

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"

# What a terminal obeys: C0 controls but newline, DEL, C1 controls (0x9b is a one-byte CSI), bidi controls.
TERMINAL_CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HOSTILE = ["[/x]", "[bold]loud[/bold]", ":smile:", "\x1b[31mred\x1b[0m", "\x1b]0;owned\x07", "\x9b2J",
           "\x1b]8;;http://evil/\x1b\\link", "abc\u202edcba", "tab\there\rcr\x08bs\x00nul"]


def input_error(call) -> str:
    with pytest.raises(InputError) as caught:
        call()
    return str(caught.value)


# ---------------------------------------------------------------------------------------------------
# Terminal output


def table(rows, title=None) -> str:
    out = io.StringIO()
    render(rows, OutputFormat.table, title=title, stream=out)
    return out.getvalue()


def test_table_shows_markup_literally_and_escapes_controls() -> None:
    shown = table([{"id": f"id{n}", "text": text, "score": 0.5} for n, text in enumerate(HOSTILE)],
                  title="query: [/x] \x1b[2J")
    assert not TERMINAL_CONTROLS.search(shown)
    for literal in ("[/x]", "[bold]loud[/bold]", ":smile:", "\\x1b[31mred", "\\x1b]0;owned\\x07", "\\x9b2J",
                    "abc\\u202edcba", "query: [/x] \\x1b[2J"):
        assert literal in shown
    assert "😄" not in shown


@settings(max_examples=60, deadline=None)
@given(cell=st.text(), column=st.text(min_size=1), title=st.text())
def test_any_text_in_a_table_reaches_the_terminal_inert(cell, column, title) -> None:
    shown = table([{"id": cell, column: cell}], title=title)
    assert not TERMINAL_CONTROLS.search(shown)


def test_a_table_shows_a_lone_surrogate_as_an_escape() -> None:
    out = io.StringIO()
    render([{"id": "bad\udcffname.jpg", "score": 1.0}], OutputFormat.table, stream=out)
    assert "bad\\udcffname.jpg" in out.getvalue()


# ---------------------------------------------------------------------------------------------------
# Images


def one_bit_png(path, size) -> None:
    """A huge image that is small on disk and cheap to make: 1 bit a pixel, all black."""
    Image.new("1", size).save(path)


@pytest.mark.parametrize("size", [(10_000, 9_000), (14_000, 13_000)], ids=["over-limit", "over-twice-limit"])
def test_decompression_bomb_is_one_input_error(tmp_path, monkeypatch, size) -> None:
    monkeypatch.chdir(tmp_path)
    one_bit_png("bomb.png", size)
    message = input_error(lambda: open_image(models.Path("bomb.png")))
    assert message.startswith("bomb.png: image too large (")
    assert "89,478,485 pixels" in message and str(tmp_path) not in message


def test_truncated_jpeg_is_one_input_error(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    whole = (SAMPLE / "images" / "1653.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    assert input_error(lambda: open_image(models.Path("cut.jpg"))).startswith("cut.jpg: not a readable image (image file is truncated")


def test_image_errors_name_only_the_path_given(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "text.jpg").write_text("not an image")
    assert input_error(lambda: open_image(models.Path("folder.jpg"))) == "folder.jpg: not a readable image (Is a directory)"
    assert input_error(lambda: open_image(models.Path("text.jpg"))) == "text.jpg: not a readable image (not a format Pillow knows)"


def test_encode_refuses_an_image_file_name_that_is_not_utf8(tmp_path) -> None:
    from vsearch.encode import expand_images

    name = os.path.join(os.fsencode(tmp_path), b"bad\xffname.jpg")
    with open(name, "wb") as handle:
        handle.write((SAMPLE / "images" / "1653.jpg").read_bytes())
    message = input_error(lambda: expand_images([str(tmp_path / "*.jpg")]))
    assert "is not UTF-8 text" in message


# ---------------------------------------------------------------------------------------------------
# JSON, JSONL, CSV


class CountingReader(io.RawIOBase):
    """A byte stream that counts what a reader took from it, and how many reads it made."""

    def __init__(self, data: bytes) -> None:
        self.source, self.taken, self.reads = io.BytesIO(data), 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.source.readinto(buffer)
        self.taken += count
        self.reads += 1
        return count


def test_bad_element_early_in_a_big_json_array_fails_at_once() -> None:
    body = b'[{"id": 1, "text": "fine"},\n{"id": 2, "text": tru},\n' + b'{"id": 3, "text": "more"},\n' * 2_000_000 + b'{"id": 4}]'
    assert len(body) > 50_000_000
    stream = CountingReader(body)
    message = input_error(lambda: list(read_stream(io.BufferedReader(stream), "big.json", Format.json)))
    assert message == "big.json line 2: malformed JSON (Expecting value)"
    assert stream.taken < 1_000_000  # it stopped at the bad element, not at the end of 50 MB


def test_one_huge_json_value_is_read_in_few_reads(monkeypatch) -> None:
    monkeypatch.setattr(records, "JSON_CHUNK", 1 << 12)
    huge = "w" * 8_000_000
    stream = CountingReader(json.dumps([{"id": 1, "text": huge}, {"id": 2, "text": "x"}]).encode())
    got = [r.data for r in read_stream(io.BufferedReader(stream), "huge.json", Format.json)]
    assert got == [{"id": 1, "text": huge}, {"id": 2, "text": "x"}]
    assert stream.reads < 40  # the buffer doubles: not 2,000 reads each copying a growing buffer


def test_csv_field_over_the_csv_module_limit_is_read(tmp_path) -> None:
    path = tmp_path / "long.csv"
    long_text = "word " * 100_000  # 500,000 characters, over csv's default field limit of 131,072
    path.write_text(f'id,text\n1,"{long_text}"\n2,short\n')
    assert [r.data["text"] for r in read_records(str(path), Format.csv)] == [long_text, "short"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "lines"])
def test_a_record_over_the_size_limit_names_its_line(tmp_path, monkeypatch, fmt) -> None:
    monkeypatch.setattr(records, "MAX_RECORD_CHARS", 1_000)
    monkeypatch.setattr(records, "JSON_CHUNK", 100)
    long_text = "w" * 2_000
    many_lines = ("w" * 99 + "\n") * 20  # each line short: the field is what is too long
    body = {"csv": f'id,text\n1,ok\n2,"{many_lines}"\n', "jsonl": f'{{"text": "ok"}}\n{{"text": "{long_text}"}}\n',
            "json": f'[{{"text": "ok"}},\n{{"text": "{long_text}"}}]', "lines": f"ok\n{long_text}\n"}[fmt]
    path = tmp_path / f"big.{fmt}"
    path.write_text(body)
    reader = (lambda: list(records.read_lines(str(path)))) if fmt == "lines" else (lambda: [r.check() for r in read_records(str(path), Format(fmt))])
    message = input_error(reader)
    expected = {"csv": f"{path} line 13: malformed CSV (field larger than field limit (1000))",
                "jsonl": f"{path} line 2: longer than 1,000 characters", "lines": f"{path} line 2: longer than 1,000 characters",
                "json": f"{path} line 2: a JSON value longer than 1,000 characters"}[fmt]
    assert message == expected


@pytest.mark.parametrize("fmt", ["json", "jsonl", "tsv"])
def test_byte_order_mark_is_skipped(tmp_path, fmt) -> None:
    path = tmp_path / f"bom.{fmt}"
    body = {"json": '[{"id": "1"}]', "jsonl": '{"id": "1"}\n', "tsv": "id\n1\n"}[fmt]
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert [r.data for r in read_records(str(path), Format(fmt))] == [{"id": "1"}]


def test_nul_bytes_in_csv_are_data(tmp_path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(b"id,text\n1,a\x00b\n")
    assert [r.data for r in read_records(str(path), Format.csv)] == [{"id": "1", "text": "a\x00b"}]


# ---------------------------------------------------------------------------------------------------
# Output for pipes


def test_a_bare_cr_in_csv_output_is_quoted() -> None:
    import csv

    out = io.StringIO()
    render([{"id": "1", "t": "a\rb"}, {"id": "2", "t": "x"}], OutputFormat.csv, stream=out)
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [["id", "t"], ["1", "a\rb"], ["2", "x"]]


def test_json_output_never_holds_a_bare_nan() -> None:
    for fmt in (OutputFormat.jsonl, OutputFormat.json):
        out = io.StringIO()
        render([{"id": "1", "score": float("nan"), "f": {"x": float("inf")}}], fmt, stream=out)
        text = out.getvalue()
        assert "NaN" not in text and "Infinity" not in text
        json.loads(text if fmt is OutputFormat.json else text.splitlines()[0])
