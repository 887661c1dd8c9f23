"""Property tests against the real server: guarded filters never crash it and mean what RediSearch means.

The reference form of a generated filter has every stopword-only part removed (what RediSearch's parser does
to them when it does not crash); it holds no stopword, so it is safe to send as it is.

- A TAG value is kept whole, commas and all: `--where "cat=Shoes, Boots"`, `in (...)` and `!=` find exactly
  the documents loaded with it (vsearch's indexes split tags only at U+001F, which `load` refuses in a value);
  an index made before that, which splits at ',', refuses such a `--where` with the way out (`--rebuild`).
"""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsearch.errors import UsageError
from vsearch.filters import STOPWORDS, compile_where, guard_filter

WORDS = ["hip", "world", "hello", "shoe", "red"]
STOPS = ["is", "an", "the", "a", "of"]
DIM = 4
def cases(n: int) -> settings:
    # derandomized: the same cases every run, so a failure here is reproducible and never flaky
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                    database=None)


@pytest.fixture(scope="module")
def corpus(redis_client):
    """Two small indexes (HASH and JSON) over the same 40 documents, with random vectors."""
    name = f"h{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(7)
    redis_client.execute_command(
        "FT.CREATE", name, "ON", "HASH", "PREFIX", 1, f"{name}:", "SCHEMA", "body", "TEXT", "tag", "TAG",
        "n", "NUMERIC", "v", "VECTOR", "FLAT", 6, "TYPE", "FLOAT32", "DIM", DIM, "DISTANCE_METRIC", "L2")
    redis_client.execute_command(
        "FT.CREATE", f"{name}j", "ON", "JSON", "PREFIX", 1, f"{name}j:", "SCHEMA", "$.body", "AS", "body", "TEXT",
        "$.tag", "AS", "tag", "TAG", "$.n", "AS", "n", "NUMERIC")
    for i in range(40):
        body = " ".join(rng.choice(WORDS + STOPS, size=3))
        doc = {"body": body, "tag": ["x", "y", "z"][i % 3], "n": i}
        redis_client.hset(f"{name}:{i}", mapping={**doc, "v": rng.random(DIM, dtype=np.float32).tobytes()})
        redis_client.execute_command("JSON.SET", f"{name}j:{i}", "$", json.dumps(doc))
    yield name
    redis_client.execute_command("FT.DROPINDEX", name, "DD")
    redis_client.execute_command("FT.DROPINDEX", f"{name}j", "DD")


def _ids(redis_client, index: str, query: str, knn: bool = False) -> set[str]:
    args: list = ["FT.SEARCH", index, query, "NOCONTENT", "LIMIT", 0, 100, "DIALECT", 2]
    if knn:
        args[2] = f"({query})=>[KNN 100 @v $B]" if query else "*=>[KNN 100 @v $B]"
        args += ["PARAMS", 2, "B", np.zeros(DIM, dtype=np.float32).tobytes()]
    reply = redis_client.execute_command(*args)
    return {k.decode().split(":")[-1] for k in reply[1:]}


def _outcome(redis_client, index: str, query: str, knn: bool) -> str:
    try:
        return " ".join(sorted(_ids(redis_client, index, query, knn)))
    except redis.ResponseError as error:
        return f"error: {error}"


# A filter is drawn as (raw text, reference text or None when RediSearch parses it to nothing). Tag sets and
# ranges come in parentheses: RediSearch itself rejects `hip|hip|@tag:{x}` (a syntax error, not a crash).
def _leaf() -> st.SearchStrategy[tuple[str, str | None]]:
    word = st.sampled_from(WORDS).map(lambda w: (w, w))
    stop = st.sampled_from(STOPS + [s.upper() for s in STOPS]).map(lambda w: (w, None))
    phrase = st.lists(st.sampled_from(WORDS + STOPS), min_size=1, max_size=3).map(lambda ws: (f'"{" ".join(ws)}"',) * 2)
    tags = st.lists(st.sampled_from(["x", "y", "z", "is", "a b"]), min_size=1, max_size=2).map(
        lambda ts: ("(@tag:{" + "|".join(t.replace(" ", "\\ ") for t in ts) + "})",) * 2)
    ranges = st.tuples(st.integers(-2, 42), st.integers(-2, 42), st.booleans()).map(
        lambda r: (f"(@n:[{'(' if r[2] else ''}{r[0]} {r[1]}])",) * 2)
    prefix = st.sampled_from(["hi*", "wor*", "%helo%"]).map(lambda w: (w, w))
    scoped = st.tuples(st.sampled_from(WORDS + STOPS)).map(lambda w: (f"@body:{w[0]}", None if w[0] in STOPS else f"@body:{w[0]}"))
    return st.one_of(word, stop, stop, phrase, tags, ranges, prefix, scoped)


