"""`vsearch export` and `load --from-export` on the real server: an index taken out and put back, bit for bit.

- Round trip: every document, field, vector and query result is the same after export, drop-index and restore,
  and a load of the original input then embeds nothing (the fingerprints came along). HASH and JSON storage,
  every element type (FLOAT16 bit for bit), vectors as base64 or JSON arrays.
- A move: the export restored into a second embedded server (another VSEARCH_HOME, in a subprocess) answers
  the same queries, and a load of the original input there embeds nothing.
- Hostile exports (not an export, a newer format, truncated, missing lines, wrong dimensions, NaN, bad base64)
  end in one error line or one reject line per bad line, with its line number; never a traceback.
- A document rewritten while the export runs is exported whole, as one of its versions.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ROOT, SAMPLE, one_error_line
from vsearch import server
from vsearch.schema import DataType, Field, FieldType, IndexSpec, Storage, VectorField
from vsearch.store.documents import FINGERPRINT_FIELD, StoredDocument
from vsearch.transfer import BadLine, elements, parse_document, document_line, VectorEncoding

CATALOGUE_QUERIES = [
    ("black leather watch for men", "-k", "10"),
    ("red dress", "-k", "10", "--where", "gender=Women"),
    ("casual shirt", "-k", "5", "--where", "year>=2012"),
    ("blue jeans", "--mode", "text", "-k", "10"),
    ("--like", "1653", "-k", "10"),
]


def summary(result) -> dict:
    """The restore's counts: 'restored NAME ... from FILE: 3 read, 3 written, 0 rejected; ...'."""
    line = next(line for line in result.stderr.splitlines() if line.startswith("restored"))
    parts = line.split(": ", 1)[1].split(";")[0].split(", ")
    return {word: int(number) for number, word in (p.split(" ", 1) for p in parts)}


def load_counts(result) -> dict:
    line = next(line for line in result.stderr.splitlines() if line.startswith("loaded"))
    parts = line.split(": ", 1)[1].split(";")[0].split(", ")
    return {word: int(number) for number, word in (p.split(" ", 1) for p in parts)}


def stored(redis_client, prefix: str, storage: str = "hash") -> dict[bytes, object]:
    """Every key under the prefix and what Redis holds there, byte for byte."""
    keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
    if storage == "json":
        return {k: redis_client.execute_command("JSON.GET", k, "$") for k in keys}
    return {k: redis_client.hgetall(k) for k in keys}


def queries(cli, name: str) -> list[list[dict]]:
    # --no-collapse: copies (one name, one photo) tie, and which of them stands for the others follows write order
    return [cli.jsonl("query", name, *q, "--format", "jsonl", "--no-collapse") for q in CATALOGUE_QUERIES]


