"""The decisions of an incremental load (`load.diff`), the model step (`load.embedding`) with a fake encoder, and
records to candidates (`load.candidates`): no server, no model, milliseconds each.

The real-server and real-model versions of these promises are in tests/e2e/test_cron.py and test_load_query.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vsearch.config import Settings
from vsearch.errors import InputError, PruneRefused, UsageError
from vsearch.load import diff
from vsearch.load.candidates import CandidateMaker
from vsearch.load.diff import Candidate, Fingerprints, compare, reuse_stored, tally
from vsearch.load.embedding import Embedder
from vsearch.load.plan import LoadPlan, plan_load, resolve_request
from vsearch.load.prune import check_prune_limit
from vsearch.load.rejects import Rejects
from vsearch.load.request import LoadRequest
from vsearch.models import Purpose
from vsearch.records import Record
from vsearch.schema import DataType, Field, FieldType, IndexSpec, VectorField
from vsearch.store.documents import FIELDS_DIGEST, StoredState

TEXT = VectorField("text_vector", "text", "all-MiniLM-L6-v2", 4)
IMAGE = VectorField("image_vector", "image", "efficientnet-lite0-gem", 3)
SPEC = IndexSpec("docs", "docs:", fields=(Field("title", FieldType.text), Field("kind", FieldType.tag)),
                 vectors=(TEXT, IMAGE), generation=1)


class FakeEncoder:
    """Counts what it is asked to embed; each text's vector is its length in every dimension."""

    def __init__(self, dim: int, name: str = "fake") -> None:
        self.name, self.dim, self.modalities = name, dim, frozenset({"text", "image"})
        self.texts: list[str] = []
        self.images = 0

    def encode_texts(self, texts, batch_size=64):
        self.texts += list(texts)
        return np.array([[float(len(t))] * self.dim for t in texts], dtype=np.float32)

    def encode_images(self, images, batch_size=64):
        self.images += len(images)
        return np.ones((len(images), self.dim), dtype=np.float32)


class FakeSource:
    local = True

    def __init__(self, dim: int = 4) -> None:
        self.encoders: dict[str, FakeEncoder] = {}
        self.purposes: list[Purpose] = []
        self.dim = dim

    def encoder(self, vector, override, settings, purpose=Purpose.BULK):
        self.purposes.append(purpose)
        return self.encoders.setdefault(vector.name, FakeEncoder(self.dim if vector.embeds == "text" else vector.dim))


def fingerprints(model: str = "all-MiniLM-L6-v2") -> Fingerprints:
    return Fingerprints(SPEC.vectors, lambda vector: model)


def plan(**changes) -> LoadPlan:
    return replace(LoadPlan("id", ("title",), None, Path("/"), Path("/"), TEXT, None, None), **changes)


def maker(rejected: list[str], fp: Fingerprints | None = None, load_plan: LoadPlan | None = None) -> CandidateMaker:
    return CandidateMaker(SPEC, load_plan or plan(), fp or fingerprints(), None,
                          lambda record, reason, identified=True: rejected.append(reason))


def candidate(title: str = "a title", kind: str = "x", doc_id: str = "1", fp: Fingerprints | None = None) -> Candidate:
    made = maker([], fp).make(Record("in.jsonl", 1, {"id": doc_id, "title": title, "kind": kind}), [])
    assert made is not None
    return made


def stored_as(c: Candidate) -> StoredState:
    return StoredState(dict(c.fingerprint))


# -- compare / reuse_stored: the four outcomes --------------------------------------------------------


def test_a_record_stored_exactly_as_the_input_has_it_is_skipped_without_reading_vectors() -> None:
    old = candidate()
    result = compare([candidate()], [stored_as(old)], in_place=True, fingerprints=fingerprints())
    assert result.skipped == 1 and result.changed == []


def test_a_rebuild_skips_nothing_but_reuses_the_stored_vector() -> None:
    new = candidate()
    result = compare([new], [stored_as(candidate())], in_place=False, fingerprints=fingerprints())
    assert result.skipped == 0
    to_embed = reuse_stored(result.changed, [{TEXT.name: np.full(4, 7.0)}], SPEC.vectors, in_place=False)
    assert to_embed == [] and new.new  # written to the empty generation, with the live vector
    assert new.vectors[TEXT.name].tolist() == [7.0] * 4


def test_a_change_to_other_fields_only_rewrites_them_with_the_stored_vector() -> None:
    stored = stored_as(candidate(kind="x"))
    changed = candidate(kind="y")
    result = compare([changed], [stored], True, fingerprints())
    assert result.skipped == 0
    assert reuse_stored(result.changed, [{TEXT.name: np.zeros(4)}], SPEC.vectors, True) == []
    assert tally([changed]) == diff.Tally(updated=1, replaced=1)


