"""The batch path of a load of given vectors (`CandidateMaker.make_batch`, the layouts' `write_batch`, the writes in
the background) against the per-record path it stands beside: the same candidates, fingerprints, rejects (each with
its line, in input order), duplicate ids and documents, down to the bytes sent to Redis. No server, no model.

The run as a whole (the same documents and rejects through either path, --strict, a refused write, a killed
connection) is tested on the real server in tests/e2e/test_load_batch.py; see also test_cron.py, test_hostile_runs.py.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsearch.encode import VectorTable, ids_path
from vsearch.errors import StoreError
from vsearch.load.candidates import CandidateMaker
from vsearch.load.diff import Candidate, Fingerprints, compare
from vsearch.load.plan import LoadPlan
from vsearch.load.run import BatchWrites
from vsearch.passages import PassageSettings
from vsearch.records import Record
from vsearch.schema import DataType, Field, FieldType, IndexSpec, Metric, Storage, VectorField
from vsearch.store.connection import packed_transaction
from vsearch.store.documents import StoredState
from vsearch.store.layouts import Document, HashLayout, JsonLayout

DIM = 4
VEC = VectorField("vec_vector", "text", "given", DIM, metric=Metric.cosine)
FIELDS = (Field("kind", FieldType.tag), Field("year", FieldType.numeric), Field("title", FieldType.text),
          Field("loc", FieldType.geo))
HASH = IndexSpec("docs", "docs:", fields=FIELDS, vectors=(VEC,), generation=1)
SPECS = {
    "hash cosine": HASH,
    "hash L2 float16": replace(HASH, vectors=(replace(VEC, metric=Metric.l2, datatype=DataType.float16),)),
    "json ip": replace(HASH, storage=Storage.json, vectors=(replace(VEC, metric=Metric.ip),)),
    "hash stems, tags kept whole": HASH.with_stems(),
    # JSON with passages, create-index's default for a text index: a vector given whole is a passage list of one
    "json passages": replace(HASH, storage=Storage.json, vectors=(replace(VEC, passages=PassageSettings(16, 2)),)),
}


def plan(vector: VectorField = VEC, column: str = "vec") -> LoadPlan:
    return LoadPlan("id", (), None, Path("/"), Path("/"), None, None, vector, column)


def maker(spec: IndexSpec, rejects: list, table: VectorTable | None = None, column: str = "vec") -> CandidateMaker:
    def reject(record: Record, reason: str, identified: bool = True) -> None:
        rejects.append((record.line, reason, identified))

    return CandidateMaker(spec, plan(spec.vectors[0], column), Fingerprints(spec.vectors, lambda v: "unused"), table,
                          reject)


def per_record(made: CandidateMaker, records: list[Record], ids: list) -> list[Candidate]:
    """The per-record path, as Run._prepare takes it for records that need a model."""
    return [c for c in (made.make(r, ids) for r in records) if c is not None]


def same_record(a: Record, b: Record, column: str = "vec") -> bool:
    """The same record as read, but that given_batches may have made its vector an array already."""
    if a is b:
        return True
    vector = b.data.get(column)
    with np.errstate(over="ignore"):
        given = np.asarray(a.data.get(column), dtype=np.float32) if isinstance(vector, np.ndarray) else None
    return ((a.source, a.line, a.raw, a.error) == (b.source, b.line, b.raw, b.error) and isinstance(vector, np.ndarray)
            and {k: v for k, v in a.data.items() if k != column} == {k: v for k, v in b.data.items() if k != column}
            and given is not None and given.tobytes() == vector.tobytes())


def assert_same(a: list[Candidate], b: list[Candidate]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert same_record(x.record, y.record) and x.id == y.id
        assert list(x.fields.items()) == list(y.fields.items())
        assert x.fingerprint == y.fingerprint and x.hashed == y.hashed
        assert x.contents.keys() == y.contents.keys()
        for name in x.contents:
            assert x.contents[name].dtype == y.contents[name].dtype and x.contents[name].shape == y.contents[name].shape
            assert x.contents[name].tobytes() == y.contents[name].tobytes()
        assert (x.vectors, x.embedded, x.modelled, x.claimed, x.new, x.rejected) == \
            (y.vectors, y.embedded, y.modelled, y.claimed, y.new, y.rejected)


def both_paths(spec: IndexSpec, records: list[Record], table: VectorTable | None = None,
               column: str = "vec") -> tuple[list[Candidate], list, list]:
    """Runs the per-record path and the batch path, on the records as read and as given_batches hands them on;
    asserts they agree; returns the batch path's candidates, ids and rejects."""
    slow_rejects: list = []
    slow_ids: list = []
    slow = per_record(maker(spec, slow_rejects, table, column), records, slow_ids)
    for batch_path in ("records as read", "given_batches"):
        fast_rejects: list = []
        fast_ids: list = []
        made = maker(spec, fast_rejects, table, column)
        batch = records if batch_path == "records as read" else next(made.given_batches(iter(records), 1000), [])
        assert len(batch) == len(records) and all(same_record(a, b, column) for a, b in zip(records, batch))
        fast = made.make_batch(batch, fast_ids)
        assert_same(slow, fast)
        assert fast_rejects == slow_rejects
        assert [(i, r.line) for i, r in fast_ids] == [(i, r.line) for i, r in slow_ids]
    return fast, fast_ids, fast_rejects


