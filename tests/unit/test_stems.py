"""vsearch/stems.py: the stems text and hybrid mode rank by, the same for a document and for a query."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vsearch.filters import STOPWORDS, guard_filter
from vsearch.stems import STEM_MARK, STEMS_FIELD, stem_query, stemmed_text, stems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Running runners ran", ["run", "runner", "ran"]),
        ("Boots, BOOTS and booted!", ["boot", "boot", "boot"]),
        ("Its shirt", ["shirt"]),  # "its" stems to "it", a stopword: left out after stemming too
        ("the a of is", []),
        ("t-shirt men's", ["t", "shirt", "men", "s"]),
        ("x_y", ["x", "y"]),  # '_' splits words, as RediSearch's tokenizer does
        ("123 4.5", ["123", "4", "5"]),
        ("Größe café naïve", ["größe", "café", "naïv"]),
        ("東京タワー", ["東京タワー"]),
        ("", []),
    ],
)
def test_stems_are_snowball_english_without_stopwords(text, expected) -> None:
    assert stems(text) == expected


def test_a_document_s_stems_are_marked_so_no_word_of_a_title_counts_as_one() -> None:
    value = stemmed_text(["Running shoes", ["Red boots", "its"], 12])
    assert value == " ".join(s + STEM_MARK for s in ["run", "shoe", "red", "boot", "12"])
    assert STEM_MARK == "\ue000" and not STEM_MARK.isprintable()


def test_a_document_without_text_has_an_empty_stems_field() -> None:
    assert stemmed_text([]) == "" and stemmed_text(["the", ["a", "of"]]) == ""


def test_a_null_text_value_is_no_word() -> None:
    # A JSON document of another tool with "title": null was given the stem "none" when a rebuild copied it,
    # so `--mode text none` found it.
    assert stemmed_text([None, ["boots", None]]) == "boot" + STEM_MARK


def test_a_query_is_an_or_of_its_distinct_stems_over_the_stems_field() -> None:
    assert stem_query("Boots, booted and BOOTS") == f"@{STEMS_FIELD}:(boot{STEM_MARK})"
    assert stem_query("running shoes") == f"@{STEMS_FIELD}:(run{STEM_MARK}|shoe{STEM_MARK})"
    assert STEMS_FIELD.startswith("__vsearch")  # document_fields never lets an input column write it


@pytest.mark.parametrize("text", ["", "the a of", "¿?!", "its", "..."])
def test_a_query_with_no_stem_left_is_none(text) -> None:
    assert stem_query(text) is None


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40) | st.lists(st.sampled_from(sorted(STOPWORDS) + ["boots", "Men's", "x"]),
                                            max_size=6).map(" ".join))
def test_a_document_holding_the_query_s_text_holds_every_stem_the_query_looks_for(text) -> None:
    query = stem_query(text)
    if query is None:
        assert stemmed_text([text]) == ""
        return
    assert guard_filter(query) == query  # never the stopword union that crashes RediSearch
    document = set(stemmed_text([text]).split())
    assert set(query[len(STEMS_FIELD) + 3:-1].split("|")) <= document
    assert not {s.rstrip(STEM_MARK) for s in document} & STOPWORDS