def test_a_changed_text_is_embedded_again() -> None:
    stored = stored_as(candidate(title="old"))
    changed = candidate(title="new")
    result = compare([changed], [stored], True, fingerprints())
    assert reuse_stored(result.changed, [{TEXT.name: np.zeros(4)}], SPEC.vectors, True) == [changed]
    assert TEXT.name not in changed.vectors and not changed.new


def test_a_new_document_is_embedded_and_known_to_be_new() -> None:
    fresh = candidate()
    result = compare([fresh], [None], True, fingerprints())
    assert reuse_stored(result.changed, [{}], SPEC.vectors, True) == [fresh]
    assert fresh.new


def test_another_model_changes_every_fingerprint() -> None:
    stored = stored_as(candidate(fp=fingerprints("model-a")))
    result = compare([candidate(fp=fingerprints("model-b"))], [stored], True, fingerprints("model-b"))
    assert result.skipped == 0


def test_a_vector_the_input_does_not_fill_keeps_its_stored_vector_and_fingerprint() -> None:
    stored = stored_as(candidate())
    stored.fingerprint[IMAGE.name] = "image-digest"
    changed = candidate(kind="other")
    result = compare([changed], [stored], True, fingerprints())
    reuse_stored(result.changed, [{TEXT.name: np.zeros(4), IMAGE.name: np.ones(3)}], SPEC.vectors, True)
    assert changed.vectors[IMAGE.name].tolist() == [1.0, 1.0, 1.0]
    assert changed.fingerprint[IMAGE.name] == "image-digest"


def test_a_fingerprint_made_with_the_element_type_in_its_head_still_counts_as_unchanged() -> None:
    fp = fingerprints()
    now = candidate(fp=fp)
    given, data = now.hashed[TEXT.name]
    older = dict(now.fingerprint)
    older[TEXT.name] = diff.digest(fp.head(TEXT.name, given, DataType.float32) + data)
    assert older[TEXT.name] != now.fingerprint[TEXT.name]
    assert compare([now], [StoredState(older)], True, fp).skipped == 1


def test_the_fields_digest_ignores_key_order_and_sees_every_value() -> None:
    a = maker([]).make(Record("f", 1, {"id": "1", "title": "t", "kind": "x"}), [])
    b = maker([]).make(Record("f", 2, {"kind": "x", "title": "t", "id": "1"}), [])
    c = maker([]).make(Record("f", 3, {"id": "1", "title": "t", "kind": "z"}), [])
    assert a and b and c
    assert a.fingerprint[FIELDS_DIGEST] == b.fingerprint[FIELDS_DIGEST] != c.fingerprint[FIELDS_DIGEST]


def test_a_given_vector_and_a_modelled_one_of_the_same_bytes_have_different_fingerprints() -> None:
    fp = fingerprints()
    assert fp.of(TEXT.name, True, b"x") != fp.of(TEXT.name, False, b"x")


def test_tally_tells_embedded_given_and_updated_apart() -> None:
    modelled, given, updated = candidate(doc_id="1"), candidate(doc_id="2"), candidate(doc_id="3")
    modelled.embedded = modelled.modelled = True
    given.embedded = True
    modelled.new = given.new = True
    assert tally([modelled, given, updated]) == diff.Tally(embedded=1, given=1, updated=1, replaced=1)


@pytest.mark.parametrize(("to_embed", "candidates", "incremental"), [(0, 10, True), (4, 10, True), (5, 10, False),
                                                                     (10, 10, False), (1, 1, False)])
def test_a_run_is_incremental_when_under_half_its_first_batch_needs_a_model(to_embed, candidates, incremental) -> None:
    assert diff.is_incremental(to_embed, candidates) is incremental


def test_left_out_splits_rejected_from_absent_documents() -> None:
    assert diff.left_out(["a", "b", "c", "d"], [True, False, True, False], [True, True, False, False]) == (["c"], ["d"])


@pytest.mark.parametrize(("dropping", "total", "limit", "exceeded"), [
    (0, 0, 0.0, False), (1, 10, 0.1, False), (2, 10, 0.1, True), (1, 0, 0.5, True), (5, 10, 0.5, False),
    (10, 10, 1.0, False)])
def test_the_prune_share(dropping, total, limit, exceeded) -> None:
    assert diff.prune_share_exceeded(dropping, total, limit) is exceeded


def test_a_prune_past_the_limit_is_refused_with_exit_5_unless_forced() -> None:
    request = LoadRequest(name="docs", source="in.jsonl", prune=True, prune_limit=0.1)
    with pytest.raises(PruneRefused) as refused:
        check_prune_limit(5, 10, request)
    assert refused.value.exit_code == 5
    assert "--prune would delete 5 of 10 documents (50%)" in str(refused.value)
    check_prune_limit(5, 10, replace(request, force=True))


