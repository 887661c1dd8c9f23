"""vsearch/fields.py: a record's values as a document's, each refused with the message a user needs.

Redis silently leaves out of the index a document whose indexed value it cannot parse, so every rule here is one
that would otherwise lose a document without a word.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from vsearch.errors import InputError
from vsearch.fields import (check_regular_file, document_fields, document_id, given_vector, image_path, joined_text,
                            open_regular_file)
from vsearch.records import Record
from vsearch.schema import TAG_SEPARATOR, DataType, Field, FieldType, IndexSpec, Metric, Storage, VectorField

WHERE = "in.jsonl line 7"
VECTOR = VectorField("text_vector", "text", "all-MiniLM-L6-v2", 3)


def record(**data) -> Record:
    return Record("in.jsonl", 7, data)


def refused(call, *args) -> str:
    with pytest.raises(InputError) as caught:
        call(*args)
    return str(caught.value)


def spec(storage: Storage = Storage.hash, tag_separator: str = TAG_SEPARATOR) -> IndexSpec:
    fields = (Field("year", FieldType.numeric), Field("where", FieldType.geo), Field("tags", FieldType.tag),
              Field("title", FieldType.text))
    return IndexSpec("docs", "docs:", storage, fields, (VECTOR,), generation=1, tag_separator=tag_separator)


# ---------------------------------------------------------------------------------------------------
# document_id


@pytest.mark.parametrize(("value", "shown"), [("a1", "a1"), (" padded ", " padded "), (5, "5"), (2.5, "2.5"),
                                              ("Größe/東京", "Größe/東京"), (-0.0, "-0.0")])
def test_an_id_is_kept_exactly_as_the_input_has_it(value, shown) -> None:
    assert document_id(record(id=value), "id") == shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "field 'id' must be a string or a number to be an id, not True"),
        (None, "field 'id' must be a string or a number to be an id, not None"),
        ([1], "field 'id' must be a string or a number to be an id, not [1]"),
        ({"a": 1}, "field 'id' must be a string or a number to be an id, not {'a': 1}"),
        (float("nan"), "field 'id' is nan, not an id"),
        (float("-inf"), "field 'id' is -inf, not an id"),
        ("", "field 'id' is empty"),
        (" \t\n", "field 'id' is empty"),
    ],
)
def test_an_id_that_cannot_name_a_document_is_refused(value, message) -> None:
    assert refused(document_id, record(id=value), "id") == f"{WHERE}: {message}"


def test_an_id_that_is_not_valid_unicode_says_so_with_its_escape() -> None:
    message = refused(document_id, record(id="bad\udcffname"), "id")
    assert message.startswith(f"{WHERE}: field 'id' is not valid Unicode text ('bad\\udcffname')")


def test_a_missing_id_field_lists_the_fields_the_record_has() -> None:
    assert refused(document_id, record(name="x", text="y"), "id") == f"{WHERE}: no field 'id' (fields: name, text)"


def test_joined_text_skips_an_empty_field_but_not_all_of_them() -> None:
    assert joined_text(record(title=" A title ", body="the body"), ["title", "body"]) == "A title the body"
    assert joined_text(record(title="", body="only body"), ["title", "body"]) == "only body"
    assert joined_text(record(title=None, body=12), ["title", "body"]) == "12"
    assert refused(joined_text, record(title=" ", body=None), ["title", "body"]) == \
        f"{WHERE}: nothing to embed: 'title', 'body' empty"


# ---------------------------------------------------------------------------------------------------
# given_vector: precomputed vectors


@pytest.mark.parametrize("value", ["[1, 2, 3]", [1, 2, 3], "[0.5,-1e-3,3.4e38]", [0, 0, 1]])
def test_a_given_vector_is_read_as_float32(value) -> None:
    array = given_vector(record(v=value), "v", VECTOR)
    assert array.dtype == np.float32 and array.shape == (3,)
    assert array.tolist() == pytest.approx(json.loads(value) if isinstance(value, str) else value, rel=1e-6)


NOT_FINITE = "holds a NaN, an infinite number or one past float32's range (3.4e38)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[1, NaN, 3]", NOT_FINITE),
        ("[1, Infinity, 3]", NOT_FINITE),
        ([1, float("-inf"), 3], NOT_FINITE),
        ("[1e39, 0, 0]", NOT_FINITE),  # past float32's range: it would be stored as infinity
        ("[1, 2]", "has 2 numbers, but text_vector holds 3-d vectors"),
        ("[1, 2, 3, 4]", "has 4 numbers, but text_vector holds 3-d vectors"),
        ("[]", "has 0 numbers, but text_vector holds 3-d vectors"),
        ("not json", "is not a JSON array of numbers"),
        ('["a", 1, 2]', "is not a JSON array of numbers"),
        ("[1, 2, 3", "is not a JSON array of numbers"),
        ('{"x": 1}', "is not a JSON array of numbers"),
        ("[0, 0, 0]", "is all zeros: a zero vector has no direction, so its cosine similarity to anything is undefined"),
    ],
    ids=["nan", "infinity", "minus-infinity", "float32-overflow", "too-short", "too-long", "empty", "not-json",
         "a-string-element", "truncated", "an-object", "zero-on-cosine"],
)
def test_a_given_vector_the_index_cannot_score_is_refused(value, message) -> None:
    assert refused(given_vector, record(v=value), "v", VECTOR) == f"{WHERE}: field 'v' {message}"


@pytest.mark.parametrize("value", ["[[1, 2, 3]]", "5", "null"], ids=["nested", "a-number", "null"])
def test_a_given_vector_that_is_not_a_flat_array_says_so(value) -> None:
    # A nested array of the right size said "has 3 numbers, but text_vector holds 3-d vectors".
    assert refused(given_vector, record(v=value), "v", VECTOR) == f"{WHERE}: field 'v' is not a JSON array of numbers"


@pytest.mark.parametrize("value", ["[Infinity, -Infinity, 0]", "[1e39, -1e39, 0]"], ids=["both-infinities", "overflow-both-ways"])
def test_infinities_of_both_signs_are_refused_without_a_numpy_warning(value) -> None:
    """Their sum is NaN: numpy warned 'invalid value encountered in reduce' on stderr, beside the one-line reject."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert refused(given_vector, record(v=value), "v", VECTOR) == f"{WHERE}: field 'v' {NOT_FINITE}"


