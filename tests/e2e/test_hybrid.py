"""Query modes: text and hybrid mode on the real server, the text path fuzzed (the fusion functions themselves:
tests/unit/test_hybrid.py)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.conftest import one_error_line
from tests.unit.test_hybrid import cases
from vsearch.filters import STOPWORDS
from vsearch.query.hybrid import Fusion, FusionParams, fuse, hybrid_search
from vsearch.schema import Metric
from vsearch.stems import stem_query, stems
from vsearch.store import Hit, document_vector, get_spec
from vsearch.store.keys import record_key
from vsearch.store.search import search, text_search, text_terms


# ---------------------------------------------------------------------------------------------------
# On the real server, through the CLI


def test_text_mode_ranks_by_bm25_over_the_text_fields(cli, products) -> None:
    hits = cli.jsonl("query", products, "leather belt", "--mode", "text", "-k", "20")
    names = [h["productDisplayName"].lower() for h in hits]
    assert hits and all("leather" in n or "belt" in n for n in names)  # `belts` too: RediSearch stems English
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    both = [h for h, n in zip(hits, names) if "leather" in n and "belt" in n]
    assert both and hits[0]["id"] == both[0]["id"]  # a title with both words outranks one with either


def test_text_mode_on_json_documents(cli, index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "2", "--storage", "json", "--text", "title", "--algorithm", "flat")
    rows = [{"id": "a", "title": "red leather boots", "year": 2011, "v": [1, 0]},
            {"id": "b", "title": "blue boots", "year": 2012, "v": [0, 1]}, {"id": "c", "title": "green tea", "v": [1, 1]}]
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("load", index_name, path, "--vector-column", "v")
    hits = cli.jsonl("query", index_name, "leather boots", "--mode", "text")
    assert [h["id"] for h in hits] == ["a", "b"] and hits[0]["year"] == 2011 and "v" not in hits[0]
    titles = cli.jsonl("query", index_name, "boots", "--mode", "text", "--return", "title")
    assert {h["id"]: h["title"] for h in titles} == {"a": "red leather boots", "b": "blue boots"}


def test_an_index_from_before_stems_ranks_words_as_written_until_rebuilt(cli, index_name, tmp_path,
                                                                         redis_client) -> None:
    cli("create-index", index_name, "--dim", "2", "--text", "title", "--algorithm", "flat")
    record = json.loads(redis_client.get(record_key(index_name)))
    del record["index"]["stemmed_text"]  # what vsearch recorded before it indexed stems
    redis_client.set(record_key(index_name), json.dumps(record))
    rows = [{"id": "a", "title": "blue boots", "v": [1, 0]}, {"id": "b", "title": "brown boot", "v": [0, 1]}]
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("load", index_name, path, "--vector-column", "v")
    assert [h["id"] for h in cli.jsonl("query", index_name, "boots", "--mode", "text")] == ["a"]
    cli("load", index_name, path, "--vector-column", "v", "--rebuild")  # rewrites every document, stems too
    assert json.loads(redis_client.get(record_key(index_name)))["index"]["stemmed_text"] is True
    assert sorted(h["id"] for h in cli.jsonl("query", index_name, "boots", "--mode", "text")) == ["a", "b"]


@pytest.mark.parametrize("storage", ["hash", "json"])
def test_text_mode_ranks_stems_once(cli, index_name, tmp_path, storage) -> None:
    # RediSearch's own stemming scored a word as written twice (the word and its stem), and VERBATIM missed the
    # other forms; vsearch indexes the stems of the TEXT fields itself, so every form of a word counts once.
    cli("create-index", index_name, "--dim", "2", "--text", "title", "--algorithm", "flat", "--storage", storage)
    rows = [{"id": "a", "title": "blue boots", "v": [1, 0]}, {"id": "b", "title": "brown boot", "v": [0, 1]},
            {"id": "c", "title": "running shoes", "v": [1, 1]}]
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("load", index_name, path, "--vector-column", "v")
    for word in ("boots", "boot", "Boots!"):
        hits = cli.jsonl("query", index_name, word, "--mode", "text")
        assert sorted(h["id"] for h in hits) == ["a", "b"]
        assert hits[0]["score"] == hits[1]["score"] > 0  # same length, one form each: the same BM25
    assert [h["id"] for h in cli.jsonl("query", index_name, "runs", "--mode", "text")] == ["c"]
    # The stems stay out of sight: the documents show the fields that were loaded, nothing more.
    shown = cli.jsonl("query", index_name, "shoes", "--mode", "text")
    assert shown[0]["title"] == "running shoes" and not any(k.startswith("__vsearch") for k in shown[0])
    assert not any(k.startswith("__vsearch") for h in cli.jsonl("query", index_name, "--like", "a") for k in h)


@pytest.mark.parametrize("storage", ["hash", "json"])
def test_text_ranking_survives_reloads_and_prunes(cli, index_name, tmp_path, storage) -> None:
    # RediSearch 2.10's BM25STD counted rewritten documents' old entries: after two reloads "blue boots" scored 103
    # and "red leather boots" 98 for "leather boots". vsearch now has them purged at the end of each load.
    cli("create-index", index_name, "--dim", "2", "--storage", storage, "--text", "title", "--algorithm", "flat")
    rows = [{"id": "a", "title": "red leather boots", "v": [1, 0]}, {"id": "b", "title": "blue boots", "v": [0, 1]},
            {"id": "c", "title": "green tea", "v": [1, 1]}, {"id": "d", "title": "old boots", "v": [1, 1]}]
    path = tmp_path / "j.jsonl"
    fresh = None
    for round_ in range(3):  # every round changes every document, so each is rewritten
        path.write_text("".join(json.dumps({**r, "round": round_}) + "\n" for r in rows))
        cli("load", index_name, path, "--vector-column", "v")
        hits = cli.jsonl("query", index_name, "leather boots", "--mode", "text", "--return", "title")
        assert [h["id"] for h in hits] == ["a", "b", "d"], hits
        assert all(0 < h["score"] < 5 for h in hits), hits  # a wrapped-around IDF scores ~100
        fresh = fresh or hits
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    cli("load", index_name, path, "--vector-column", "v", "--prune", "--force")
    hits = cli.jsonl("query", index_name, "leather boots", "--mode", "text")
    assert [h["id"] for h in hits] == ["a", "b"] and all(0 < h["score"] < 5 for h in hits), hits


def test_a_load_right_after_create_index_is_indexed_once(cli, index_name, tmp_path, redis_client) -> None:
    # FT.CREATE scans the whole keyspace for the keys it should hold. On a server with many keys the scan was
    # still running while `load` wrote: it indexed those documents a second time, and the duplicate entries made
    # BM25 rank "old boots" (48.9) above "red leather boots" (46.4) for "leather boots" in a fresh index.
    # (This is what made test_text_mode_on_json_documents fail now and then in the full suite.)
    filler = f"{index_name}-filler:"
    for start in range(0, 300_000, 10_000):
        pipe = redis_client.pipeline(transaction=False)
        for i in range(start, start + 10_000):
            pipe.set(f"{filler}{i}", "x")
        pipe.execute()
    try:
        cli("create-index", index_name, "--dim", "2", "--text", "title", "--algorithm", "flat")
        rows = [{"id": "a", "title": "red leather boots", "v": [1, 0]}, {"id": "b", "title": "blue boots", "v": [0, 1]},
                {"id": "c", "title": "green tea", "v": [1, 1]}, {"id": "d", "title": "old boots", "v": [1, 1]}]
        path = tmp_path / "j.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        cli("load", index_name, path, "--vector-column", "v")
        info = redis_client.execute_command("FT.INFO", index_name)
        stats = dict(zip(info[::2], info[1::2]))
        assert int(stats[b"max_doc_id"]) == 4  # each document indexed once
        hits = cli.jsonl("query", index_name, "leather boots", "--mode", "text")
        assert [h["id"] for h in hits][0] == "a" and all(0 < h["score"] < 5 for h in hits), hits
    finally:
        for start in range(0, 300_000, 10_000):
            redis_client.unlink(*(f"{filler}{i}" for i in range(start, start + 10_000)))


def test_filters_apply_to_text_and_hybrid_alike(cli, products) -> None:
    for mode in ("text", "hybrid"):
        hits = cli.jsonl("query", products, "black watch", "--mode", mode, "-k", "15", "--where", "gender=Women")
        assert hits and all(h["gender"] == "Women" for h in hits), mode
        raw = cli.jsonl("query", products, "black watch", "--mode", mode, "-k", "15", "--filter", "@year:[2012 2012]")
        assert raw and all(int(h["year"]) == 2012 for h in raw), mode


def test_hybrid_fuses_what_each_side_finds(cli, products) -> None:
    text = [h["id"] for h in cli.jsonl("query", products, "Titan watch", "--mode", "text", "-k", "5")]
    vector = [h["id"] for h in cli.jsonl("query", products, "Titan watch", "--mode", "vector", "-k", "5")]
    hybrid = cli.jsonl("query", products, "Titan watch", "--mode", "hybrid", "--fusion", "rrf", "-k", "10")
    assert set(text[:2]) | set(vector[:2]) <= {h["id"] for h in hybrid}
    assert [h["rank"] for h in hybrid] == list(range(1, 11))
    # Linear fusion scores every candidate on both sides, so with all the weight on one side it ranks as that side.
    # (as to BM25 scores: many names hold both words equally often, and such ties may come in any order)
    bm25 = {h["id"]: h["score"] for h in cli.jsonl("query", products, "Titan watch", "--mode", "text", "-k", "300")}
    all_text = cli.jsonl("query", products, "Titan watch", "--mode", "hybrid", "--alpha", "0", "-k", "5")
    assert [bm25[h["id"]] for h in all_text] == sorted(bm25.values(), reverse=True)[:5]
    scores = [h["score"] for h in cli.jsonl("query", products, "Titan watch", "--mode", "hybrid", "-k", "10")]
    assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] <= scores[0] <= 1
    # (an exact KNN: the candidates' looked-up scores are exact, so a neighbour HNSW missed could rank too)
    exact = ("--ef-runtime", "1000", "-k", "5")
    all_vector = cli.jsonl("query", products, "Titan watch", "--mode", "hybrid", "--alpha", "1", *exact)
    knn = cli.jsonl("query", products, "Titan watch", "--mode", "vector", *exact)
    assert [h["id"] for h in all_vector] == [h["id"] for h in knn]


def test_default_mode_is_hybrid_for_text_on_an_index_with_text_fields(cli, products, index_name, tmp_path) -> None:
    default = cli.jsonl("query", products, "red t-shirt for men", "-k", "5")
    assert default == cli.jsonl("query", products, "red t-shirt for men", "-k", "5", "--mode", "hybrid")
    assert len(default) == 5 and all(0.0 <= h["score"] <= 1.0 for h in default)
    assert default != cli.jsonl("query", products, "red t-shirt for men", "-k", "5", "--mode", "vector")
    # A range over vector scores is refused in the default mode rather than silently switching to vector mode.
    refused = cli("query", products, "red t-shirt for men", "--min-score", "0.5", ok=False)
    assert refused.exit_code == 2 and "add --mode vector" in one_error_line(refused)
    ranged = cli.jsonl("query", products, "red t-shirt for men", "--min-score", "0.5", "--mode", "vector")
    assert ranged and all(h["score"] >= 0.5 for h in ranged)
    like = cli.jsonl("query", products, "--like", default[0]["id"], "-k", "3")
    assert like == cli.jsonl("query", products, "--like", default[0]["id"], "-k", "3", "--mode", "vector")
    cli("create-index", index_name, "--algorithm", "flat")
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in
                            enumerate(["a red shirt", "a blue car", "green tea"])))
    cli("load", index_name, path, "--text-field", "text")
    plain = cli.jsonl("query", index_name, "shirt", "-k", "3")  # no TEXT field: vector, cosine similarity
    assert plain[0]["id"] == "0" and plain == cli.jsonl("query", index_name, "shirt", "-k", "3", "--mode", "vector")
    no_text = cli("query", index_name, "shirt", "--mode", "text", ok=False)
    assert no_text.exit_code == 2 and "no TEXT field" in one_error_line(no_text)
    assert cli("query", index_name, "shirt", "--mode", "hybrid", ok=False).exit_code == 2


def test_text_modes_refuse_what_they_cannot_search(cli, products) -> None:
    like = cli("query", products, "--like", "1653", "--mode", "text", ok=False)
    assert like.exit_code == 2 and "--mode text needs query TEXT" in one_error_line(like)
    vector = cli("query", products, "--vector", "[1, 2]", "--mode", "hybrid", ok=False)
    assert vector.exit_code == 2 and "--mode hybrid needs query TEXT" in one_error_line(vector)
    stop = cli("query", products, "the is a", "--mode", "text", ok=False)
    assert stop.exit_code == 2 and "no words to search for" in one_error_line(stop)
    alpha = cli("query", products, "watch", "--alpha", "1.5", ok=False)
    assert alpha.exit_code == 2 and "Traceback" not in alpha.output


def test_hybrid_with_only_stopwords_ranks_by_the_vector_side(cli, products) -> None:
    # the same window as -k: the sample index is HNSW, whose top 5 of 100 candidates may differ from its KNN 5
    hybrid = cli.jsonl("query", products, "the is a", "--mode", "hybrid", "--fusion", "rrf", "-k", "5", "--window", "5")
    vector = cli.jsonl("query", products, "the is a", "--mode", "vector", "-k", "5")
    assert [h["id"] for h in hybrid] == [h["id"] for h in vector]


def test_explain_shows_both_commands_of_hybrid_mode(cli, products, redis_client) -> None:
    calls = int(redis_client.info("commandstats").get("cmdstat_FT.SEARCH", {}).get("calls", 0))
    out = cli("query", products, "the red shirt", "--mode", "hybrid", "--where", "gender=Men", "--window", "50",
              "--explain").stdout
    knn, text, fusion = out.splitlines()
    assert knn.startswith("FT.SEARCH sample-products '(@gender:{Men})=>[KNN $K") and "K 50 " in knn
    # the stems of the words, each with its mark (vsearch.stems), looked up in the stems field
    assert text == ("FT.SEARCH sample-products '(@gender:{Men}) @__vsearch_stems:(red\ue000|shirt\ue000)' "
                    "WITHSCORES SCORER BM25STD VERBATIM NOCONTENT LIMIT 0 50 DIALECT 2")  # windows: ids and scores
    assert "RETURN 3 '$.__vsearch_distance' AS __vsearch_distance " in knn  # the catalogue is a JSON index (passages)
    assert fusion.startswith("fused client-side: linear alpha=") and "INKEYS" in fusion
    assert "then identical documents shown once" in fusion and "hits 1 to 10 shown" in fusion  # query.collapse
    assert fusion.endswith("their fields: FT.SEARCH sample-products '*' INKEYS 10 <their keys> LIMIT 0 10 DIALECT 2")
    assert int(redis_client.info("commandstats").get("cmdstat_FT.SEARCH", {}).get("calls", 0)) == calls


# The words that matter for the server's stopword crash, mixed with arbitrary text: punctuation, RediSearch
# syntax, non-ASCII, control characters.
fuzz_words = st.lists(st.one_of(st.sampled_from(sorted(STOPWORDS)), st.sampled_from(["watch", "Men's", "t-shirt"]),
                                 st.text(max_size=12)), min_size=1, max_size=8).map(" ".join)


@cases(150)
@given(text=fuzz_words)
def test_any_text_in_text_mode_answers_or_says_why(cli, products, redis_client, text) -> None:
    result = cli("query", products, text, "--mode", "text", "-k", "3", "-f", "jsonl", ok=False)
    assert redis_client.ping()  # the server is alive: no query string made it crash
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.exit_code == 2, result.output
        line = one_error_line(result)
        assert "no words to search for" in line or "query text is empty" in line, line
    else:
        hits = [json.loads(line) for line in result.stdout.splitlines()]
        assert all(math.isfinite(h["score"]) for h in hits)


@cases(25)
@given(text=fuzz_words)
def test_any_text_in_hybrid_mode_answers_or_says_why(cli, products, redis_client, text) -> None:
    result = cli("query", products, text, "--mode", "hybrid", "-k", "3", "-f", "jsonl", "--where", "gender=Men", ok=False)
    assert redis_client.ping()
    assert result.exit_code in (0, 2) and "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        assert all(json.loads(line)["gender"] == "Men" for line in result.stdout.splitlines())


def test_a_word_whose_stem_is_a_stopword_leaves_no_text_side(cli, products) -> None:
    # "its" is no stopword, but its stem "it" is: neither the stems field nor the query may hold it, and a query
    # of such words alone must not become the stopword union that crashes RediSearch.
    assert stems("Its shirt") == ["shirt"] and stem_query("its It") is None
    failed = cli("query", products, "its", "--mode", "text", ok=False)
    assert failed.exit_code == 2
    assert one_error_line(failed) == ("vsearch: error: the query has no words to search for once stopwords "
                                      "(a, the, is, ...) are left out")
    hybrid = cli.jsonl("query", products, "its", "--mode", "hybrid", "--alpha", "1", "-k", "3", "--ef-runtime", "1000")
    assert [h["id"] for h in hybrid] == [h["id"] for h in cli.jsonl("query", products, "its", "-k", "3",
                                                                      "--ef-runtime", "1000")]


def test_hybrid_with_no_text_match_ranks_by_vector_and_says_so_in_its_scores(cli, products) -> None:
    # Every candidate scored 0 on the text side then, and min-max turned those equal zeros into a full 1: the
    # best vector hit scored 1.0, as if both sides had ranked it first.
    exact = ("-k", "5", "--ef-runtime", "1000")
    fused = cli.jsonl("query", products, "xylophones", "--mode", "hybrid", *exact)
    knn = cli.jsonl("query", products, "xylophones", "--mode", "vector", *exact)
    assert cli.jsonl("query", products, "xylophones", "--mode", "text", "-k", "5") == []
    assert [h["id"] for h in fused] == [h["id"] for h in knn]
    assert fused[0]["score"] == 0.5  # alpha 0.5 times the best vector side, nothing from the text side


@pytest.mark.parametrize("mode", [[], ["--mode", "text"], ["--mode", "hybrid", "--fusion", "rrf"],
                                  ["--mode", "vector"]])
def test_paging_keeps_the_ranking_in_every_mode(cli, products, mode) -> None:
    """Page 2 is page 1's ranking cut further down: before, `--offset` silently switched hybrid to vector mode."""
    top = cli.jsonl("query", products, "red t-shirt for men", "-k", "10", *mode)
    pages = [cli.jsonl("query", products, "red t-shirt for men", "-k", "5", "--offset", str(n), *mode) for n in (0, 5)]
    assert [(h["rank"], h["id"]) for h in pages[0] + pages[1]] == [(h["rank"], h["id"]) for h in top]
    assert [h["rank"] for h in top] == list(range(1, 11))