# -- candidates -------------------------------------------------------------------------------------


def test_a_record_without_its_id_is_rejected_unidentified() -> None:
    reasons: list[tuple[str, bool]] = []
    make = CandidateMaker(SPEC, plan(), fingerprints(), None,
                          lambda record, reason, identified=True: reasons.append((reason, identified)))
    ids: list = []
    assert make.make(Record("in.jsonl", 3, {"title": "t"}), ids) is None
    assert ids == [] and reasons[0][1] is False and "in.jsonl line 3" in reasons[0][0]


def test_a_record_with_nothing_to_embed_is_rejected_but_its_id_is_kept_for_prune() -> None:
    rejected: list[str] = []
    ids: list = []
    assert maker(rejected).make(Record("in.jsonl", 2, {"id": "7", "title": "  "}), ids) is None
    assert [doc_id for doc_id, _ in ids] == ["7"] and "nothing to embed" in rejected[0]


def test_a_field_with_a_lone_surrogate_is_rejected() -> None:
    rejected: list[str] = []
    assert maker(rejected).make(Record("in.jsonl", 1, {"id": "1", "title": "ok", "kind": "\ud800"}), []) is None
    assert rejected and "Unicode" in rejected[0]


def test_a_reader_error_becomes_a_reject() -> None:
    rejected: list[str] = []
    assert maker(rejected).make(Record("in.jsonl", 4, {}, error="not JSON"), []) is None
    assert rejected == ["not JSON"]


# -- the embedding step, with a fake encoder ---------------------------------------------------------


def embedder(source: FakeSource, rejected: list[str] | None = None, dry_run: bool = False,
             warnings: list[str] | None = None) -> Embedder:
    settings = Settings(None, Path("/nonexistent"), "all-MiniLM-L6-v2", "efficientnet-lite0-gem", None)
    return Embedder(SPEC, settings, source, lambda v: v.model, lambda v: None,
                    lambda record, reason, identified=True: (rejected if rejected is not None else []).append(reason),
                    (warnings if warnings is not None else []).append, dry_run)


def test_only_the_missing_vectors_are_embedded_in_one_call() -> None:
    source = FakeSource()
    needing = [candidate(title="one", doc_id="1"), candidate(title="three", doc_id="3")]
    embedder(source).embed(needing)
    assert source.encoders[TEXT.name].texts == ["one", "three"]
    assert [c.vectors[TEXT.name][0] for c in needing] == [3.0, 5.0]
    assert all(c.modelled and c.embedded for c in needing)


def test_a_given_vector_is_taken_as_it_is_without_a_model() -> None:
    source = FakeSource()
    given = candidate()
    given.contents[TEXT.name] = np.full(4, 2.0, dtype=np.float32)
    embedder(source).embed([given])
    assert source.encoders == {} and given.embedded and not given.modelled
    assert given.vectors[TEXT.name].tolist() == [2.0] * 4


def test_a_dry_run_loads_no_model() -> None:
    source = FakeSource()
    c = candidate()
    embedder(source, dry_run=True).embed([c])
    assert source.encoders == {} and c.modelled and not c.vectors[TEXT.name].any()


def test_an_incremental_run_asks_for_a_fast_starting_encoder_and_a_bulk_load_for_a_bulk_one() -> None:
    for incremental, purpose in ((True, Purpose.FEW), (False, Purpose.BULK)):
        source = FakeSource()
        step = embedder(source)
        step.incremental = incremental
        step.embed([candidate()])
        assert source.purposes == [purpose]


def test_a_model_of_the_wrong_dimension_is_refused_before_any_vector_is_kept() -> None:
    source = FakeSource(dim=5)
    c = candidate()
    with pytest.raises(UsageError, match="makes 5-d vectors but text_vector in index 'docs' holds 4-d ones"):
        embedder(source).embed([c])
    assert TEXT.name not in c.vectors


def test_an_unreadable_image_rejects_its_record_and_the_others_go_on(tmp_path: Path) -> None:
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(good)
    source, rejected = FakeSource(), []
    image_plan = plan(text_fields=(), text_vector=None, image_field="image", image_vector=IMAGE,
                      image_root=tmp_path, image_base=tmp_path)
    make = maker([], load_plan=image_plan)
    ok = make.make(Record("in.jsonl", 1, {"id": "1", "image": "good.png"}), [])
    (tmp_path / "gone.png").write_bytes(b"not an image")
    bad = make.make(Record("in.jsonl", 2, {"id": "2", "image": "gone.png"}), [])
    assert ok and bad
    embedder(source, rejected).embed([ok, bad])
    assert bad.rejected and "gone.png" in rejected[0]
    assert source.encoders[IMAGE.name].images == 1 and ok.vectors[IMAGE.name].shape == (3,)