def _compose(children: st.SearchStrategy) -> st.SearchStrategy[tuple[str, str | None]]:
    def union(items):
        kept = [r for _, r in items if r is not None]
        return "(" + "|".join(t for t, _ in items) + ")", ("(" + "|".join(kept) + ")") if kept else None

    def intersection(items):
        kept = [r for _, r in items if r is not None]
        return "(" + " ".join(t for t, _ in items) + ")", ("(" + " ".join(kept) + ")") if kept else None

    def prefixed(mark):
        return lambda item: (mark + item[0], None if item[1] is None else mark + item[1])

    return st.one_of(
        st.lists(children, min_size=2, max_size=4).map(union),
        st.lists(children, min_size=2, max_size=3).map(intersection),
        children.map(prefixed("-")),
        children.map(prefixed("~")),
        children.map(lambda item: (f"({item[0]})", None if item[1] is None else f"({item[1]})")),
    )


FILTERS = st.recursive(_leaf(), _compose, max_leaves=8)
# Top level: a bare union, the shape users type most (`a|b|c` with no parentheses).
TOP = st.one_of(FILTERS, st.lists(FILTERS, min_size=3, max_size=4).map(
    lambda items: ("|".join(t for t, _ in items),
                   "|".join(r for _, r in items if r is not None) or None)))


@cases(1500)
@given(TOP)
def test_guarded_filters_never_crash_and_match_the_reference(redis_client, corpus, drawn) -> None:
    raw, reference = drawn
    guarded = guard_filter(raw)
    pid = redis_client.info("server")["process_id"]
    for index, knn in ((corpus, False), (corpus, True), (f"{corpus}j", False)):
        got = _outcome(redis_client, index, guarded, knn)
        # Both forms must agree, except where RediSearch's grammar rejects one of them: it takes no text
        # union followed by a tag or range (`hip|hip|(@tag:{x})`) even when the stopwords are left out.
        if reference is not None and "Syntax error" not in got + _outcome(redis_client, index, reference, knn):
            assert got == _outcome(redis_client, index, reference, knn), (raw, guarded, reference)
    assert redis_client.ping()
    assert redis_client.info("server")["process_id"] == pid


@cases(300)
@given(st.text(min_size=0, max_size=30))
def test_guard_filter_takes_any_text_without_crashing_anything(redis_client, corpus, text) -> None:
    try:
        guarded = guard_filter(text)
    except UsageError as error:
        assert str(error).startswith("--filter: ") and "\n" not in str(error)
        return
    try:
        _ids(redis_client, corpus, guarded)
    except redis.ResponseError:  # a syntax error the server reports is fine; a dead server is not
        pass
    assert redis_client.ping()


TAG_VALUE = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=","), min_size=1,
                    max_size=12).map(str.strip).filter(bool)


@cases(150)
@given(st.lists(TAG_VALUE, min_size=1, max_size=5, unique_by=str.casefold))
def test_a_where_tag_value_matches_exactly_its_own_document(redis_client, corpus, values) -> None:
    # TAG fields are case-insensitive and split on ',' when indexed: values here differ beyond case and hold none.
    prefix = f"{corpus}:w{uuid.uuid4().hex[:6]}"
    for i, value in enumerate(values):
        redis_client.hset(f"{prefix}{i}", mapping={"tag": value, "n": 1000 + i})
    try:
        for i, value in enumerate(values):
            where = compile_where([f"tag={value}", "n>=1000"], {"tag": "tag", "n": "numeric"})
            assert _ids(redis_client, corpus, where) == {f"{prefix.split(':')[-1]}{i}"}, (value, where)
    finally:
        redis_client.delete(*[f"{prefix}{i}" for i in range(len(values))])


OPS = {">=": lambda n, v: n >= v, ">": lambda n, v: n > v, "<=": lambda n, v: n <= v, "<": lambda n, v: n < v,
       "=": lambda n, v: n == v, "!=": lambda n, v: n != v}


@cases(150)
@given(st.sampled_from(sorted(OPS)), st.one_of(st.integers(-5, 45), st.floats(-5, 45).map(lambda f: round(f, 3))))
def test_a_where_numeric_bound_selects_what_python_selects(redis_client, corpus, op, value) -> None:
    where = compile_where([f"n{op}{value}"], {"n": "numeric"})
    assert _ids(redis_client, corpus, where) == {str(i) for i in range(40) if OPS[op](i, value)}, where