# ---------------------------------------------------------------------------------------------------
# Hybrid mode in three round trips: the same hits as the four searches it sent in turn before


def four_searches_in_turn(client, spec, field, vector, text, k, where, params, return_fields):
    """Hybrid mode as vsearch sent it before it pipelined (issue 16): both windows with the fields asked for, then each
    side's lookups of the other's candidates, one search at a time; then `fuse`. The reference for `hybrid_search`."""
    params = replace(params, window=max(params.window, k))
    vector_hits = search(client, spec, field, vector, params.window, where, return_fields=return_fields)
    text_hits = [] if text_terms(spec, text) is None else text_search(client, spec, text, params.window, where,
                                                                       return_fields)
    if params.fusion is Fusion.linear and text_hits:
        in_text, in_vector = {h.id for h in text_hits}, {h.id for h in vector_hits}
        text_only = [h.id for h in text_hits if h.id not in in_vector]
        vector_only = [h.id for h in vector_hits if h.id not in in_text]
        if text_only:
            vector_hits += search(client, spec, field, vector, len(text_only), where, return_fields=[],
                                  only_ids=text_only)
        if vector_only:
            found = text_search(client, spec, text, len(vector_only), where, [], only_ids=vector_only)
            matched = {h.id for h in found}
            text_hits += found + [Hit(0, doc, 0.0, {}) for doc in vector_only if doc not in matched]
    return fuse(vector_hits, text_hits, k, params, lower_is_better=field.metric is Metric.l2)


