"""vsearch/schema.py: an IndexSpec and the JSON vsearch records beside the index, schema files, algorithm parameters.

The record is what `load` and `query` read back to know the model, the element type and how TAG values are split:
it must come back exactly as written, and a damaged or hand-written one must fail as one InputError naming it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsearch.errors import EXIT_USAGE, InputError, UsageError
from vsearch.schema import (HNSW_DEFAULTS, IMAGE_VECTOR, TAG_SEPARATOR, TEXT_VECTOR, Algorithm, DataType, Field,
                            FieldType, IndexSpec, Metric, Storage, VectorField, check_params, read_schema_file)

TEXT = VectorField(TEXT_VECTOR, "text", "all-MiniLM-L6-v2", 384, params={"m": 16, "ef_runtime": 100})
IMAGE = VectorField(IMAGE_VECTOR, "image", "efficientnet-lite0-gem", 1280, Algorithm.flat, Metric.ip, DataType.float16,
                    {"block_size": 512})
PRODUCTS = IndexSpec("products", "products:", Storage.hash,
                     (Field("gender", FieldType.tag), Field("name", FieldType.text), Field("year", FieldType.numeric),
                      Field("where", FieldType.geo)), (TEXT, IMAGE), generation=3)


def round_trip(spec: IndexSpec) -> IndexSpec:
    return IndexSpec.from_dict(json.loads(spec.to_json()), "record")


def invalid(data, where: str = "schema.json") -> str:
    with pytest.raises(InputError) as caught:
        IndexSpec.from_dict(data, where)
    assert caught.value.exit_code == 1
    return str(caught.value)


# ---------------------------------------------------------------------------------------------------
# The recorded JSON


@pytest.mark.parametrize(
    "spec",
    [
        PRODUCTS,
        PRODUCTS.with_stems(),
        IndexSpec("docs", "d:", Storage.json, (Field("t", FieldType.tag),), (TEXT,), tag_separator=""),  # legacy
        IndexSpec("docs", "d:", Storage.json, (), (TEXT,), generation=1).with_stems(),
        IndexSpec("a:b~c", "a%3Ab%7Ec~2:", vectors=(IMAGE,), generation=2),
    ],
    ids=["products", "products-stemmed", "json-legacy", "json-stemmed", "odd-name"],
)
def test_a_spec_comes_back_from_its_record_exactly(spec) -> None:
    assert round_trip(spec) == spec


def test_the_record_is_redisvl_s_layout_with_vsearch_s_attrs() -> None:
    data = json.loads(PRODUCTS.with_stems().to_json())
    assert data["index"] == {"name": "products", "prefix": "products:", "storage_type": "hash", "generation": 3,
                             "stemmed_text": True, "tag_separator": TAG_SEPARATOR}
    assert data["fields"][:2] == [{"name": "gender", "type": "tag"}, {"name": "name", "type": "text"}]
    assert data["fields"][-1] == {"name": IMAGE_VECTOR, "type": "vector", "attrs": {
        "algorithm": "flat", "dims": 1280, "distance_metric": "ip", "datatype": "float16", "embeds": "image",
        "model": "efficientnet-lite0-gem", "block_size": 512}}


def test_what_an_index_made_before_or_by_another_tool_lacks_is_left_out_of_its_record() -> None:
    index = json.loads(IndexSpec("x", "x:").to_json())["index"]
    assert index == {"name": "x", "prefix": "x:", "storage_type": "hash"}  # no generation, stems or separator


@pytest.mark.parametrize(("storage", "separator"), [("hash", ","), ("json", ""), ("JSON", "")])
def test_a_record_without_tag_separator_splits_tags_as_redisearch_did(storage, separator) -> None:
    spec = IndexSpec.from_dict({"index": {"name": "old", "storage_type": storage}}, "record")
    assert spec.tag_separator == separator and spec.stemmed_text is False and spec.generation == 0


def test_a_hand_written_schema_gets_defaults_and_any_case() -> None:
    spec = IndexSpec.from_dict({"index": {"name": "docs"}, "fields": [
        {"name": "Kind", "type": "TAG"},
        {"name": "my_image_vec", "type": "VECTOR", "attrs": {"DIMS": "8", "Distance_Metric": "L2", "ALGORITHM": "FLAT"}},
        {"name": "body_vec", "type": "vector", "attrs": {"dims": 4}},
    ]}, "schema.yaml")
    assert spec.prefix == "docs:" and spec.storage is Storage.hash and spec.fields == (Field("Kind", FieldType.tag),)
    image, body = spec.vectors
    assert (image.embeds, image.dim, image.metric, image.algorithm, image.model) == ("image", 8, Metric.l2,
                                                                                     Algorithm.flat, "")
    assert (body.embeds, body.algorithm, body.metric, body.datatype) == ("text", Algorithm.hnsw, Metric.cosine,
                                                                         DataType.float32)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({}, "missing 'index'"),
        ({"index": {}}, "missing 'name'"),
        ({"index": "products"}, "string indices must be integers"),
        ({"index": {"name": "a"}, "fields": [{"name": "v", "type": "vector", "attrs": {}}]}, "missing 'dims'"),
        ({"index": {"name": "a"}, "fields": [{"name": "v", "type": "vector", "attrs": {"dims": "four"}}]},
         "invalid literal for int() with base 10: 'four'"),
        ({"index": {"name": "a"}, "fields": [{"name": "f", "type": "blob"}]}, "'blob' is not a valid FieldType"),
        ({"index": {"name": "a"}, "fields": [{"type": "tag"}]}, "missing 'name'"),
        ({"index": {"name": "a", "storage_type": "xml"}}, "'xml' is not a valid Storage"),
        ({"index": {"name": "a"}, "fields": [{"name": "v", "type": "vector", "attrs": {"dims": 4, "metric": "x",
                                                                                         "distance_metric": "cos"}}]},
         "'cos' is not a valid Metric"),
        ({"index": {"name": "a", "tag_separator": ",;"}}, "tag_separator must be one character, not ',;'"),
        ({"index": {"name": "a", "tag_separator": 44}}, "tag_separator must be one character, not 44"),
        ({"index": {"name": "a", "generation": "two"}}, "invalid literal for int() with base 10: 'two'"),
    ],
    ids=["no-index", "no-name", "index-not-a-mapping", "no-dims", "dims-not-a-number", "unknown-field-type",
         "field-without-name", "unknown-storage", "unknown-metric", "long-separator", "separator-not-text",
         "generation-not-a-number"],
)
def test_a_damaged_record_is_one_input_error_naming_where_it_came_from(data, reason) -> None:
    message = invalid(data, "index record 'a'")
    assert message.startswith("index record 'a': not a valid index schema (")
    assert reason in message and "\n" not in message


# Any spec vsearch can make: names and models are anyone's text, parameters any positive numbers.
names = st.text(min_size=1, max_size=12)
params = st.fixed_dictionaries({}, optional={"m": st.integers(1, 512), "ef_construction": st.integers(1, 10**6),
                                             "ef_runtime": st.integers(1, 10**6),
                                             "epsilon": st.floats(1e-6, 1e3)})
vectors = st.builds(VectorField, name=names, embeds=st.sampled_from(["text", "image"]), model=st.text(max_size=30),
                    dim=st.integers(1, 4096), algorithm=st.just(Algorithm.hnsw), metric=st.sampled_from(Metric),
                    datatype=st.sampled_from(DataType), params=params)
specs = st.builds(IndexSpec, name=names, prefix=names, storage=st.sampled_from(Storage),
                  fields=st.lists(st.builds(Field, names, st.sampled_from(FieldType)), max_size=4).map(tuple),
                  vectors=st.lists(vectors, max_size=2).map(tuple), generation=st.integers(0, 10**6),
                  stemmed_text=st.booleans(), tag_separator=st.sampled_from([TAG_SEPARATOR, ",", ""]))


@settings(max_examples=60, deadline=None)
@given(spec=specs)
def test_any_spec_vsearch_writes_comes_back_exactly(spec) -> None:
    # What a record can say: a legacy separator is the one of its storage (',' for HASH, none for JSON).
    legacy = "" if spec.storage is Storage.json else ","
    if spec.tag_separator != TAG_SEPARATOR:
        spec = replace(spec, tag_separator=legacy)
    assert round_trip(spec) == spec


# ---------------------------------------------------------------------------------------------------
# The spec itself


def test_physical_is_the_generation_s_index_and_an_index_of_another_tool_itself() -> None:
    assert PRODUCTS.physical == "products~3"
    assert IndexSpec("theirs", "t:").physical == "theirs"


def test_vectors_by_what_they_embed_and_by_name() -> None:
    assert PRODUCTS.vector("image") is IMAGE and PRODUCTS.vector("text") is TEXT
    assert IndexSpec("x", "x:", vectors=(IMAGE,)).vector("text") is None
    assert PRODUCTS.vector_named(IMAGE_VECTOR) is IMAGE
    with pytest.raises(UsageError) as caught:
        PRODUCTS.vector_named("title_vector")
    assert str(caught.value) == "index 'products' has no vector field 'title_vector' (it has: text_vector, image_vector)"
    assert caught.value.exit_code == EXIT_USAGE
    with pytest.raises(UsageError, match=r"\(it has: none\)"):
        IndexSpec("x", "x:").vector_named("v")


def test_with_stems_marks_the_stems_field_only_where_there_is_text_and_always_the_new_separator() -> None:
    stemmed = PRODUCTS.with_stems()
    assert stemmed.stemmed_text is True and stemmed.tag_separator == TAG_SEPARATOR
    assert stemmed.text_fields == ["name"]
    no_text = IndexSpec("x", "x:", fields=(Field("t", FieldType.tag),)).with_stems()
    assert no_text.stemmed_text is False and no_text.tag_separator == TAG_SEPARATOR


def test_with_name_keeps_everything_else() -> None:
    renamed = PRODUCTS.with_name("copy")
    assert renamed.name == "copy" and renamed.prefix == PRODUCTS.prefix and renamed.vectors == PRODUCTS.vectors
    assert renamed.field_types() == {"gender": FieldType.tag, "name": FieldType.text, "year": FieldType.numeric,
                                     "where": FieldType.geo}


def test_tag_separator_is_one_control_character_no_one_types() -> None:
    assert TAG_SEPARATOR == "\x1f" and len(TAG_SEPARATOR) == 1 and not TAG_SEPARATOR.isprintable()
    assert TAG_SEPARATOR not in ", ;|\t"


def test_new_hnsw_indexes_search_wider_than_redisearch_s_default() -> None:
    assert HNSW_DEFAULTS == {"ef_runtime": 100}  # RediSearch's own is 10: 88% recall at 10 on SciFact


# ---------------------------------------------------------------------------------------------------
# Algorithm parameters


def test_parameters_are_converted_to_the_type_redisearch_wants() -> None:
    assert check_params(Algorithm.hnsw, {"m": "16", "epsilon": "0.01", "ef_runtime": None}) == {"m": 16, "epsilon": 0.01}
    assert check_params(Algorithm.flat, {"initial_cap": 1000, "block_size": "1024"}) == {"initial_cap": 1000,
                                                                                         "block_size": 1024}


@pytest.mark.parametrize(
    ("algorithm", "params", "message"),
    [
        (Algorithm.flat, {"m": 16}, "M is not a parameter of FLAT indexes (it takes INITIAL_CAP, BLOCK_SIZE)"),
        (Algorithm.hnsw, {"block_size": 8},
         "BLOCK_SIZE is not a parameter of HNSW indexes (it takes INITIAL_CAP, M, EF_CONSTRUCTION, EF_RUNTIME, EPSILON)"),
        (Algorithm.hnsw, {"m": "many"}, "M must be a number, not 'many'"),
        (Algorithm.hnsw, {"m": float("inf")}, "M must be a number, not inf"),
        (Algorithm.hnsw, {"m": 0}, "M must be positive and finite, not 0"),
        (Algorithm.hnsw, {"ef_runtime": -5}, "EF_RUNTIME must be positive and finite, not -5"),
        (Algorithm.hnsw, {"epsilon": float("nan")}, "EPSILON must be positive and finite, not nan"),
        (Algorithm.hnsw, {"epsilon": float("inf")}, "EPSILON must be positive and finite, not inf"),
        (Algorithm.hnsw, {"epsilon": [0.1]}, "EPSILON must be a number, not [0.1]"),
    ],
)
def test_a_parameter_redisearch_would_refuse_is_a_usage_error(algorithm, params, message) -> None:
    with pytest.raises(UsageError) as caught:
        check_params(algorithm, params)
    assert str(caught.value) == message and caught.value.exit_code == EXIT_USAGE


def test_a_bad_parameter_in_a_record_is_a_usage_error_too() -> None:
    with pytest.raises(UsageError, match="M is not a parameter of FLAT"):
        IndexSpec.from_dict({"index": {"name": "a"}, "fields": [
            {"name": "v", "type": "vector", "attrs": {"dims": 4, "algorithm": "flat", "M": 8}}]}, "schema.json")


# ---------------------------------------------------------------------------------------------------
# Schema files


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_a_schema_file_in_yaml_or_json(tmp_path, suffix) -> None:
    data = {"index": {"name": "docs", "prefix": "doc:", "storage_type": "json"},
            "fields": [{"name": "kind", "type": "tag"},
                       {"name": "text_vector", "type": "vector", "attrs": {"dims": 4, "algorithm": "hnsw", "m": 8}}]}
    path = tmp_path / f"schema{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        import yaml

        path.write_text(yaml.safe_dump(data), encoding="utf-8")
    spec = read_schema_file(path)
    assert (spec.name, spec.prefix, spec.storage, spec.vectors[0].params) == ("docs", "doc:", Storage.json, {"m": 8})


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("s.yaml", b"index:\n  name: x\xff\n", "schema file {path}: not UTF-8 text (byte 0xff at offset 16)"),
        ("s.json", b"{bad", "{path}: not valid JSON (Expecting property name enclosed in double quotes: line 1 "
                            "column 2 (char 1))"),
        ("s.yaml", b"index: [\n", "{path}: not valid YAML ("),
        ("s.json", b"[1, 2]", "{path}: a schema is a mapping with 'index' and 'fields'"),
        ("s.yaml", b"", "{path}: a schema is a mapping with 'index' and 'fields'"),
        ("s.json", b'{"fields": []}', "{path}: not a valid index schema (missing 'index')"),
    ],
    ids=["not-utf8", "bad-json", "bad-yaml", "a-list", "empty", "no-index"],
)
def test_a_bad_schema_file_is_one_input_error_naming_it(tmp_path, name, body, message) -> None:
    path = tmp_path / name
    path.write_bytes(body)
    with pytest.raises(InputError) as caught:
        read_schema_file(path)
    assert str(caught.value).startswith(message.format(path=path)) and "\n" not in str(caught.value)


def test_a_schema_file_that_cannot_be_read_says_why(tmp_path) -> None:
    with pytest.raises(InputError) as caught:
        read_schema_file(tmp_path / "absent.yaml")
    assert str(caught.value) == f"cannot read schema file {tmp_path / 'absent.yaml'}: No such file or directory"
    with pytest.raises(InputError, match="Is a directory"):
        read_schema_file(tmp_path)
