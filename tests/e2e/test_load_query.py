"""`vsearch load` and `vsearch query` end to end on the real server, with the real models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import SAMPLE, one_error_line
from vsearch.models import load_image_encoder, load_text_encoder, open_image

ITEMS = [
    {"id": "w1", "title": "black leather watch for men", "kind": "watch", "year": 2011},
    {"id": "w2", "title": "gold bracelet watch for women", "kind": "watch", "year": 2012},
    {"id": "s1", "title": "red running shoes", "kind": "shoe", "year": 2010},
    {"id": "s2", "title": "brown formal leather shoes", "kind": "shoe", "year": 2013},
    {"id": "b1", "title": "pink backpack for school", "kind": "bag", "year": 2011},
]


def write(tmp_path: Path, fmt: str, rows: list[dict]) -> Path:
    path = tmp_path / f"items.{fmt}"
    if fmt in ("csv", "tsv"):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t" if fmt == "tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "json":
        path.write_text(json.dumps(rows, indent=1))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_index(cli, name: str, *options: str) -> None:
    cli("create-index", name, "--tag", "kind", "--text", "title", "--numeric", "year", *options)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl"])
@pytest.mark.parametrize("via_stdin", [False, True])
def test_load_every_format_from_file_and_stdin(cli, redis_client, index_name, tmp_path, fmt, via_stdin) -> None:
    make_index(cli, index_name, "--storage", "hash")
    path = write(tmp_path, fmt, ITEMS)
    if via_stdin:
        result = cli("load", index_name, "-", "--text-field", "title", input=path.read_text())
    else:
        result = cli("load", index_name, path, "--text-field", "title")
    assert f"loaded '{index_name}': 5 read, 5 embedded" in result.stderr
    stored = redis_client.hgetall(f"{index_name}:w1")
    assert stored[b"title"] == b"black leather watch for men"
    assert stored[b"kind"] == b"watch" and stored[b"year"] == b"2011"
    vector = np.frombuffer(stored[b"text_vector"], dtype="<f4")
    np.testing.assert_allclose(vector, load_text_encoder().encode_texts([ITEMS[0]["title"]])[0], atol=1e-6)
    hits = cli.jsonl("query", index_name, "a wrist watch for a man", "-k", "2")
    assert hits[0]["id"] == "w1"
    assert set(hits[0]) >= {"rank", "id", "score", "title", "kind", "year"}
    assert "text_vector" not in hits[0]


def test_reload_is_idempotent_and_replaces_documents(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name, "--storage", "hash")
    path = write(tmp_path, "jsonl", [{**ITEMS[0], "extra": "old"}, *ITEMS[1:]])
    cli("load", index_name, path, "--text-field", "title")
    first = cli.jsonl("query", index_name, "watch", "-k", "5")
    cli("load", index_name, path, "--text-field", "title")
    assert cli.jsonl("query", index_name, "watch", "-k", "5") == first
    assert len(redis_client.keys(f"{index_name}:*")) == 5
    cli("load", index_name, write(tmp_path, "jsonl", ITEMS[:1]), "--text-field", "title")
    assert b"extra" not in redis_client.hgetall(f"{index_name}:w1")  # no field of the older version is left


def test_filters_and_output_formats(cli, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    cli("load", index_name, write(tmp_path, "csv", ITEMS), "--text-field", "title")
    shoes = cli.jsonl("query", index_name, "leather", "--filter", "@kind:{shoe}")
    assert {h["id"] for h in shoes} == {"s1", "s2"}
    recent = cli.jsonl("query", index_name, "leather", "--filter", "@year:[2012 +inf]")
    assert {h["id"] for h in recent} == {"w2", "s2"}
    both = cli.jsonl("query", index_name, "watch", "--filter", "@kind:{watch} @title:leather")
    assert [h["id"] for h in both] == ["w1"]
    as_json = json.loads(cli("query", index_name, "watch", "-k", "2", "--format", "json").stdout)
    assert [h["rank"] for h in as_json] == [1, 2]
    as_csv = cli("query", index_name, "watch", "-k", "2", "--format", "csv", "--return", "title").stdout.splitlines()
    # snippet: the passage that matched best, and where it is in its field (an index with passages, the default)
    assert as_csv[0] == "rank,id,score,title,snippet,snippet_field,snippet_start,snippet_end" and len(as_csv) == 3
    table = cli("query", index_name, "watch", "-k", "2", "--format", "table").stdout
    assert "w1" in table and "rank" in table


def test_stopword_union_in_a_filter_does_not_crash_the_server(cli, index_name, tmp_path, redis_client) -> None:
    make_index(cli, index_name)
    cli("load", index_name, write(tmp_path, "csv", ITEMS), "--text-field", "title")
    hits = cli.jsonl("query", index_name, "shoes", "--filter", "@title:(is|an|running)")
    assert [h["id"] for h in hits] == ["s1"]
    # Stopwords in an intersection keep RediSearch's meaning: they are ignored.
    assert [h["id"] for h in cli.jsonl("query", index_name, "x", "--filter", "@title:(the running)")] == ["s1"]
    assert redis_client.ping()


def test_scores_follow_the_metric(cli, index_name, tmp_path) -> None:
    path = write(tmp_path, "jsonl", ITEMS)
    vectors = load_text_encoder().encode_texts([r["title"] for r in ITEMS])
    query = load_text_encoder().encode_texts(["watch"])[0]
    for metric in ("cosine", "ip", "l2"):
        name = f"{index_name}{metric}"
        make_index(cli, name, "--metric", metric, "--algorithm", "flat")
        cli("load", name, path, "--text-field", "title")
        hits = cli.jsonl("query", name, "watch", "-k", "5", "--mode", "vector")
        expected = {
            "cosine": vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query)),
            "ip": vectors @ query,
            "l2": np.linalg.norm(vectors - query, axis=1),
        }[metric]
        by_id = {r["id"]: float(v) for r, v in zip(ITEMS, expected)}
        for hit in hits:
            assert hit["score"] == pytest.approx(by_id[hit["id"]], abs=1e-4)


@pytest.mark.parametrize("datatype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("storage", ["hash", "json"])
def test_datatypes_and_storage(cli, redis_client, index_name, tmp_path, datatype, storage) -> None:
    make_index(cli, index_name, "--type", datatype, "--storage", storage, "--no-passages")
    cli("load", index_name, write(tmp_path, "jsonl", ITEMS), "--text-field", "title")
    hits = cli.jsonl("query", index_name, "a wrist watch for a man", "-k", "1", "--mode", "vector")
    assert hits[0]["id"] == "w1"
    assert hits[0]["score"] == pytest.approx(cli.jsonl("similarity", "a wrist watch for a man", ITEMS[0]["title"])[0]["score"], abs=0.01)
    assert hits[0]["year"] in (2011, "2011")
    like = cli.jsonl("query", index_name, "--like", "s1", "-k", "1")
    assert like[0]["id"] == "s2"  # the other shoe, never s1 itself
    if storage == "json":
        document = json.loads(redis_client.execute_command("JSON.GET", f"{index_name}:w1"))
        assert document["year"] == 2011 and len(document["text_vector"]) == 384


def test_query_by_vector_and_like(cli, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    cli("load", index_name, write(tmp_path, "jsonl", ITEMS), "--text-field", "title")
    vector = load_text_encoder().encode_texts(["pink bag"])[0]
    hits = cli.jsonl("query", index_name, "--vector", json.dumps(vector.tolist()), "-k", "1")
    assert hits[0]["id"] == "b1"
    assert all(h["id"] != "w1" for h in cli.jsonl("query", index_name, "--like", "w1"))
    short = cli("query", index_name, "--vector", "[1, 2, 3]", ok=False)
    assert short.exit_code == 2 and "has 3 dimensions" in short.stderr and "384" in short.stderr
    missing = cli("query", index_name, "--like", "nope", ok=False)
    assert missing.exit_code == 1 and "document 'nope' not found" in missing.stderr


def test_sample_catalogue_text_image_and_filtered_queries(cli, products) -> None:
    watches = cli.jsonl("query", products, "black leather watch for men", "-k", "5", "--filter", "@gender:{Men}")
    assert len(watches) == 5 and all(h["gender"] == "Men" for h in watches)
    assert sum(h["articleType"] == "Watches" for h in watches) >= 3
    shoe = SAMPLE / "images" / "1653.jpg"
    similar = cli.jsonl("query", products, "--image", shoe, "-k", "5")
    assert similar[0]["id"] == "1653" and similar[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert sum("Shoes" in h["articleType"] for h in similar) >= 3
    expected = load_image_encoder().encode_images([open_image(shoe)])[0]
    assert len(expected) == 1280


def test_images_relative_to_the_input_file(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image", "--no-text-vector", "--tag", "articleType", "--storage", "hash")
    rows = list(csv.DictReader(open(SAMPLE / "products.csv")))[:4]
    folder = tmp_path / "catalogue"
    (folder / "pics").mkdir(parents=True)
    for row in rows:
        (folder / "pics" / f"{row['id']}.jpg").write_bytes((SAMPLE / row["image"]).read_bytes())
        row["image"] = f"pics/{row['id']}.jpg"
    path = write(folder, "jsonl", rows)
    cli("load", index_name, path, "--image-field", "image")
    assert len(redis_client.hget(f"{index_name}:{rows[0]['id']}", "image_vector")) == 1280 * 4
    hits = cli.jsonl("query", index_name, "--image", folder / rows[1]["image"], "-k", "1")
    assert hits[0]["id"] == rows[1]["id"]


# ---------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, an exit code, nothing half-written


def test_unknown_index(cli, tmp_path) -> None:
    for args in (["load", "no-such-index", write(tmp_path, "csv", ITEMS), "--text-field", "title"],
                 ["query", "no-such-index", "hello"]):
        result = cli(*args, ok=False)
        assert result.exit_code == 2  # a usage error: the command names an index that is not there
        assert result.stderr.strip() == ("vsearch: error: index 'no-such-index' does not exist: "
                                         "run `vsearch create-index no-such-index` first")


def test_missing_id_or_text_field(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    path = write(tmp_path, "csv", ITEMS)
    no_id = cli("load", index_name, path, "--text-field", "title", "--id-field", "sku", ok=False)
    assert no_id.exit_code == 1 and f"{path} line 2: no field 'sku'" in no_id.stderr
    no_text = cli("load", index_name, path, "--text-field", "name", ok=False)
    assert no_text.exit_code == 1 and "no field 'name'" in no_text.stderr
    nothing = cli("load", index_name, path, ok=False)
    assert nothing.exit_code == 2 and "--text-field" in nothing.stderr
    assert redis_client.keys(f"{index_name}:*") == []


def test_a_malformed_line_is_rejected_and_the_run_goes_on(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    lines = [json.dumps({"id": f"d{i}", "title": f"document {i}", "kind": "x", "year": 2000}) for i in range(5)]
    lines.insert(3, '{"id": "broken", "title": ')
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    result = cli("load", index_name, path, "--text-field", "title", "--batch-size", "2", "--rejects", rejects, ok=False)
    assert result.exit_code == 4
    assert f"vsearch: rejected {path} line 4: malformed JSON" in result.stderr
    assert "6 read, 5 embedded" in result.stderr and "1 rejected" in result.stderr
    assert "Traceback" not in result.output
    assert len(redis_client.keys(f"{index_name}:*")) == 5
    assert rejects.read_text() == '{"id": "broken", "title": \n'


def test_strict_stops_at_the_first_bad_record_before_its_batch(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    lines = [json.dumps({"id": f"d{i}", "title": f"document {i}", "year": 2000}) for i in range(5)]
    lines.insert(3, json.dumps({"id": "bad", "title": "x", "year": "soon"}))
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = cli("load", index_name, path, "--text-field", "title", "--batch-size", "2", "--strict", ok=False)
    assert result.exit_code == 1
    assert one_error_line(result).startswith(f"vsearch: error: {path} line 4: field 'year' is NUMERIC but holds 'soon'")
    assert sorted(redis_client.keys(f"{index_name}:*")) == [f"{index_name}:d0".encode(), f"{index_name}:d1".encode()]


def test_malformed_csv_and_bad_numeric_are_rejected(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    path = tmp_path / "bad.csv"
    path.write_text("id,title,kind,year\na,red shoe,shoe,2010\nb,blue shoe,shoe\nc,green shoe,shoe,twenty ten\n")
    result = cli("load", index_name, path, "--text-field", "title", ok=False)
    assert result.exit_code == 4
    assert f"{path} line 3: 3 fields, but the header has 4" in result.stderr
    assert "line 4: field 'year' is NUMERIC but holds 'twenty ten'" in result.stderr
    assert redis_client.keys(f"{index_name}:*") == [f"{index_name}:a".encode()]


def test_missing_image_file_is_named(cli, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--image")
    path = write(tmp_path, "jsonl", [{"id": "1", "title": "x", "image": "nowhere.jpg"}])
    result = cli("load", index_name, path, "--text-field", "title", "--image-field", "image", ok=False)
    assert result.exit_code == 4 and f"image file not found: {tmp_path / 'nowhere.jpg'}" in result.stderr


def test_image_field_needs_an_image_vector(cli, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    result = cli("load", index_name, write(tmp_path, "csv", ITEMS), "--image-field", "title", ok=False)
    assert result.exit_code == 2 and "has no image vector field" in result.stderr


def test_dimension_mismatch_between_model_and_index(cli, redis_client, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "16")
    result = cli("load", index_name, write(tmp_path, "csv", ITEMS), "--text-field", "title", ok=False)
    assert result.exit_code == 2  # the model and the index disagree: a usage error, as for a query
    assert "model 'all-MiniLM-L6-v2' makes 384-d vectors but text_vector" in result.stderr and "16-d" in result.stderr
    assert redis_client.keys(f"{index_name}:*") == []
    query = cli("query", index_name, "hello", ok=False)
    assert query.exit_code == 2 and "384 dimensions" in query.stderr


def test_invalid_filter_is_one_line(cli, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    result = cli("query", index_name, "hello", "--filter", "@kind:{unclosed", ok=False)
    assert result.exit_code == 2  # caught by the filter compiler before anything is sent
    assert one_error_line(result).startswith("vsearch: error: --filter: ")



def test_geo_fields_load_and_filter(cli, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--geo", "where", "--tag", "city")
    shops = [
        {"id": "paris", "title": "a bakery", "city": "Paris", "where": "2.3522,48.8566"},
        {"id": "lyon", "title": "a bakery", "city": "Lyon", "where": "4.8357,45.7640"},
    ]
    cli("load", index_name, write(tmp_path, "jsonl", shops), "--text-field", "title")
    near_paris = cli.jsonl("query", index_name, "bread", "--filter", "@where:[2.35 48.85 50 km]")
    assert [h["id"] for h in near_paris] == ["paris"]
    bad = write(tmp_path, "jsonl", [{"id": "x", "title": "a bakery", "where": "north pole"}])
    result = cli("load", index_name, bad, "--text-field", "title", ok=False)
    assert result.exit_code == 4 and "field 'where' is GEO and needs 'longitude,latitude'" in result.stderr


def test_documents_written_later_are_indexed_by_redis(cli, redis_client, index_name) -> None:
    cli("create-index", index_name, "--dim", "3", "--algorithm", "flat", "--tag", "kind", "--storage", "hash")
    import numpy as np

    redis_client.hset(f"{index_name}:by-hand", mapping={"kind": "manual",
                                                       "text_vector": np.array([1, 0, 0], "<f4").tobytes()})
    hits = cli.jsonl("query", index_name, "--vector", "[1, 0, 0]", "--filter", "@kind:{manual}")
    assert [(h["id"], h["score"]) for h in hits] == [("by-hand", 1.0)]


def test_credentials_in_the_url(cli, redis_client, vsearch_home, index_name) -> None:
    socket = vsearch_home / "redis" / "redis.sock"
    redis_client.execute_command("ACL", "SETUSER", "vs-tester", "on", ">right-pass", "~*", "&*", "+@all")
    try:
        cli("create-index", index_name, "--dim", "3", "--redis-url", f"unix://vs-tester:right-pass@{socket}")
        assert cli.jsonl("query", index_name, "--vector", "[1,0,0]", "--redis-url",
                         f"unix://vs-tester:right-pass@{socket}") == []
        wrong = cli("info", index_name, "--redis-url", f"unix://vs-tester:wrong-pass@{socket}", ok=False)
        assert wrong.exit_code == 1 and "refused the credentials" in wrong.stderr
        assert "wrong-pass" not in wrong.output
    finally:
        redis_client.execute_command("ACL", "DELUSER", "vs-tester")


def test_several_text_fields_are_joined_and_one_may_be_empty(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name, "--storage", "hash")
    papers = [{"id": "p1", "title": "", "body": "red running shoes"},
              {"id": "p2", "title": "Watches", "body": "gold bracelet watch"},
              {"id": "p3", "title": "", "body": ""}]
    path = write(tmp_path, "jsonl", papers[:2])
    cli("load", index_name, path, "--text-field", "title", "--text-field", "body")
    stored = np.frombuffer(redis_client.hget(f"{index_name}:p2", "text_vector"), dtype="<f4")
    np.testing.assert_allclose(stored, load_text_encoder().encode_texts(["Watches gold bracelet watch"])[0], atol=1e-6)
    empty = cli("load", index_name, write(tmp_path, "jsonl", papers[2:]), "--text-field", "title",
                "--text-field", "body", ok=False)
    assert empty.exit_code == 4 and "line 1: nothing to embed: 'title', 'body' empty" in empty.stderr


def test_empty_id_is_named(cli, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    path = write(tmp_path, "csv", [{"id": "a", "title": "x"}, {"id": "", "title": "y"}])
    result = cli("load", index_name, path, "--text-field", "title", ok=False)
    assert result.exit_code == 4 and f"{path} line 3: field 'id' is empty" in result.stderr


def test_table_shows_the_indexed_fields_and_json_every_field(cli, products) -> None:
    table = cli("query", products, "--like", "1653", "-k", "2", "--format", "table").stdout
    header = next(line for line in table.splitlines() if "rank" in line)
    assert "articleType" in header and "baseColour" not in header
    row = cli.jsonl("query", products, "--like", "1653", "-k", "1")[0]
    assert {"baseColour", "season", "usage", "image"} <= set(row)


def test_given_vectors_with_nan_infinity_or_float32_overflow_are_rejected_one_line_each(cli, index_name,
                                                                                         tmp_path) -> None:
    # A value past float32's range used to reach stderr as numpy's RuntimeWarning, two lines of noise.
    cli("create-index", index_name, "--algorithm", "flat", "--dim", "3")
    path = tmp_path / "v.jsonl"
    path.write_text('{"id": "ok", "v": [1, 2, 3]}\n{"id": "nan", "v": [1, NaN, 3]}\n'
                    '{"id": "inf", "v": [1, -Infinity, 3]}\n{"id": "big", "v": [1e39, 0, 0]}\n'
                    '{"id": "max", "v": [3.4e38, 3.4e38, 3.4e38]}\n')
    result = cli("load", index_name, path, "--vector-column", "v", ok=False)
    assert result.exit_code == 4
    rejected = [line for line in result.stderr.splitlines() if line.startswith("vsearch: rejected")]
    assert rejected == [f"vsearch: rejected {path} line {n}: field 'v' holds a NaN, an infinite number or one past "
                        "float32's range (3.4e38)" for n in (2, 3, 4)]
    assert len(result.stderr.splitlines()) == 4 and "Warning" not in result.stderr  # the 3 lines, the summary
    assert sorted(h["id"] for h in cli.jsonl("query", index_name, "--vector", "[1, 2, 3]")) == ["max", "ok"]


def test_an_input_whose_format_cannot_be_told_is_a_usage_error(cli, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00\x01 not any format")
    result = cli("load", index_name, path, "--text-field", "title", ok=False)
    assert result.exit_code == 2
    assert "cannot tell the format" in one_error_line(result)


def test_version_and_list(cli, index_name) -> None:
    from importlib.metadata import version

    assert cli("--version").stdout == f"vsearch {version('vsearch')}\n"
    make_index(cli, index_name)
    rows = {row["name"]: row for row in cli.jsonl("list", "--format", "jsonl")}
    assert rows[index_name]["documents"] == 0
    assert rows[index_name]["made_by"] == "vsearch"
    assert "all-MiniLM-L6-v2" in rows[index_name]["models"]
    assert "text_vector" in rows[index_name]["vectors"]