def record(line: int, data: dict[str, Any], error: str | None = None) -> Record:
    raw = json.dumps(data, allow_nan=True, ensure_ascii=False) + "\n" if not error else "{not json\n"
    return Record("in.jsonl", line, {} if error else data, raw=raw, error=error)


GOOD = [0.5, -0.25, 1.0, 2.0]
HOSTILE_VECTORS = [
    GOOD, [1, 2, 3, 4], [True, False, True, 1], ["1.5", "2", "-3", "4e1"], "[0.1, 0.2, 0.3, 0.4]",
    "[NaN, 1, 2, 3]", "[1, 2", "[1e400, 0, 0, 0]", [1, 2, 3], [1, 2, 3, 4, 5], [[1], [2], [3], [4]], [],
    [float("nan"), 1, 2, 3], [float("inf"), 1, 2, 3], [-float("inf"), float("inf"), 0, 0], [1e39, 0, 0, 0],
    [70000.0, 0, 0, 1], [-65504.0, 1, 1, 1], [0, 0, 0, 0], [0.0, -0.0, 0, 0], [None, 1, 2, 3], 5, None, "",
    {"a": 1}, ["x", 1, 2, 3], [3.4028235e38, 3.4028235e38, 3.4028235e38, 3.4028235e38], [1e-46, 0, 0, 1],
    [2**70, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], [10**400, 0, 0, 1],
]


def test_a_batch_of_good_records_is_the_per_record_batch() -> None:
    rows = np.random.default_rng(1).standard_normal((50, DIM)).tolist()
    records = [record(i + 1, {"id": f"d{i}", "vec": row, "kind": "x", "year": 2000 + i, "title": "café au lait",
                              "loc": "13.4,52.5"}) for i, row in enumerate(rows)]
    fast, ids, rejects = both_paths(HASH, records)
    assert len(fast) == 50 and rejects == [] and [i for i, _ in ids] == [f"d{i}" for i in range(50)]
    assert fast[3].contents[VEC.name].tolist() == np.asarray(rows[3], dtype=np.float32).tolist()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # given_vector's sum of inf - inf
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_hostile_vector_is_taken_or_rejected_as_record_by_record(spec: IndexSpec) -> None:
    records = [record(i + 1, {"id": f"v{i}", "vec": value}) for i, value in enumerate(HOSTILE_VECTORS)]
    fast, _, rejects = both_paths(spec, records)
    assert 0 < len(fast) < len(records) and rejects  # both kinds are in there
    lines = {line for line, _, _ in rejects}
    assert lines.isdisjoint(c.record.line for c in fast)
    assert all(reason.startswith(f"in.jsonl line {line}: ") for line, reason, _ in rejects)