@pytest.fixture
def round_trips(redis_client, monkeypatch):
    """Counts the client's round trips: every command, and every pipeline, is one packed send."""
    redis_client.ping()  # connected (and authenticated) before counting
    sent = []
    connection = redis_client.connection_pool.connection_class
    original = connection.send_packed_command
    monkeypatch.setattr(connection, "send_packed_command", lambda self, *a, **kw: (sent.append(1), original(self, *a, **kw))[1])

    def count(call):
        before = len(sent)
        result = call()
        return result, len(sent) - before
    return count


def test_pipelined_hybrid_mode_finds_the_same_hits_in_fewer_round_trips(cli, products, redis_client, round_trips,
                                                                        index_name, tmp_path) -> None:
    cli("create-index", index_name, "--dim", "2", "--storage", "json", "--metric", "l2", "--text", "title",
        "--numeric", "year", "--algorithm", "flat")
    rows = [{"id": str(i), "title": t, "year": 2010 + i % 3, "v": [math.cos(i), math.sin(i)]} for i, t in enumerate(
        ["red leather boots", "blue boots", "green tea", "old boots", "leather belt", "red dress", "tea cup"] * 3)]
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("load", index_name, path, "--vector-column", "v")
    compared = []
    for name, ids, texts in ((products, ["1653", "8211", "7387", "21703", "1801"],
                              ["black leather watch for men", "Titan watch", "red t-shirt", "the is a", "xylophones",
                               "Women Blue Jeans"]),
                             (index_name, ["0", "3", "5"], ["leather boots", "tea", "red", "the", "zebra"])):
        spec = get_spec(redis_client, name)
        field = spec.vectors[0]
        for doc_id, text in ((i, t) for i in ids for t in texts):
            vector = document_vector(redis_client, spec, doc_id, field)
            for params, k, where, fields in ((FusionParams(), 10, None, None),
                                             (FusionParams(), 5, None, ["productDisplayName", "year"]),
                                             (FusionParams(window=20, alpha=0.3), 20, None, None),
                                             (FusionParams(Fusion.rrf), 10, None, None),
                                             (FusionParams(), 10, "@year:[2011 2012]", None),
                                             (FusionParams(window=5), 5, None, ["year"])):
                if name == index_name and fields:
                    fields = ["title"] if "productDisplayName" in fields else fields
                before, old = round_trips(lambda: four_searches_in_turn(redis_client, spec, field, vector, text, k, where,
                                                                        params, fields))
                after, new = round_trips(lambda: hybrid_search(redis_client, spec, field, vector, text, k, where, params,
                                                               return_fields=fields))
                assert after == before, (name, doc_id, text, params, k, where, fields)
                compared.append((old, new, len(after)))
    assert all(new <= 3 for _, new, _ in compared)
    assert (4, 3) in {(old, new) for old, new, _ in compared}  # windows, lookups, the shown hits' fields
    assert sum(new for _, new, _ in compared) < sum(old for old, _, _ in compared)
    assert sum(shown for _, _, shown in compared) > 0
