"""What vsearch promises about stored data, tried as an attacker or a careless user would, on the real server.

- No two indexes overlap, whatever their names or prefixes; no document key reaches vsearch's own keys.
- A value Redis would not index is rejected before it is written; `load` never calls an unindexed document loaded.
- A JSON batch is checked before it is sent, and every reply is checked after.
- Ids are used exactly as written; duplicates are reported; result fields never collide with document fields.
- Requests that cannot be met (empty query, -k too large, unknown --return field) say so.
- Image paths in an input stay inside the image root.
- A model directory changed in place (same path, same dimension) re-embeds on the next load (test_cron.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import SAMPLE, one_error_line


def jsonl(path: Path, rows: list[dict] | list[str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_indexes_whose_names_share_a_prefix_do_not_see_each_other(cli, redis_client, index_name, tmp_path) -> None:
    parent, child = index_name, f"{index_name}:b"
    for name in (parent, child):
        cli("create-index", name, "--dim", "2", "--algorithm", "flat")
    cli("load", parent, jsonl(tmp_path / "p.jsonl", [{"id": "x", "v": [1, 0]}]), "--vector-column", "v")
    cli("load", child, jsonl(tmp_path / "c.jsonl", [{"id": "y", "v": [0, 1]}, {"id": "z", "v": [1, 1]}]), "--vector-column", "v")
    assert [h["id"] for h in cli.jsonl("query", parent, "--vector", "[0, 1]", "-k", "10")] == ["x"]
    cli("drop-index", parent, "--delete-documents")
    assert len(cli.jsonl("query", child, "--vector", "[0, 1]", "-k", "10")) == 2


@pytest.mark.parametrize("prefix", ["", "__vsearch:", "__vs", "PARENT:", "PARENT:sub:", "PAR"])
def test_overlapping_or_reserved_prefixes_are_refused(cli, redis_client, index_name, prefix) -> None:
    cli("create-index", index_name, "--dim", "2")
    result = cli("create-index", index_name + "x", "--dim", "2", "--prefix", prefix.replace("PARENT", index_name)
                 .replace("PAR", index_name[:3]), ok=False)
    assert result.exit_code == 2
    assert "prefix" in one_error_line(result)
    assert f"{index_name}x~1".encode() not in redis_client.execute_command("FT._LIST")


def test_a_document_cannot_overwrite_vsearchs_own_records(cli, index_name, tmp_path) -> None:
    victim = index_name
    cli("create-index", victim, "--dim", "2")
    cli("create-index", "vsearch", "--dim", "2")
    try:
        rows = [{"id": f"index:{victim}", "v": [1, 0]}, {"id": f"__vsearch:index:{victim}", "v": [1, 0]}]
        cli("load", "vsearch", jsonl(tmp_path / "a.jsonl", rows), "--vector-column", "v")
        assert json.loads(cli("info", victim).stdout)["index"]["name"] == victim
    finally:
        cli("drop-index", "vsearch", "--delete-documents")
    refused = cli("create-index", "__vsearch", "--dim", "2", ok=False)
    assert refused.exit_code == 2 and "overlaps vsearch's own keys" in refused.stderr


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", "1e309"])
def test_a_numeric_value_redis_would_not_index_is_rejected(cli, index_name, tmp_path, value) -> None:
    cli("create-index", index_name, "--dim", "2", "--numeric", "price")
    rows = [{"id": "ok", "price": "3", "v": [1, 0]}, {"id": "bad", "price": value, "v": [0, 1]}]
    result = cli("load", index_name, jsonl(tmp_path / "a.jsonl", rows), "--vector-column", "v", ok=False)
    assert result.exit_code == 4
    assert "field 'price' is NUMERIC" in result.stderr and "not a finite number" in result.stderr
    assert "1 rejected" in result.stderr and "1 documents in the index" in result.stderr


def test_json_storage_values_are_made_indexable_or_rejected_before_the_batch(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "2", "--storage", "json", "--tag", "kind", "--text", "title",
        "--numeric", "n")
    rows = ['{"id": "a", "kind": 5, "title": "one", "n": "7", "v": [1, 0]}',
            '{"id": "b", "kind": ["x", 2], "title": 12, "v": [0, 1]}',
            '{"id": "c", "kind": "y", "title": "three", "extra": NaN, "v": [1, 1]}',
            '{"id": "d", "kind": "z", "title": "four", "v": [1, 1]}']
    result = cli("load", index_name, jsonl(tmp_path / "a.jsonl", rows), "--vector-column", "v", ok=False)
    assert result.exit_code == 4
    assert "line 3: field 'extra' holds NaN or Infinity" in result.stderr
    assert "3 documents in the index" in result.stderr
    assert redis_client.execute_command("JSON.GET", f"{index_name}:c") is None
    found = cli.jsonl("query", index_name, "--vector", "[1, 0]", "--filter", "@kind:{5}")
    assert [h["id"] for h in found] == ["a"]


def test_duplicate_ids_in_one_input_are_reported(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "2")
    rows = [{"id": "a", "v": [1, 0]}, {"id": "b", "v": [0, 1]}, {"id": "a", "v": [1, 1]}]
    result = cli("load", index_name, jsonl(tmp_path / "a.jsonl", rows), "--vector-column", "v", ok=False)
    assert result.exit_code == 4
    assert "line 3: id 'a' appeared earlier in this input" in result.stderr
    assert "3 read, 0 embedded, 2 given" in result.stderr and "2 documents in the index" in result.stderr


def test_ids_are_kept_exactly_as_written(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "2")
    rows = [{"id": "  padded  ", "v": [1, 0]}, {"id": "x", "v": [0, 1]}]
    cli("load", index_name, jsonl(tmp_path / "a.jsonl", rows), "--vector-column", "v")
    assert redis_client.exists(f"{index_name}:  padded  ")
    assert [h["id"] for h in cli.jsonl("query", index_name, "--like", "  padded  ")] == ["x"]
    assert [h["id"] for h in cli.jsonl("query", index_name, "--like", "x")] == ["  padded  "]


def test_document_fields_never_replace_the_results_own(cli, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--text", "body")
    path = tmp_path / "a.csv"
    path.write_text("sku,id,score,rank,body\nA1,other-1,999,7,red shoes\nB2,other-2,5,1,blue hat\n")
    cli("load", index_name, path, "--id-field", "sku", "--text-field", "body")
    hit = cli.jsonl("query", index_name, "red shoes", "-k", "1")[0]
    assert (hit["rank"], hit["id"]) == (1, "A1") and isinstance(hit["score"], float) and hit["score"] > 0.5
    assert (hit["fields.id"], hit["fields.score"], hit["fields.rank"]) == ("other-1", "999", "7")
    rows = list(csv.DictReader(io.StringIO(cli("query", index_name, "red shoes", "-k", "1", "--format", "csv").stdout)))
    assert rows[0]["id"] == "A1" and rows[0]["fields.id"] == "other-1"
    table = cli("query", index_name, "red shoes", "-k", "1", "--format", "table", "--return", "id,body").stdout
    assert "fields.id" in table and "A1" in table


def test_requests_that_cannot_be_met_say_so(cli, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "2", "--tag", "kind")
    cli("load", index_name, jsonl(tmp_path / "a.jsonl", [{"id": "a", "kind": "x", "v": [1, 0]}]), "--vector-column", "v")
    empty = cli("query", index_name, "", ok=False)
    assert empty.exit_code == 2 and "the query text is empty" in one_error_line(empty)
    blank = cli("query", index_name, "   ", ok=False)
    assert blank.exit_code == 2
    huge = cli("query", index_name, "--vector", "[1, 0]", "-k", "100000", ok=False)
    assert huge.exit_code == 2 and "-k must be between 1 and 10,000" in one_error_line(huge)
    typo = cli("query", index_name, "--vector", "[1, 0]", "--return", "kind,nosuch", ok=False)
    assert typo.exit_code == 2 and "no result has field 'nosuch'" in one_error_line(typo)
    assert cli.jsonl("query", index_name, "--vector", "[1, 0]", "--return", "kind")[0]["kind"] == "x"


def test_image_paths_stay_inside_the_image_root(cli, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector", "--algorithm", "flat")
    inside = tmp_path / "data"
    (inside / "pics").mkdir(parents=True)
    outside = tmp_path / "secret.jpg"
    outside.write_bytes((SAMPLE / "images" / "1653.jpg").read_bytes())
    (inside / "pics" / "ok.jpg").write_bytes(outside.read_bytes())
    os.symlink(outside, inside / "pics" / "link.jpg")
    rows = [{"id": "ok", "image": "pics/ok.jpg"}, {"id": "up", "image": "../secret.jpg"},
            {"id": "abs", "image": str(outside)}, {"id": "link", "image": "pics/link.jpg"},
            {"id": "ghost", "image": "../no-such-file.jpg"}]
    path = jsonl(inside / "a.jsonl", rows)
    result = cli("load", index_name, path, "--image-field", "image", ok=False)
    assert result.exit_code == 4 and "4 rejected" in result.stderr
    for line in (3, 4, 5):
        assert f"line {line}: image path" in result.stderr
    # A path that leaves the root gets the same message whether or not the file exists: no probing.
    assert "leaves the image root" in result.stderr and "not found" not in result.stderr
    wider = cli("load", index_name, path, "--image-field", "image", "--image-root", tmp_path, ok=False)
    assert wider.exit_code == 4 and "1 rejected" in wider.stderr and "image file not found" in wider.stderr


def test_a_jsonl_row_stays_one_line_for_every_reader(cli, index_name, tmp_path) -> None:
    """U+0085, U+2028 and U+2029 are legal raw in JSON strings, but str.splitlines breaks lines on them."""
    cli("create-index", index_name, "--dim", "2")
    rows = [{"id": "a\x85b\u2028c\u2029d", "v": [1, 0]}]
    cli("load", index_name, jsonl(tmp_path / "a.jsonl", rows), "--vector-column", "v")
    out = cli("query", index_name, "--vector", "[1, 0]", "--format", "jsonl").stdout
    assert len(out.splitlines()) == 1 and json.loads(out)["id"] == rows[0]["id"]