def test_one_bad_vector_leaves_the_rest_of_its_batch_fast_and_in_order() -> None:
    records = [record(i + 1, {"id": f"d{i}", "vec": GOOD}) for i in range(5)]
    records[2] = record(3, {"id": "d2", "vec": [1, 2]})  # the batch's matrix is ragged: row by row
    fast, ids, rejects = both_paths(HASH, records)
    assert [c.id for c in fast] == ["d0", "d1", "d3", "d4"]
    assert [i for i, _ in ids] == ["d0", "d1", "d2", "d3", "d4"]  # --prune keeps the rejected record's document
    assert rejects == [(3, "in.jsonl line 3: field 'vec' has 2 numbers, but vec_vector holds 4-d vectors", True)]


def test_rejects_of_ids_fields_and_reader_errors_keep_their_lines_and_order() -> None:
    records = [
        record(1, {"id": "ok", "vec": GOOD}),
        record(2, {}, error="malformed JSON (Expecting value at column 1)"),
        record(3, {"vec": GOOD}),
        record(4, {"id": "", "vec": GOOD}),
        record(5, {"id": None, "vec": GOOD}),
        record(6, {"id": "\ud800", "vec": GOOD}),
        record(7, {"id": "t", "vec": GOOD, "title": "lone \udc80 surrogate"}),
        record(8, {"id": "y", "vec": GOOD, "year": "not a year"}),
        record(9, {"id": "g", "vec": GOOD, "loc": "north"}),
        record(10, {"id": "k", "vec": GOOD, "kind": {"not": "a tag"}}),
        record(11, {"id": "m"}),
        record(12, {"id": float("nan"), "vec": GOOD}),
        record(13, {"id": "both bad", "vec": [0, 0, 0, 0], "year": "x"}),  # the first problem is the one named
        record(14, {"id": 14, "vec": GOOD, "kind": ["a", "b"], "year": "2014", "nested": {"deep": [1, 2]}}),
    ]
    fast, ids, rejects = both_paths(HASH, records)
    assert [c.record.line for c in fast] == [1, 14]
    assert [line for line, _, _ in rejects] == list(range(2, 14))
    assert [identified for line, _, identified in rejects if line in (2, 3, 4, 5, 6, 12)] == [False] * 6
    assert "field 'year' is NUMERIC" in rejects[-1][1]
    assert fast[1].fields == {"id": 14, "kind": "a,b", "year": 2014, "nested": '{"deep": [1, 2]}'}


def test_duplicate_ids_are_all_candidates_for_the_claim_to_reject_in_order() -> None:
    records = [record(i + 1, {"id": doc_id, "vec": GOOD}) for i, doc_id in enumerate(["a", "b", "a", "a", "c"])]
    fast, ids, rejects = both_paths(HASH, records)
    assert [c.id for c in fast] == ["a", "b", "a", "a", "c"] and rejects == []
    assert [(i, r.line) for i, r in ids] == [("a", 1), ("b", 2), ("a", 3), ("a", 4), ("c", 5)]


def test_an_integer_too_long_for_a_float_is_a_reject_not_a_traceback() -> None:
    records = [record(1, {"id": "ok", "vec": GOOD}), record(2, {"id": "huge", "vec": [10**400, 0, 0, 1]})]
    fast, _, rejects = both_paths(HASH, records)
    assert [c.id for c in fast] == ["ok"]
    assert rejects == [(2, "in.jsonl line 2: field 'vec' holds a NaN, an infinite number or one past float32's range "
                           "(3.4e38)", True)]


def test_csv_vectors_arrive_as_json_text_and_are_parsed_alike() -> None:
    records = [Record("in.csv", i + 2, {"id": str(i), "vec": text}) for i, text in
               enumerate(["[1, 2, 3, 4]", " [0.5,0.25,1,2] ", "[1, 2, 3]", "1, 2, 3, 4", "[1e999, 0, 0, 0]",
                          "[NaN, 0, 0, 1]", "[123456789012345678901234567890, 1, 1, 1]", "\ufeff[1, 2, 3, 4]"])]
    fast, _, rejects = both_paths(HASH, records)
    assert [c.id for c in fast] == ["0", "1", "6"] and len(rejects) == 5


def test_an_empty_batch_and_a_batch_of_rejects_only() -> None:
    assert both_paths(HASH, []) == ([], [], [])
    fast, ids, rejects = both_paths(HASH, [record(1, {"id": "x", "vec": "oops"}), record(2, {"id": "y"})])
    assert fast == [] and len(rejects) == 2 and [i for i, _ in ids] == ["x", "y"]