def assert_same_results(ours: list[list[dict]], theirs: list[list[dict]]) -> None:
    """The same results, query by query: the same scores in the same order, and the same documents with them.
    Only the order among equal scores may differ: RediSearch lists ties in the order their documents were written,
    and a restore writes them in SCAN's order. At the cut-off score, which of the tied documents made it may differ
    too; they still must be as many, with the same fields."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert [r["score"] for r in a] == [r["score"] for r in b]
        cut = a[-1]["score"] if a else None
        def rows(results: list[dict], tied: bool) -> list[dict]:
            return sorted(({k: v for k, v in r.items() if k != "rank"} for r in results if (r["score"] == cut) == tied),
                          key=lambda r: (r["score"], r["id"]))
        assert rows(a, tied=False) == rows(b, tied=False)
        by_id = {r["id"]: r for r in rows(b, tied=True)}
        assert all(by_id.get(r["id"], r) == r for r in rows(a, tied=True))


def read_export(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def write_export(path: Path, lines: list[dict | str]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def catalogue(cli, tmp_path_factory) -> tuple[str, Path]:
    """The sample catalogue (text vectors by the real model; TAG, TEXT and NUMERIC fields), loaded once, and its
    export. A test that drops it restores it from that export."""
    name = "export-catalogue"
    cli("create-index", name, "--storage", "hash", "--tag", "gender", "--tag", "articleType", "--text", "productDisplayName",
        "--numeric", "year")
    cli("load", name, SAMPLE / "products.csv", "--text-field", "productDisplayName")
    path = tmp_path_factory.mktemp("export") / "catalogue.jsonl"
    cli("export", name, "-o", path)
    return name, path


# ---------------------------------------------------------------------------------------------------
# Round trips


def test_round_trip_restores_every_document_vector_and_query_result(cli, redis_client, catalogue) -> None:
    name, path = catalogue
    before = stored(redis_client, f"{name}:")
    answers = queries(cli, name)
    assert len(before) == 300 and all(len(rows) > 0 for rows in answers)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    lines = read_export(path)
    head, documents, end = lines[0], lines[1:-1], lines[-1]
    assert head["format"] == "vsearch-export" and head["version"] == 1
    assert head["index"]["fields"][-1]["attrs"]["model"] == "all-MiniLM-L6-v2"
    assert head["vectors"] == {"encoding": "base64", "byte_order": "little", "elements": {"text_vector": "float32"}}
    assert end == {"end": "vsearch-export", "documents": 300} and len(documents) == 300
    assert all(set(d["fingerprint"]) == {"_fields", "text_vector"} for d in documents)

    cli("drop-index", name, "--delete-documents")
    assert stored(redis_client, f"{name}:") == {}
    restored = cli("load", name, path, "--from-export")
    assert summary(restored) == {"read": 300, "written": 300, "rejected": 0}
    assert "(created)" in restored.stderr and "300 documents in the index" in restored.stderr

    assert stored(redis_client, f"{name}:") == before  # every field, vector, stem and fingerprint, byte for byte
    assert_same_results(queries(cli, name), answers)  # ids, scores and fields of every kind of query
    info = json.loads(cli("info", name).stdout)
    assert info["fields"] == head["index"]["fields"]  # the schema and its models

    again = cli("load", name, SAMPLE / "products.csv", "--text-field", "productDisplayName")
    assert load_counts(again) == {"read": 300, "embedded": 0, "updated": 0, "skipped": 300, "deleted": 0,
                                  "rejected": 0}


def test_json_storage_round_trip_and_reload_skips_everything(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--storage", "json", "--tag", "gender", "--text", "productDisplayName",
        "--numeric", "year", "--algorithm", "flat")
    cli("load", index_name, SAMPLE / "more_products.jsonl", "--text-field", "productDisplayName")
    before = stored(redis_client, f"{index_name}:", "json")
    answers = cli.jsonl("query", index_name, "navy shirt", "-k", "5", "--format", "jsonl")
    path = tmp_path / "export.jsonl"
    cli("export", index_name, "-o", path)
    assert read_export(path)[0]["vectors"]["elements"] == {"text_vector": "float32"}

    cli("drop-index", index_name, "--delete-documents")
    assert summary(cli("load", index_name, path, "--from-export")) == {"read": 20, "written": 20, "rejected": 0}
    after = stored(redis_client, f"{index_name}:", "json")
    assert {k: json.loads(v) for k, v in after.items()} == {k: json.loads(v) for k, v in before.items()}
    assert_same_results([cli.jsonl("query", index_name, "navy shirt", "-k", "5", "--format", "jsonl")], [answers])
    again = cli("load", index_name, SAMPLE / "more_products.jsonl", "--text-field", "productDisplayName")
    assert load_counts(again)["embedded"] == 0 and load_counts(again)["skipped"] == 20


def _given_rows(count: int, dim: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": f"g{i}", "kind": ["a", "b", "c"][i % 3], "title": f"item {i} of kind {['a', 'b', 'c'][i % 3]}",
             "rank": i, "note": "ünïcødé \u2028 line\u2029 breaks \x85 and \x1f",
             "vec": rng.normal(size=dim).tolist()}
            for i in range(count)]


@pytest.mark.parametrize("storage", ["hash", "json"])
@pytest.mark.parametrize("datatype", ["float32", "float16", "float64", "bfloat16"])
@pytest.mark.parametrize("encoding", ["base64", "json"])
def test_every_storage_element_type_and_encoding_round_trips_bit_for_bit(cli, redis_client, index_name, tmp_path,
                                                                         storage, datatype, encoding) -> None:
    cli("create-index", index_name, "--dim", "16", "--storage", storage, "--no-passages", "--type", datatype, "--tag", "kind",
        "--text", "title", "--numeric", "rank", "--algorithm", "flat")
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in _given_rows(50, 16, seed=7)))
    cli("load", index_name, source, "--vector-column", "vec")
    before = stored(redis_client, f"{index_name}:", storage)
    path = tmp_path / "export.jsonl"
    cli("export", index_name, "-o", path, "--vectors", encoding)
    lines = read_export(path)
    element = datatype if storage == "hash" else ("float64" if datatype == "float64" else "float32")
    assert lines[0]["vectors"]["elements"] == {"text_vector": element}
    vector = lines[1]["vectors"]["text_vector"]
    if encoding == "json":
        assert isinstance(vector, list) and len(vector) == 16
    else:
        assert len(base64.b64decode(vector)) == 16 * {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}[element]
    assert "\u2028" not in path.read_text() and "\\u2028" in path.read_text()  # one JSONL row is one line anywhere

    restored = f"{index_name}-copy"
    assert summary(cli("load", restored, path, "--from-export")) == {"read": 50, "written": 50, "rejected": 0}
    after = stored(redis_client, f"{restored}:", storage)
    rename = {k: k.replace(f"{index_name}:".encode(), f"{restored}:".encode(), 1) for k in before}
    if storage == "json":
        assert {rename[k]: json.loads(v) for k, v in before.items()} == {k: json.loads(v) for k, v in after.items()}
    else:
        assert {rename[k]: v for k, v in before.items()} == after
    probe = json.dumps(_numbers(lines[5]["vectors"]["text_vector"], element))
    query = ("--vector", probe, "-k", "5", "--where", "kind=a", "--format", "jsonl")
    assert_same_results([cli.jsonl("query", restored, *query)], [cli.jsonl("query", index_name, *query)])
    again = cli("load", restored, source, "--vector-column", "vec")
    assert load_counts(again)["skipped"] == 50


def _numbers(vector: str | list, element: str) -> list[float]:
    """An exported vector as numbers, whichever way it was written."""
    if isinstance(vector, list):
        return vector
    raw = base64.b64decode(vector)
    if element == "bfloat16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).astype(float).tolist()
    numpy_type = {"float64": "<f8", "float32": "<f4", "float16": "<f2"}[element]
    return np.frombuffer(raw, dtype=numpy_type).astype(float).tolist()


def test_export_goes_to_stdout_by_default_and_with_dash(cli, catalogue) -> None:
    name, path = catalogue
    for args in ((), ("-o", "-")):
        result = cli("export", name, *args)
        lines = result.stdout_bytes.splitlines()
        assert len(lines) == 302 and json.loads(lines[-1]) == {"end": "vsearch-export", "documents": 300}
        assert f"exported '{name}' to stdout: 300 documents" in result.stderr
    # The catalogue was restored from that file meanwhile: exported again, it holds the same documents. (Not the same
    # bytes: a hash holding a vector is past Redis's listpack size, and Redis gives such a hash's fields in its own
    # order.)
    again = sorted((json.loads(line) for line in result.stdout_bytes.splitlines()[1:-1]), key=lambda d: d["id"])
    assert again == sorted(read_export(path)[1:-1], key=lambda d: d["id"])


def test_restore_into_an_existing_index_of_the_same_schema_replaces_its_documents(cli, redis_client, catalogue,
                                                                                   tmp_path) -> None:
    name, path = catalogue
    copy = "export-copy-same"
    cli("load", copy, path, "--from-export")
    redis_client.hset(f"{copy}:1653", "productDisplayName", "changed meanwhile")
    again = cli("load", copy, path, "--from-export")
    assert summary(again) == {"read": 300, "written": 300, "rejected": 0} and "(created)" not in again.stderr
    assert redis_client.hget(f"{copy}:1653", "productDisplayName") == redis_client.hget(f"{name}:1653",
                                                                                       "productDisplayName")
    cli("drop-index", copy, "--delete-documents")


def test_a_custom_prefix_comes_along_and_a_clash_is_one_error_line(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--storage", "hash", "--dim", "4", "--prefix", f"{index_name}docs/", "--algorithm", "flat")
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "vec": [1, i, 0, 1]}) + "\n" for i in range(3)))
    cli("load", index_name, source, "--vector-column", "vec")
    path = tmp_path / "export.jsonl"
    cli("export", index_name, "-o", path)
    clash = cli("load", f"{index_name}-2", path, "--from-export", ok=False)
    assert clash.exit_code == 2
    assert "overlaps index" in one_error_line(clash)
    cli("drop-index", index_name, "--delete-documents")
    cli("load", f"{index_name}-2", path, "--from-export")
    assert redis_client.exists(f"{index_name}docs/2") == 1


def test_values_that_are_not_utf8_travel_as_bytes_and_ids_that_are_not_are_left_out(cli, redis_client, index_name,
                                                                                     tmp_path) -> None:
    cli("create-index", index_name, "--storage", "hash", "--dim", "2", "--algorithm", "flat")
    vector = struct.pack("<2f", 1, 2)
    redis_client.hset(f"{index_name}:ok", mapping={"blob": b"\xff\x00\xfe", "text": "plain", "text_vector": vector})
    redis_client.hset(f"{index_name}:".encode() + b"\xff", mapping={"text_vector": vector})
    path = tmp_path / "export.jsonl"
    result = cli("export", index_name, "-o", path)
    assert "1 documents; 1 left out (an id or field name that is not UTF-8 text)" in result.stderr
    line = read_export(path)[1]
    assert line["id"] == "ok" and line["bytes"] == {"blob": base64.b64encode(b"\xff\x00\xfe").decode()}
    assert summary(cli("load", f"{index_name}-b", "-", "--from-export", input=path.read_bytes())) == {
        "read": 1, "written": 1, "rejected": 0}  # from stdin
    assert redis_client.hgetall(f"{index_name}-b:ok") == redis_client.hgetall(f"{index_name}:ok")


def test_export_and_restore_never_import_a_model(catalogue, tmp_path) -> None:
    name, path = catalogue
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from vsearch.cli import app\n"
        "r = CliRunner()\n"
        f"for args in (['export', {name!r}, '-o', {str(tmp_path / 'again.jsonl')!r}],\n"
        f"             ['load', {name + '-no-model'!r}, {str(path)!r}, '--from-export']):\n"
        "    res = r.invoke(app, args)\n"
        "    assert res.exit_code == 0, (args, res.output)\n"
        "models = ('torch', 'sentence_transformers', 'transformers', 'onnxruntime')\n"
        "print(sorted(m for m in models if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------------
# A move to another server


def test_restore_into_a_second_embedded_server(cli, redis_client, catalogue) -> None:
    name, path = catalogue
    home = Path(tempfile.mkdtemp(prefix="vs2-"))
    env = {**os.environ, "VSEARCH_HOME": str(home), "VSEARCH_CONFIG": str(home / "no-config.toml")}

    def vsearch(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vsearch", *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=300)

    try:
        moved = vsearch("load", "moved", path, "--from-export")
        assert moved.returncode == 0, moved.stderr
        assert summary(moved) == {"read": 300, "written": 300, "rejected": 0}
        assert server.status(home).running  # a server of its own, on its own socket
        assert server.ServerPaths(home).socket != server.ServerPaths(Path(os.environ["VSEARCH_HOME"])).socket
        assert "moved" not in cli("list", "--format", "jsonl").stdout  # not on the tests' own server
        for args in (("--like", "1653", "-k", "10"), ("--like", "1801", "-k", "5", "--where", "gender=Women")):
            there = vsearch("query", "moved", *args, "--format", "jsonl")
            assert there.returncode == 0, there.stderr
            here = cli.jsonl("query", name, *args, "--format", "jsonl")
            assert_same_results([[json.loads(line) for line in there.stdout.splitlines()]], [here])
        reload = vsearch("load", "moved", SAMPLE / "products.csv", "--text-field", "productDisplayName")
        assert reload.returncode == 0, reload.stderr
        assert load_counts(reload) == {"read": 300, "embedded": 0, "updated": 0, "skipped": 300, "deleted": 0,
                                       "rejected": 0}
    finally:
        vsearch("server", "stop")
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# Hostile exports


@pytest.fixture
def small_export(cli, index_name, tmp_path) -> tuple[str, Path, list[dict]]:
    """A 5-document FLAT index with 4-d vectors, exported: (name, file, its lines as JSON)."""
    cli("create-index", index_name, "--storage", "hash", "--dim", "4", "--tag", "kind", "--numeric", "rank", "--algorithm", "flat")
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps({"id": f"d{i}", "kind": "k", "rank": i, "vec": [1, i, 0.5, -1]}) + "\n"
                              for i in range(5)))
    cli("load", index_name, source, "--vector-column", "vec")
    path = tmp_path / "export.jsonl"
    cli("export", index_name, "-o", path)
    return index_name, path, read_export(path)


def _f32(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def test_a_file_that_is_not_an_export_is_one_error_line(cli, index_name, tmp_path, small_export) -> None:
    _, _, lines = small_export
    cases = {
        "empty.jsonl": "",
        "products.csv": (SAMPLE / "products.csv").read_text(),
        "rows.jsonl": '{"id": "1", "title": "a plain load input"}\n',
        "newer.jsonl": json.dumps({**lines[0], "version": 2}) + "\n",
        "no-schema.jsonl": json.dumps({**lines[0], "index": {"fields": []}}) + "\n",
        "no-elements.jsonl": json.dumps({**lines[0], "vectors": {}}) + "\n",
    }
    expected = {"empty.jsonl": "is empty: not a vsearch export", "products.csv": "is not a vsearch export",
                "rows.jsonl": "is not a vsearch export", "newer.jsonl": "format version 2",
                "no-schema.jsonl": "not a valid index schema", "no-elements.jsonl": "vectors.elements"}
    for file, text in cases.items():
        (tmp_path / file).write_text(text)
        result = cli("load", index_name + "x", tmp_path / file, "--from-export", ok=False)
        assert result.exit_code == 2, (file, result.stderr)
        assert expected[file] in one_error_line(result), file
    missing = cli("load", index_name + "x", tmp_path / "absent.jsonl", "--from-export", ok=False)
    assert missing.exit_code == 2 and "file not found" in one_error_line(missing)
    assert index_name + "x" not in cli("list", "--format", "jsonl").stdout  # nothing was created


def test_bad_lines_are_rejected_with_their_line_numbers_and_the_rest_restored(cli, redis_client, tmp_path,
                                                                              small_export) -> None:
    name, _, lines = small_export
    head, docs, end = lines[0], lines[1:-1], lines[-1]
    good = docs[0]
    bad = [
        '{"id": "x1", "vectors": ',  # not JSON
        json.dumps({**good, "id": "x2", "vectors": {"text_vector": _f32([1, 2, 3])}}),  # 3 numbers, not 4
        json.dumps({**good, "id": "x3", "vectors": {"text_vector": _f32([1, float("nan"), 0, 1])}}),  # NaN
        json.dumps({**good, "id": "x4", "vectors": {"text_vector": "not base64!"}}),
        '{"id": "x5", "fields": {}, "vectors": {"text_vector": [1, NaN, 0, 1]}}',  # JSON has no NaN
        json.dumps({**good, "id": "x6", "vectors": {"text_vector": [1, 2, 3, 4, 5]}}),
        json.dumps({**good, "id": "x7", "vectors": {"image_vector": _f32([1, 2, 3, 4])}}),
        json.dumps({**good, "id": "x8", "fields": {"rank": "not a number"}}),
        json.dumps({**good, "id": ""}),
        json.dumps(["an", "array"]),
        json.dumps({**good, "id": "x9", "vectors": {"text_vector": _f32([0, 0, 0, 0])}}),  # COSINE cannot score it
    ]
    path = write_export(tmp_path / "hostile.jsonl", [head, *docs[:2], *bad, *docs[2:],
                                                    {**end, "documents": len(docs) + len(bad)}])
    rejects = tmp_path / "rejects.jsonl"
    result = cli("load", f"{name}-r", path, "--from-export", "--rejects", rejects, ok=False)
    assert result.exit_code == 4, result.stderr
    assert "Traceback" not in result.stderr
    messages = [line for line in result.stderr.splitlines() if line.startswith("vsearch: rejected")]
    assert len(messages) == 10  # the first ten on stderr, then counted
    assert [int(m.split(" line ")[1].split(":")[0]) for m in messages] == list(range(4, 14))
    assert "not JSON" in messages[0] and "12 bytes, not the 16 of a 4-d float32 vector" in messages[1]
    assert "NaN" in messages[2] and "not base64" in messages[3] and "not JSON" in messages[4]
    assert "5 numbers, but the index holds 4-d" in messages[5] and "no such vector field" in messages[6]
    assert "NUMERIC" in messages[7] and "'id' must be a non-empty string" in messages[8]
    assert summary(result) == {"read": 16, "written": 5, "rejected": 11}
    assert rejects.read_text().splitlines() == bad and stat.S_IMODE(rejects.stat().st_mode) == 0o600
    restored = sorted(k.decode() for k in redis_client.scan_iter(match=f"{name}-r:*"))
    assert restored == [f"{name}-r:d{i}" for i in range(5)]


def test_a_truncated_export_restores_what_it_holds_and_says_it_is_cut_short(cli, redis_client, tmp_path,
                                                                           small_export) -> None:
    name, path, _ = small_export
    text = path.read_bytes()
    at_line = tmp_path / "cut-at-line.jsonl"
    at_line.write_bytes(b"".join(text.splitlines(keepends=True)[:4]))  # the header and 3 documents
    result = cli("load", f"{name}-t1", at_line, "--from-export", ok=False)
    assert result.exit_code == 1
    assert "ends without the export's end line" in one_error_line(result) and "3 documents" in result.stderr
    assert len(list(redis_client.scan_iter(match=f"{name}-t1:*"))) == 3

    mid_line = tmp_path / "cut-mid-line.jsonl"
    mid_line.write_bytes(text[: len(b"".join(text.splitlines(keepends=True)[:4])) + 30])
    result = cli("load", f"{name}-t2", mid_line, "--from-export", ok=False)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"vsearch: rejected {mid_line} line 5: not JSON")
    assert lines[1].startswith("vsearch: error: ") and "ends without the export's end line" in lines[1]


def test_missing_lines_and_lines_after_the_end_are_caught(cli, tmp_path, small_export) -> None:
    name, _, lines = small_export
    gap = write_export(tmp_path / "gap.jsonl", [lines[0], *lines[1:3], *lines[4:]])
    result = cli("load", f"{name}-g", gap, "--from-export", ok=False)
    assert result.exit_code == 1 and "end line counts 5 documents, but 4" in one_error_line(result)
    after = write_export(tmp_path / "after.jsonl", [*lines, lines[1]])
    result = cli("load", f"{name}-a", after, "--from-export", ok=False)
    assert result.exit_code == 4 and "line 8: a line after the export's end line" in result.stderr


def test_strict_stops_at_the_first_bad_line(cli, redis_client, tmp_path, small_export) -> None:
    name, _, lines = small_export
    path = write_export(tmp_path / "strict.jsonl", [*lines[:3], "not json", *lines[3:]])
    result = cli("load", f"{name}-s", path, "--from-export", "--strict", ok=False)
    assert result.exit_code == 1 and "line 4: not JSON" in one_error_line(result)
    assert list(redis_client.scan_iter(match=f"{name}-s:*")) == []  # its batch was not written


def test_an_existing_index_with_another_schema_is_refused(cli, index_name, small_export) -> None:
    name, path, _ = small_export
    cli("create-index", index_name + "o", "--storage", "hash", "--dim", "8", "--tag", "kind", "--numeric", "rank", "--algorithm", "flat")
    result = cli("load", index_name + "o", path, "--from-export", ok=False)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "exists with another schema" in line and "8-d FLAT" in line and "4-d FLAT" in line


def test_a_flat_export_restores_into_an_hnsw_index_and_finds_the_same_documents(cli, index_name, small_export) -> None:
    # how Redis searches the vectors is not what the documents hold: moving to HNSW is a restore, not a re-embed
    name, path, _ = small_export
    cli("create-index", index_name + "h", "--storage", "hash", "--dim", "4", "--tag", "kind", "--numeric", "rank",
        "--algorithm", "hnsw", "--m", "8")
    restored = cli("load", index_name + "h", path, "--from-export")
    assert "5 restored" in restored.stderr or "5 documents" in restored.stderr, restored.stderr
    query = ["--vector", "[1, 2, 0.5, -1]", "-k", "5", "--format", "jsonl", "--no-collapse"]
    flat = [json.loads(line)["id"] for line in cli("query", name, *query).stdout.splitlines()]
    hnsw = [json.loads(line)["id"] for line in cli("query", index_name + "h", *query).stdout.splitlines()]
    assert hnsw == flat and len(flat) == 5
    vector = next(f for f in json.loads(cli("info", index_name + "h").stdout)["fields"] if f["type"] == "vector")
    assert vector["attrs"]["algorithm"].lower() == "hnsw" and vector["attrs"]["m"] == 8, vector


def test_export_of_a_missing_index_and_misused_options_exit_2(cli, tmp_path, small_export) -> None:
    missing = cli("export", "no-such-index", "-o", tmp_path / "x.jsonl", ok=False)
    assert missing.exit_code == 2 and "index 'no-such-index' does not exist" in one_error_line(missing)
    assert not (tmp_path / "x.jsonl").exists()
    name, path, _ = small_export
    misused = cli("load", name, path, "--from-export", "--text-field", "title", "--prune", ok=False)
    assert misused.exit_code == 2 and "--text-field, --prune cannot be given" in one_error_line(misused)
    folder = cli("export", name, "-o", tmp_path, ok=False)
    assert folder.exit_code == 2 and "is a folder" in one_error_line(folder)


# ---------------------------------------------------------------------------------------------------
# Consistency while documents are written


def test_documents_rewritten_during_an_export_come_out_whole(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--storage", "hash", "--dim", "2", "--algorithm", "flat")
    count = 5000
    pipe = redis_client.pipeline(transaction=False)
    for i in range(count):
        pipe.hset(f"{index_name}:{i}", mapping={"a": "0", "b": "0", "text_vector": struct.pack("<2f", 1, i)})
    pipe.execute()
    stop = threading.Event()

    def rewrite() -> None:
        version = 0
        while not stop.is_set():
            version += 1
            writes = redis_client.pipeline(transaction=True)
            for i in range(0, count, 7):
                writes.hset(f"{index_name}:{i}", mapping={"a": str(version), "b": str(version)})
            writes.execute()

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        path = tmp_path / "live.jsonl"
        cli("export", index_name, "-o", path)
    finally:
        stop.set()
        writer.join()
    docs = read_export(path)[1:-1]
    assert all(d["fields"]["a"] == d["fields"]["b"] for d in docs)  # one version of each document
    versions = {d["fields"]["a"] for d in docs if int(d["id"]) % 7 == 0}
    assert len(versions) >= 2, "the rewrites did not overlap the export: the test proves nothing"
    assert {d["id"] for d in docs} == {str(i) for i in range(count)}  # every document that existed throughout


# ---------------------------------------------------------------------------------------------------
# The line parser


SPEC = IndexSpec(name="p", prefix="p:", storage=Storage.hash, fields=(Field("title", FieldType.text),),
                 vectors=(VectorField("text_vector", "text", "given", 4, datatype=DataType.float32),),
                 stemmed_text=True)
names = st.text(min_size=1, max_size=12).filter(lambda n: n not in ("text_vector", "title")
                                                and not n.startswith("__vsearch"))
texts = st.text(max_size=40)
vectors = st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=4, max_size=4).filter(any)
documents = st.builds(
    lambda doc_id, fields, title, vector, fingerprint: StoredDocument(
        doc_id, {**fields, "title": title}, {"text_vector": struct.pack("<4f", *vector)}, fingerprint),
    st.text(min_size=1, max_size=20), st.dictionaries(names, texts, max_size=4), texts, vectors,
    st.dictionaries(st.sampled_from(["_fields", "text_vector"]), st.text(alphabet="0123456789abcdef", max_size=32)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_the_line_parser_answers_any_line_with_a_document_or_one_reason(line: bytes) -> None:
    try:
        doc = parse_document(line, SPEC, elements(SPEC))
    except BadLine as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(doc, StoredDocument) and doc.id


def test_lines_written_and_read_back_through_the_real_server_are_the_same(cli, redis_client, index_name,
                                                                          tmp_path) -> None:
    """A generated document, restored into a real index from a one-document export and exported again, comes out
    as it went in: id, every field, the vector's bytes and the fingerprint."""
    spec = SPEC.with_name(index_name)
    head = {"format": "vsearch-export", "version": 1, "index": {**spec.to_dict(), "index": {
        **spec.to_dict()["index"], "prefix": f"{index_name}:"}},
        "vectors": {"encoding": "base64", "byte_order": "little", "elements": {"text_vector": "float32"}}}
    counter = iter(range(10**6))

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(documents)
    def round_trip(doc: StoredDocument) -> None:
        line = document_line(doc, spec, elements(spec), VectorEncoding.base64)
        assert parse_document(json.dumps(line).encode(), spec, elements(spec)) == doc  # the parser alone
        path = tmp_path / f"one-{next(counter)}.jsonl"
        write_export(path, [head, line, {"end": "vsearch-export", "documents": 1}])
        cli("load", index_name, path, "--from-export", "--quiet")
        stored_hash = redis_client.hgetall(f"{index_name}:{doc.id}".encode())
        assert stored_hash[b"text_vector"] == doc.vectors["text_vector"]
        assert json.loads(stored_hash[FINGERPRINT_FIELD.encode()] if doc.fingerprint else b"{}") == doc.fingerprint
        exported = [json.loads(raw) for raw in cli("export", index_name, "--quiet").stdout_bytes.splitlines()[1:-1]]
        assert [e for e in exported if e["id"] == doc.id] == [json.loads(json.dumps(line))]
        redis_client.delete(f"{index_name}:{doc.id}".encode())

    round_trip()