def test_a_zero_vector_is_fine_where_the_metric_is_not_cosine() -> None:
    for metric in (Metric.l2, Metric.ip):
        vector = VectorField("text_vector", "text", "m", 3, metric=metric)
        assert given_vector(record(v="[0, 0, 0]"), "v", vector).tolist() == [0, 0, 0]


@pytest.mark.parametrize(("value", "ok"), [("[65504, -65504, 1]", True), ("[65505, 0, 1]", False),
                                           ("[1, -70000, 1]", False)])
def test_float16_indexes_refuse_values_past_its_range(value, ok) -> None:
    vector = VectorField("text_vector", "text", "m", 3, datatype=DataType.float16)
    if ok:
        assert given_vector(record(v=value), "v", vector).max() == 65504
    else:
        assert refused(given_vector, record(v=value), "v", vector) == \
            f"{WHERE}: field 'v' holds a value past FLOAT16's range (65504)"


def test_float32_indexes_take_values_float16_could_not_hold() -> None:
    assert given_vector(record(v="[70000, 0, 1]"), "v", VECTOR)[0] == 70000


# ---------------------------------------------------------------------------------------------------
# document_fields: each indexed value in a form Redis indexes


@pytest.mark.parametrize(("value", "stored"), [("2012", 2012), (2012, 2012), ("20.5", 20.5), ("1e3", 1000),
                                               (" 7 ", 7), (2.0, 2), (-3, -3), (2**60, 2**60)])
def test_numeric_values_become_numbers(value, stored) -> None:
    out = document_fields(spec(), record(year=value), set())
    assert out == {"year": stored} and type(out["year"]) is type(stored)


@pytest.mark.parametrize("value", ["soon", True, [2012], "nan", "inf", float("nan"), "-Infinity"])
def test_a_numeric_value_redis_would_not_index_is_refused(value) -> None:
    message = refused(document_fields, spec(), record(year=value), set())
    assert message.startswith(f"{WHERE}: field 'year' is NUMERIC but holds {value!r}")


@pytest.mark.parametrize(("value", "stored"), [("13.4,52.5", "13.4,52.5"), (" 13.4 , 52.5 ", "13.4,52.5"),
                                               ([13.4, 52.5], "13.4,52.5"), ("-180,-85", "-180.0,-85.0")])
def test_geo_values_are_longitude_then_latitude(value, stored) -> None:
    assert document_fields(spec(), record(where=value), set()) == {"where": stored}


@pytest.mark.parametrize("value", ["52.5", "181,0", "0,86", "a,b", "1,2,3", [1], "52.5;13.4"])
def test_a_geo_value_redis_would_not_index_is_refused(value) -> None:
    assert refused(document_fields, spec(), record(where=value), set()) == \
        f"{WHERE}: field 'where' is GEO and needs 'longitude,latitude', not {value!r}"


