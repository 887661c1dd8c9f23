"""Range queries, paging, batch queries, vectors from stdin and the query cache, on the real server and models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import SAMPLE, one_error_line
from vsearch.models.onnx import model_fingerprint
from vsearch.store.query_cache import DEFAULT_TTL, cache_key

# 2-d vectors at known angles and lengths from the query [1, 0].
POINTS = {"a": [1, 0], "b": [1, 1], "c": [0, 1], "d": [-1, 0], "e": [2, 0.5], "f": [1, -0.2], "g": [1, 1.2]}
QUERY = [1, 0]


def vector_index(cli, name: str, tmp_path: Path, metric: str, points: dict[str, list[float]] = POINTS) -> None:
    cli("create-index", name, "--dim", "2", "--algorithm", "flat", "--metric", metric, "--tag", "kind")
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"id": i, "kind": "odd" if n % 2 else "even", "v": v}) + "\n"
                            for n, (i, v) in enumerate(points.items())))
    cli("load", name, path, "--vector-column", "v")


def expected(metric: str, query: list[float], points: dict[str, list[float]]) -> dict[str, float]:
    """Each point's score in vsearch's convention, computed here in float64."""
    q = np.asarray(query, dtype=np.float64)
    out = {}
    for key, value in points.items():
        v = np.asarray(value, dtype=np.float64)
        if metric == "cosine":
            out[key] = float(q @ v / (np.linalg.norm(q) * np.linalg.norm(v)))
        elif metric == "ip":
            out[key] = float(q @ v)
        else:
            out[key] = float(np.linalg.norm(q - v))
    return out


@pytest.mark.parametrize("metric,option,threshold", [("cosine", "--min-score", 0.5), ("ip", "--min-score", 0.5),
                                                      ("l2", "--max-distance", 1.3)])
def test_range_query_returns_every_match_within_the_threshold_best_first(cli, index_name, tmp_path, metric, option,
                                                                          threshold) -> None:
    vector_index(cli, index_name, tmp_path, metric)
    scores = expected(metric, QUERY, POINTS)
    within = {k for k, s in scores.items() if (s <= threshold if metric == "l2" else s >= threshold)}
    hits = cli.jsonl("query", index_name, "--vector", json.dumps(QUERY), option, str(threshold))
    assert {h["id"] for h in hits} == within
    # L2: "g" is 1.2 away (1.44 squared): a radius left unsquared (1.3) would lose it.
    assert metric != "l2" or "g" in within
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    ordered = sorted(hits, key=lambda h: h["score"], reverse=metric != "l2")
    assert [h["id"] for h in hits] == [h["id"] for h in ordered]
    # The same score convention as KNN: the same numbers for the same documents.
    knn = {h["id"]: h["score"] for h in cli.jsonl("query", index_name, "--vector", json.dumps(QUERY), "-k", "7")}
    assert all(h["score"] == knn[h["id"]] for h in hits)
    assert all(math.isclose(h["score"], scores[h["id"]], abs_tol=1e-5) for h in hits)
    capped = cli.jsonl("query", index_name, "--vector", json.dumps(QUERY), option, str(threshold), "-k", "2")
    assert capped == hits[:2]
    filtered = cli.jsonl("query", index_name, "--vector", json.dumps(QUERY), option, str(threshold), "--where", "kind=odd")
    assert [h["id"] for h in filtered] == [h["id"] for h in hits if h["kind"] == "odd"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_range_query_matches_brute_force_whatever_the_threshold(cli, tmp_path, data) -> None:
    for metric in ("cosine", "l2"):
        name = f"range-{metric}"
        if not cli("info", name, ok=False).exit_code == 0:
            vector_index(cli, name, tmp_path, metric)
        query = data.draw(st.lists(st.floats(-3, 3).filter(lambda x: abs(x) > 0.01), min_size=2, max_size=2))
        scores = expected(metric, query, POINTS)
        if metric == "l2":
            threshold = data.draw(st.floats(0, 6))
            within = {k for k, s in scores.items() if s <= threshold}
            option = "--max-distance"
        else:
            threshold = data.draw(st.floats(-1, 1))
            within = {k for k, s in scores.items() if s >= threshold}
            option = "--min-score"
        hits = cli.jsonl("query", name, "--vector", json.dumps(query), option, repr(threshold))
        near_edge = {k for k, s in scores.items() if abs(s - threshold) < 1e-4}  # float32 rounding decides those
        assert {h["id"] for h in hits} - near_edge == within - near_edge


def test_range_query_errors_are_one_line(cli, index_name, tmp_path) -> None:
    vector_index(cli, index_name, tmp_path, "l2")
    base = ("query", index_name, "--vector", "[1, 0]")
    cases = [
        (["--min-score", "0.5"], "an L2 index is searched by distance: use --max-distance"),
        (["--max-distance", "-1"], "--max-distance must be a finite number >= 0"),
        (["--max-distance", "1", "--ef-runtime", "10"], "--ef-runtime tunes KNN queries"),
        (["-k", "9000", "--offset", "1001"], "-k plus --offset must be at most 10,000"),
    ]
    for extra, message in cases:
        result = cli(*base, *extra, ok=False)
        assert result.exit_code == 2 and message in one_error_line(result), extra
    cli("create-index", f"{index_name}c", "--dim", "2", "--algorithm", "flat")
    for extra, message in [(["--max-distance", "1"], "a COSINE index is searched by score: use --min-score"),
                           (["--min-score", "1.5"], "a cosine similarity is at most 1")]:
        result = cli("query", f"{index_name}c", "--vector", "[1, 0]", *extra, ok=False)
        assert result.exit_code == 2 and message in one_error_line(result), extra


def test_range_explain_shows_the_radius_in_redis_units(cli, index_name, tmp_path) -> None:
    vector_index(cli, index_name, tmp_path, "l2")
    out = cli("query", index_name, "--vector", "[1, 0]", "--max-distance", "1.5", "--explain").stdout
    assert "VECTOR_RANGE $RADIUS $BLOB" in out and "RADIUS 2.25" in out


def test_offset_pages_through_the_knn_results(cli, index_name, tmp_path) -> None:
    vector_index(cli, index_name, tmp_path, "cosine")
    everything = cli.jsonl("query", index_name, "--vector", "[1, 0]", "-k", "7")
    pages = [cli.jsonl("query", index_name, "--vector", "[1, 0]", "-k", "3", "--offset", str(n)) for n in (0, 3, 6)]
    assert [p for page in pages for p in page] == everything
    assert [len(p) for p in pages] == [3, 3, 1]
    assert cli.jsonl("query", index_name, "--vector", "[1, 0]", "-k", "3", "--offset", "7") == []
    # --like leaves the document itself out wherever it ranks, and pages stay contiguous.
    like = cli.jsonl("query", index_name, "--like", "a", "-k", "6")
    paged = [cli.jsonl("query", index_name, "--like", "a", "-k", "2", "--offset", str(n)) for n in (0, 2, 4)]
    assert [p for page in paged for p in page] == like and "a" not in {h["id"] for h in like}


def test_batch_queries_give_the_same_results_as_one_by_one(cli, products, tmp_path) -> None:
    texts = [f"{colour} {thing}" for colour in ("red", "blue", "black", "white", "green", "brown", "pink", "grey")
             for thing in ("dress", "watch", "shoes", "shirt", "bag", "belt", "jeans", "socks", "cap")]
    assert len(texts) > 64  # more than one batch
    plain = tmp_path / "queries.txt"
    plain.write_text("\n".join(texts) + "\n\n")
    rows = cli.jsonl("query", products, "--batch", plain, "-k", "3", "--where", "year>=2011")
    jsonl = "".join(json.dumps({"id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    tagged = cli.jsonl("query", products, "--batch", "-", "-k", "3", "--where", "year>=2011", input=jsonl)
    for i, text in enumerate(texts):
        alone = cli.jsonl("query", products, text, "-k", "3", "--where", "year>=2011")
        assert [{k: v for k, v in r.items() if k != "query"} for r in rows if r["query"] == text] == alone
        mine = [r for r in tagged if r["query_id"] == f"q{i}"]
        assert [{k: v for k, v in r.items() if k not in ("query", "query_id")} for r in mine] == alone
        assert all(r["query"] == text for r in mine)
    assert "query_id" not in rows[0]
    assert [r["query"] for r in rows[::3]] == texts  # input order


def test_batch_errors_are_one_line(cli, products, tmp_path) -> None:
    missing = cli("query", products, "--batch", tmp_path / "nope.txt", ok=False)
    assert missing.exit_code == 1 and "--batch: cannot read" in one_error_line(missing)
    bad = cli("query", products, "--batch", "-", input='{"text": "red dress"}\nnot json\n', ok=False)
    assert bad.exit_code == 1 and "--batch line 2: not a JSON object" in one_error_line(bad)
    empty = cli("query", products, "--batch", "-", input='{"id": 1, "text": ""}\n', ok=False)
    assert "--batch line 1: needs a non-empty string \"text\"" in one_error_line(empty)
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\xe9\n".encode("latin-1"))
    undecodable = cli("query", products, "--batch", binary, ok=False)
    assert undecodable.exit_code == 1 and "is not UTF-8 text" in one_error_line(undecodable)
    both = cli("query", products, "red dress", "--batch", "-", input="x\n", ok=False)
    assert both.exit_code == 2 and "--batch reads the queries from its file" in one_error_line(both)


def test_vector_from_stdin_takes_encode_output_or_a_json_array(cli, products) -> None:
    encoded = cli("encode", "-", input="black leather watch for men\nsecond line is ignored\n").stdout
    piped = cli.jsonl("query", products, "--vector", "-", "-k", "5", input=encoded)
    by_text = cli.jsonl("query", products, "black leather watch for men", "-k", "5", "--mode", "vector")
    assert [h["id"] for h in piped] == [h["id"] for h in by_text]
    assert all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(piped, by_text))
    vector = json.loads(encoded.splitlines()[0])["vector"]
    spread = json.dumps(vector, indent=2)  # a JSON array over many lines
    assert cli.jsonl("query", products, "--vector", "-", "-k", "5", input=spread) == piped
    bad = cli("query", products, "--vector", "-", input="[1, 2, oops\n", ok=False)
    assert bad.exit_code == 1 and "--vector must be a JSON array of numbers" in one_error_line(bad)


def test_text_queries_are_cached_in_redis_with_a_ttl(cli, products, redis_client) -> None:
    from vsearch.models import load_text_encoder

    text = "a cached query about hiking boots"
    key = cache_key(model_fingerprint("all-MiniLM-L6-v2"), text)
    assert key.startswith("__vsearch:qcache:")
    redis_client.delete(key)
    uncached = cli.jsonl("query", products, text, "--no-cache")
    assert not redis_client.exists(key)
    first = cli.jsonl("query", products, text)
    cached = np.frombuffer(redis_client.get(key), dtype="<f4")
    assert 0 < redis_client.ttl(key) <= DEFAULT_TTL
    reference = load_text_encoder("all-MiniLM-L6-v2", "cpu").encode_texts([text])[0]
    assert float(cached @ reference / np.linalg.norm(cached) / np.linalg.norm(reference)) > 0.9999
    assert cli.jsonl("query", products, text) == first == uncached
    redis_client.delete(key)
    cli("query", products, text, "--cache-ttl", "60")
    assert 0 < redis_client.ttl(key) <= 60
    # A cached vector is the query's vector: a planted one is what the search uses.
    redis_client.set(key, np.asarray(reference * -1, dtype="<f4").tobytes())
    assert cli.jsonl("query", products, text, "-k", "1")[0]["id"] != first[0]["id"]
    redis_client.delete(key)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(queries=st.lists(st.tuples(st.one_of(st.none(), st.integers(), st.text(max_size=8)),
                                  st.text(min_size=1, max_size=40).filter(lambda t: t.strip())), min_size=1, max_size=5))
def test_batch_rows_carry_each_query_and_its_id_whatever_they_hold(cli, products, queries) -> None:
    lines = "".join(json.dumps({"text": t} if i is None else {"id": i, "text": t}) + "\n" for i, t in queries)
    rows = cli.jsonl("query", products, "--batch", "-", "-k", "1", input=lines)
    assert [r["query"] for r in rows] == [t for _, t in queries]
    assert [r.get("query_id") for r in rows] == [None if i is None else str(i) for i, _ in queries]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vector=st.lists(st.floats(-1e6, 1e6).filter(lambda x: abs(x) > 1e-3), min_size=2, max_size=2),
       form=st.sampled_from(["line", "indented", "encode"]))
def test_vector_from_stdin_is_the_vector_given_inline(cli, tmp_path, vector, form) -> None:
    if cli("info", "stdin-vectors", ok=False).exit_code != 0:
        vector_index(cli, "stdin-vectors", tmp_path, "cosine")
    text = {"line": json.dumps(vector), "indented": json.dumps(vector, indent=3),
            "encode": json.dumps({"id": "1", "vector": vector}) + "\n" + json.dumps({"id": "2", "vector": [0]})}[form]
    inline = cli.jsonl("query", "stdin-vectors", "--vector", json.dumps(vector), "-k", "7")
    assert cli.jsonl("query", "stdin-vectors", "--vector", "-", "-k", "7", input=text) == inline


def test_a_batch_takes_image_queries_with_one_model_load(cli, products, tmp_path) -> None:
    """Lines with "image" search the image vectors, in the batch's order, mixed with text lines."""
    import shutil

    shutil.copy(SAMPLE / "images" / "1653.jpg", tmp_path / "watch.jpg")
    batch = tmp_path / "queries.jsonl"
    batch.write_text('{"id": "i1", "image": "watch.jpg"}\n{"id": "t1", "text": "black leather watch"}\n'
                     f'{{"id": "i2", "image": "{SAMPLE / "images" / "1653.jpg"}"}}\n')
    rows = cli.jsonl("query", products, "--batch", batch, "-k", "2")
    assert [row["query_id"] for row in rows] == ["i1", "i1", "t1", "t1", "i2", "i2"]
    alone = cli.jsonl("query", products, "--image", SAMPLE / "images" / "1653.jpg", "-k", "2")
    assert [(r["id"], r["score"]) for r in rows[:2]] == [(r["id"], r["score"]) for r in alone]
    assert rows[0]["query"] == str(tmp_path / "watch.jpg")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"image": "missing.jpg"}\n')
    result = cli("query", products, "--batch", bad, ok=False)
    assert result.exit_code == 1 and "--batch line 2" in result.stderr and "not found" in result.stderr