@cases(200)
@given(st.text(max_size=40))
def test_a_where_text_value_never_crashes_the_server(redis_client, corpus, text) -> None:
    try:
        where = compile_where([f"body~{text}"], {"body": "text"})
    except UsageError:
        assert not [w for w in re.findall(r"[^\W_]+", text) if w.lower() not in STOPWORDS]
        return
    _ids(redis_client, corpus, where)
    _ids(redis_client, corpus, where, knn=True)
    assert redis_client.ping()


TAG_WITH_COMMAS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).map(
    str.strip).filter(bool)


@pytest.fixture(scope="module")
def tag_index(cli):
    name = f"tags{uuid.uuid4().hex[:8]}"
    cli("create-index", name, "--dim", str(DIM), "--algorithm", "flat", "--tag", "cat")
    yield name
    cli("drop-index", name, "--delete-documents")


def _load_tags(cli, name: str, values: list) -> None:
    rows = [{"id": f"{i}", "cat": value, "v": [1.0, float(i), 0.0, 0.0]} for i, value in enumerate(values)]
    cli("load", name, "-", "--vector-column", "v", "--format", "jsonl",
        input="".join(json.dumps(r) + "\n" for r in rows))


def _where_ids(cli, name: str, *where: str) -> set[str]:
    args = ["query", name, "--vector", "[1, 0, 0, 0]", "-k", "100", "--format", "jsonl"]
    for w in where:
        args += ["--where", w]
    return {hit["id"] for hit in cli.jsonl(*args)}


@cases(40)
@given(st.lists(TAG_WITH_COMMAS, min_size=1, max_size=4, unique_by=str.casefold))
def test_a_loaded_tag_value_with_commas_is_found_whole(cli, tag_index, values) -> None:
    _load_tags(cli, tag_index, values)
    try:
        for i, value in enumerate(values):
            quoted = '"' + value.replace('"', '""') + '"'
            assert _where_ids(cli, tag_index, f"cat={value}") == {f"{i}"}, value
            assert _where_ids(cli, tag_index, f"cat in ({quoted})") == {f"{i}"}, value
            assert _where_ids(cli, tag_index, f"cat!={value}") == {f"{j}" for j in range(len(values)) if j != i}
    finally:
        cli("load", tag_index, "-", "--vector-column", "v", "--format", "jsonl", "--prune", "--force",
            input=json.dumps({"id": "0", "cat": "x", "v": [1, 0, 0, 0]}) + "\n")


def test_tag_examples_with_commas_and_lists(cli, index_name) -> None:
    cli("create-index", index_name, "--dim", str(DIM), "--algorithm", "flat", "--tag", "cat")
    _load_tags(cli, index_name, ["Shoes, Boots", "Shoes", ["Boots", "Hats"]])
    assert _where_ids(cli, index_name, "cat=Shoes, Boots") == {"0"}
    assert _where_ids(cli, index_name, "cat=Shoes") == {"1"}
    assert _where_ids(cli, index_name, "cat=Boots") == {"2"}  # a list is several tags
    assert _where_ids(cli, index_name, 'cat in ("Shoes, Boots", Hats)') == {"0", "2"}
    assert _where_ids(cli, index_name, "cat!=Shoes, Boots") == {"1", "2"}
    refused = cli("load", index_name, "-", "--vector-column", "v", "--format", "jsonl", ok=False,
                  input=json.dumps({"id": "9", "cat": "a\u001fb", "v": [1, 0, 0, 0]}) + "\n")
    assert refused.exit_code == 4
    assert "U+001F" in refused.stderr


def test_an_index_that_splits_tags_at_commas_refuses_such_a_where_until_rebuilt(cli, redis_client, index_name,
                                                                                 tmp_path) -> None:
    from dataclasses import replace

    from vsearch import store

    cli("create-index", index_name, "--dim", str(DIM), "--algorithm", "flat", "--tag", "cat", "--storage", "hash")
    spec = store.get_spec(redis_client, index_name)
    cli("drop-index", index_name)
    store.create_index(redis_client, replace(spec, tag_separator=","))  # as vsearch made indexes before
    rows = [{"id": "0", "cat": "Shoes, Boots", "v": [1, 0, 0, 0]}, {"id": "1", "cat": "Shoes", "v": [1, 1, 0, 0]}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("load", index_name, path, "--vector-column", "v")
    refused = cli("query", index_name, "--vector", "[1, 0, 0, 0]", "--where", "cat=Shoes, Boots", ok=False)
    assert refused.exit_code == 2
    assert "--rebuild" in refused.stderr
    cli("load", index_name, path, "--vector-column", "v", "--rebuild")
    assert _where_ids(cli, index_name, "cat=Shoes, Boots") == {"0"}
    assert _where_ids(cli, index_name, "cat=Shoes") == {"1"}