def test_tags_are_joined_at_the_index_separator_in_a_hash_and_kept_a_list_in_json() -> None:
    assert document_fields(spec(), record(tags=["Shoes, Boots", "Red"]), set()) == \
        {"tags": f"Shoes, Boots{TAG_SEPARATOR}Red"}
    assert document_fields(spec(tag_separator=","), record(tags=["a", "b"]), set()) == {"tags": "a,b"}
    assert document_fields(spec(Storage.json), record(tags=["a", 5]), set()) == {"tags": ["a", "5"]}
    assert document_fields(spec(Storage.json), record(tags=5), set()) == {"tags": "5"}


@pytest.mark.parametrize("value", [[["nested"]], [{"a": 1}], [None], {"a": 1}])
def test_a_tag_that_is_not_a_string_or_a_list_of_them_is_refused(value) -> None:
    assert refused(document_fields, spec(), record(tags=value), set()) == \
        f"{WHERE}: field 'tags' is TAG and needs a string or a list of strings, not {value!r}"


def test_a_tag_holding_the_separator_is_refused() -> None:
    message = refused(document_fields, spec(), record(tags=f"a{TAG_SEPARATOR}b"), set())
    assert message == f"{WHERE}: field 'tags' holds the control character U+001F, which separates tags in the index"


def test_json_text_fields_hold_strings_and_other_values_are_kept_as_json_allows() -> None:
    out = document_fields(spec(Storage.json), record(title=12, other={"k": [1, None]}, words=["a", "b"]), set())
    assert out == {"title": "12", "other": {"k": [1, None]}, "words": ["a", "b"]}


def test_hash_fields_hold_strings_and_numbers_and_structures_as_json_text() -> None:
    out = document_fields(spec(), record(title="Größe", n=3, x=1.5, meta={"k": "ü"}, flag=True), set())
    assert out == {"title": "Größe", "n": 3, "x": 1.5, "meta": '{"k": "ü"}', "flag": "true"}


@pytest.mark.parametrize("storage", [Storage.hash, Storage.json])
def test_nan_or_infinity_anywhere_in_a_value_is_refused(storage) -> None:
    message = refused(document_fields, spec(storage), record(meta={"score": [1.0, float("nan")]}), set())
    assert message == f"{WHERE}: field 'meta' holds NaN or Infinity, which JSON cannot store"


def test_empty_skipped_vector_and_vsearch_fields_are_left_out() -> None:
    data = {"id": "1", "empty": "", "none": None, "text_vector": "[1,2,3]", "__vsearch_stems": "x", "__vsearch:x": 1,
            "image": "a.jpg", "kept": "yes"}
    assert document_fields(spec(), Record("in.jsonl", 7, data), {"id", "image"}) == {"kept": "yes"}


# ---------------------------------------------------------------------------------------------------
# Image paths and files that are not files


def test_an_image_path_resolves_inside_the_root(tmp_path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"x")
    assert image_path(record(image="img/a.jpg"), "image", tmp_path, tmp_path) == tmp_path / "img" / "a.jpg"


@pytest.mark.parametrize("value", ["../outside.jpg", "/etc/passwd", "img/../../outside.jpg"])
def test_an_image_path_that_leaves_the_root_is_refused_before_the_file_is_touched(tmp_path, value) -> None:
    root = tmp_path / "root"
    root.mkdir()
    message = refused(image_path, record(image=value), "image", root, root)
    assert message.startswith(f"{WHERE}: image path {value!r} leaves the image root {root}")


def test_a_symlink_out_of_the_root_is_refused(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (root / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    assert "leaves the image root" in refused(image_path, record(image="link.jpg"), "image", root, root)


def test_an_empty_image_path_is_named(tmp_path) -> None:
    assert refused(image_path, record(image=" "), "image", tmp_path, tmp_path) == f"{WHERE}: field 'image' is empty"


@pytest.mark.parametrize("kind", ["folder", "fifo", "missing"])
def test_what_is_not_a_plain_file_is_refused_without_waiting_on_it(tmp_path, kind) -> None:
    path = tmp_path / "x.jpg"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    message = refused(check_regular_file, path, "in.csv line 2: image")
    expected = {"folder": f"in.csv line 2: image {path} is a folder, not a file",
                "fifo": f"in.csv line 2: image {path} is a FIFO, not a file",
                "missing": f"in.csv line 2: image file not found: {path}"}[kind]
    assert message == expected


def test_open_regular_file_never_blocks_on_a_fifo(tmp_path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")  # opening it without O_NONBLOCK would wait for a writer forever
    assert refused(open_regular_file, tmp_path / "pipe.jpg") == f"{tmp_path / 'pipe.jpg'}: not a readable image " \
        "(a FIFO, not a file)"
    (tmp_path / "real.jpg").write_bytes(b"bytes")
    with open_regular_file(tmp_path / "real.jpg") as handle:
        assert handle.read() == b"bytes"