def test_vectors_from_an_npy_file_are_taken_or_rejected_as_record_by_record(tmp_path: Path) -> None:
    matrix = np.array([[1, 2, 3, 4], [np.nan, 0, 0, 0], [0, 0, 0, 0], [1e39, 0, 0, 1], [0.1, 0.2, 0.3, 0.4]],
                      dtype=np.float64)
    path = tmp_path / "vectors.npy"
    np.save(path, matrix)
    ids_path(path).write_text("".join(json.dumps({"id": f"r{i}"}) + "\n" for i in range(len(matrix))))
    table = VectorTable(path)
    records = [Record("ids.jsonl", i + 1, {"id": doc_id}) for i, doc_id in
               enumerate(["r0", "r1", "missing", "r2", "r3", "r4", "r0"])]
    with np.errstate(over="ignore"):  # float64 past float32's range: both paths make it infinite, then refuse it
        fast, _, rejects = both_paths(HASH, records, table, column="__vsearch_vectors")
    assert [c.id for c in fast] == ["r0", "r4", "r0"]
    assert [line for line, _, _ in rejects] == [2, 3, 4, 5]
    assert "no vector for id 'missing'" in rejects[1][1]


@st.composite
def batches(draw: st.DrawFn) -> list[Record]:
    vectors = st.one_of(st.sampled_from(HOSTILE_VECTORS),
                        st.lists(st.floats(width=32, allow_subnormal=True), min_size=DIM, max_size=DIM),
                        st.lists(st.integers(-2**40, 2**40), min_size=DIM - 1, max_size=DIM + 1))
    ids = st.one_of(st.sampled_from(["a", "b", "c", "", " ", None, 7, 7.0, True, "\ud800", float("inf")]),
                    st.text(min_size=1, max_size=3))
    fields = st.fixed_dictionaries({}, optional={
        "kind": st.sampled_from(["x", ["x", "y"], 3, None, "a\x1fb", {"k": 1}, [None]]),
        "year": st.sampled_from([2012, "2013", "x", float("nan"), 1.5, None, True, 2**60]),
        "title": st.one_of(st.text(max_size=4), st.sampled_from([5, 1.5, [1, "a"], float("inf")])),
        "loc": st.sampled_from(["13.4,52.5", "north", [13.4, 52.5], "200,0"]),
        "other": st.sampled_from([{"x": [1, 2]}, [float("nan")], "ünïcode", 0, ""]),
    })
    out = []
    for line in range(1, draw(st.integers(0, 12)) + 1):
        if draw(st.integers(0, 9)) == 0:
            out.append(record(line, {}, error="malformed JSON (Expecting value at column 1)"))
            continue
        data = draw(fields)
        if draw(st.integers(0, 9)):
            data["id"] = draw(ids)
        if draw(st.integers(0, 9)):
            data["vec"] = draw(vectors)
        out.append(record(line, data))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=batches(), spec=st.sampled_from(list(SPECS.values())))
def test_any_batch_gives_what_record_by_record_gives(records: list[Record], spec: IndexSpec) -> None:
    with np.errstate(all="ignore"):
        both_paths(spec, records)


def test_an_index_loaded_record_by_record_is_skipped_whole_by_the_batch_path() -> None:
    """A reload of an index whose fingerprints the per-record path wrote (every index loaded before) skips all."""
    records = [record(i + 1, {"id": f"d{i}", "vec": [i + 1.0, 0.5, 0.25, 0.125], "kind": "x", "title": f"t{i}"})
               for i in range(20)]
    before = per_record(maker(HASH, []), records, [])
    fp = Fingerprints(HASH.vectors, lambda v: "unused")
    now = maker(HASH, []).make_batch(records, [])
    assert compare(now, [StoredState(dict(c.fingerprint)) for c in before], True, fp).skipped == 20


# -- the documents: the batch write sends what the per-document write sends, byte for byte ------------------


def documents(candidates: list[Candidate], new: bool) -> list[Document]:
    return [Document(c.id, c.fields, dict(c.contents), c.fingerprint, c.record.where(), new=new) for c in candidates]