def test_images_of_different_files_that_embed_alike_are_counted_once_each(tmp_path: Path) -> None:
    from PIL import Image

    source, warnings = FakeSource(), []
    image_plan = plan(text_fields=(), text_vector=None, image_field="image", image_vector=IMAGE,
                      image_root=tmp_path, image_base=tmp_path)
    made = []
    for n in range(3):
        Image.new("RGB", (8, 8), (n * 40, 0, 0)).save(tmp_path / f"{n}.png")
        made.append(maker([], load_plan=image_plan).make(Record("in.jsonl", n + 1, {"id": str(n), "image": f"{n}.png"}), []))
    step = embedder(source, warnings=warnings)
    step.embed(made)  # the fake encoder gives every image the same vector
    step.warn_alike()
    assert step.alike == 2 and "2 image(s) embedded exactly like another" in warnings[0]


# -- plan and rejects ---------------------------------------------------------------------------------


def test_an_image_folder_with_no_field_options_loads_each_image_as_a_document(tmp_path: Path) -> None:
    resolved = resolve_request(LoadRequest(name="docs", source=str(tmp_path)))
    assert resolved.image_field == "image" and resolved.id_field == "id"
    kept = resolve_request(LoadRequest(name="docs", source=str(tmp_path), text_fields=("caption",)))
    assert kept.image_field is None


def test_a_file_s_format_is_detected_once_in_the_plan(tmp_path: Path) -> None:
    from vsearch.records import Format

    data = tmp_path / "in.csv"
    data.write_text("id,title\n1,a\n")
    assert resolve_request(LoadRequest(name="docs", source=str(data))).input_format is Format.csv


@pytest.mark.parametrize(("request_args", "message"), [
    ({"text_fields": ("t",), "image_field": None}, None),
    ({}, "say which field to embed"),
    ({"vector_column": "v", "vectors": Path("x.npy")}, "give --vector-column or --vectors, not both"),
    ({"text_fields": ("t",), "vector_column": "v=text_vector"}, "which --text-field/--image-field also fill"),
])
def test_plan_load_refuses_options_that_cannot_work(request_args, message) -> None:
    request = LoadRequest(name="docs", source="in.jsonl", **request_args)
    if message is None:
        assert plan_load(SPEC, request).text_vector == TEXT
        return
    with pytest.raises(UsageError, match=message):
        plan_load(SPEC, request)


def test_plan_batch_sizes() -> None:
    assert plan().batch_size == 256
    assert plan(text_vector=None, precomputed=TEXT).batch_size == 1000


def test_strict_turns_the_first_reject_into_an_error() -> None:
    with pytest.raises(InputError, match="--strict"):
        Rejects(None, strict=True, dry_run=False, warn=lambda m: None).reject(Record("f", 1, {}), "bad")


def test_rejects_are_shown_up_to_ten_and_written_as_received_to_a_private_file(tmp_path: Path) -> None:
    shown: list[str] = []
    sink = Rejects(tmp_path / "rejects.jsonl", strict=False, dry_run=False, warn=shown.append)
    for n in range(12):
        sink.reject(Record("in.jsonl", n + 1, {}, raw=f'{{"n": {n}}}\n'), "bad", identified=n % 2 == 0)
    sink.close()
    assert len(shown) == 10 and shown[0] == "rejected in.jsonl line 1: bad"
    assert sink.count == 12 and sink.unidentified == 6
    assert (tmp_path / "rejects.jsonl").read_text().splitlines()[11] == '{"n": 11}'
    assert (tmp_path / "rejects.jsonl").stat().st_mode & 0o777 == 0o600


def test_a_dry_run_writes_no_rejects_file(tmp_path: Path) -> None:
    sink = Rejects(tmp_path / "rejects.jsonl", strict=False, dry_run=True, warn=lambda m: None)
    sink.reject(Record("f", 1, {}, raw="x\n"), "bad")
    sink.close()
    assert not (tmp_path / "rejects.jsonl").exists()


def test_a_bad_record_whose_id_the_reader_knows_is_rejected_identified() -> None:
    """A text file that is not UTF-8 is one reject, but its id is known: --prune keeps its document and runs."""
    reasons: list[tuple[str, bool]] = []
    make = CandidateMaker(SPEC, plan(), fingerprints(), None,
                          lambda record, reason, identified=True: reasons.append((reason, identified)))
    ids: list = []
    assert make.make(Record("notes", 2, {"id": "bad.txt"}, error="bad.txt: not UTF-8 text"), ids) is None
    assert [doc_id for doc_id, _ in ids] == ["bad.txt"] and reasons == [("bad.txt: not UTF-8 text", True)]