@pytest.mark.parametrize("new", [True, False], ids=["new", "rewritten"])
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_write_batch_queues_the_commands_write_queues_byte_for_byte(spec: IndexSpec, new: bool) -> None:
    records = [record(i + 1, {"id": f"d{i}", "vec": row, "kind": ["a", "b"], "year": 2000 + i,
                              "title": f"Boots and leather {i} ünï", "loc": "13.4,52.5", "price": 1.5 + i})
               for i, row in enumerate(np.random.default_rng(2).standard_normal((6, DIM)).tolist())]
    docs = documents(maker(spec, []).make_batch(records, []), new)
    layout = HashLayout() if spec.storage is Storage.hash else JsonLayout()
    client = redis.Redis(unix_socket_path="/nonexistent/never-connected", protocol=2)  # only packs, never sends
    pipe = client.pipeline(transaction=True)
    owners = []
    for doc in docs:
        owners += [doc] * layout.write(pipe, spec, spec.prefix + doc.id, doc)
    queued = [args for args, _ in pipe.command_stack]
    commands, batch_owners = layout.write_batch(spec, [spec.prefix + d.id for d in docs], docs)
    assert commands == queued and batch_owners == owners
    connection = redis.Connection()
    assert connection.pack_commands(commands) == connection.pack_commands(queued)
    transaction = [("MULTI",), *queued, ("EXEC",)]
    assert b"".join(packed_transaction(connection, commands)) == b"".join(connection.pack_commands(transaction))


def test_write_batch_writes_a_passage_document_s_vectors_and_spans_as_write_does() -> None:
    spec = SPECS["json passages"]
    rows = np.random.default_rng(3).standard_normal((3, DIM)).astype(np.float32)
    docs = [Document("long", {"title": "one two three"}, {VEC.name: rows}, {"_fields": "x"}, "in line 1",
                     passages={VEC.name: (("title",), [(0, 7), (4, 13), (8, 13)])}),
            Document("given", {}, {VEC.name: rows[0]}, {}, "in line 2", new=True)]
    pipe = redis.Redis(unix_socket_path="/nonexistent/never-connected", protocol=2).pipeline(transaction=True)
    for doc in docs:
        JsonLayout().write(pipe, spec, spec.prefix + doc.id, doc)
    commands, owners = JsonLayout().write_batch(spec, [spec.prefix + d.id for d in docs], docs)
    assert commands == [args for args, _ in pipe.command_stack] and owners == docs
    long, given = (json.loads(c[3]) for c in commands)
    assert long[VEC.name] == rows.tolist() and long["__vsearch_passages"][VEC.name]["spans"] == [[0, 7], [4, 13], [8, 13]]
    assert given[VEC.name] == [rows[0].tolist()] and "__vsearch_passages" not in given


# -- the writes beside the next batch --------------------------------------------------------------------


def test_batch_writes_run_one_at_a_time_in_order_and_raise_in_the_caller() -> None:
    writes, done = BatchWrites(), []
    gate = threading.Event()
    writes.start(lambda: (gate.wait(5), done.append(1)))
    threading.Timer(0.05, gate.set).start()
    writes.start(lambda: done.append(2))  # waits for the first to be written
    writes.finish()
    assert done == [1, 2]

    def fail() -> None:
        raise StoreError("refused")

    writes.start(fail)
    with pytest.raises(StoreError, match="refused"):
        writes.start(lambda: done.append(3))  # the failed write's error, before anything else is written
    assert done == [1, 2]
    writes.finish()  # raised once


def test_fingerprint_digests_of_the_batch_path_are_those_of_the_record_path_for_any_float32() -> None:
    rows = np.random.default_rng(3).standard_normal((200, DIM)).astype(np.float32)
    rows[0] = [math.pi, -0.0, 1e-45, 3.4028235e38]
    records = [record(i + 1, {"id": str(i), "vec": row.tolist()}) for i, row in enumerate(rows)]
    fast, _, _ = both_paths(HASH, records)
    assert [c.contents[VEC.name].tobytes() for c in fast] == [row.tobytes() for row in rows]
