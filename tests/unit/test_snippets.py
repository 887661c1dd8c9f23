"""vsearch.snippets: the short part of a passage a results table shows, around the query's words, words marked."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from vsearch.snippets import ELLIPSIS, Snippet, make_snippet, match_spans, query_terms, to_rich

FILLER = "Nothing to see in this sentence at all. "


def marked(snippet: Snippet) -> list[str]:
    return [snippet.text[s:e] for s, e in snippet.spans]


def test_short_text_is_shown_whole_with_its_matches():
    snippet = make_snippet("The remote control has big buttons.", "remote buttons")
    assert snippet == Snippet("The remote control has big buttons.", 0, 35, ((4, 10), (27, 34)))


def test_empty_text():
    assert make_snippet("", "anything") == Snippet("", 0, 0, ())


def test_the_window_with_the_most_distinct_words_wins():
    text = FILLER * 10 + "The remote is red. " + FILLER * 10 + "The remote control needs buttons. " + FILLER * 10
    snippet = make_snippet(text, "remote control buttons", width=120)
    assert marked(snippet) == ["remote", "control", "buttons"]
    assert snippet.text.startswith(ELLIPSIS) and snippet.text.endswith(ELLIPSIS)
    assert snippet.end - snippet.start <= 120


def test_the_window_starts_at_a_sentence_start_and_never_cuts_a_word():
    text = FILLER * 20 + "Budget talk started here. The budget is twelve euros. " + FILLER * 20
    snippet = make_snippet(text, "euros", width=100)
    assert snippet.text.startswith(ELLIPSIS + "The budget is twelve euros.") or \
        snippet.text.startswith(ELLIPSIS + "Budget talk")
    inner = snippet.text.strip(ELLIPSIS)
    assert text[snippet.start:snippet.end] == inner
    assert not text[snippet.start - 1].isalnum() and not text[snippet.end].isalnum()


def test_stems_match_and_stopwords_do_not():
    snippet = make_snippet("Meetings were meeting the meeters; it is the end.", "the meeting is it")
    assert marked(snippet) == ["Meetings", "meeting"]
    assert query_terms("The meetings of the remote-control team") == ["meet", "remot", "control", "team"]
    assert query_terms(["Remote", "remote", "THE"]) == ["remot"]


def test_no_match_shows_the_start():
    text = "word " * 100
    snippet = make_snippet(text, "absent", width=50)
    assert snippet.start == 0 and snippet.spans == () and snippet.text.endswith(ELLIPSIS)
    assert len(snippet.text) <= 51 and not snippet.text.startswith(ELLIPSIS)


def test_whitespace_is_folded_and_spans_follow():
    text = "Speaker A:\n\n   the   remote\tcontrol\n"
    snippet = make_snippet(text, "remote control")
    assert snippet.text == "Speaker A: the remote control"
    assert marked(snippet) == ["remote", "control"]


def test_cjk_ideographs_are_words_and_adjacent_matches_merge():
    snippet = make_snippet("東京タワーは高い。大阪城も高い。", "東京 城")
    assert marked(snippet) == ["東京", "城"]


def test_a_match_longer_than_the_width_is_still_shown():
    word = "supercalifragilistic" * 20
    snippet = make_snippet("before " + word + " after", word, width=50)
    assert marked(snippet) == [word]


def test_match_spans_name_their_term():
    assert match_spans("Buttons and a button", ["button", "and"]) == [(0, 7, 0), (8, 11, 1), (14, 20, 0)]
    assert match_spans("anything", []) == []


def test_to_rich_styles_the_matches():
    rich_text = to_rich(make_snippet("red remote", "remote"), style="bold red")
    assert rich_text.plain == "red remote"
    assert [(span.start, span.end, str(span.style)) for span in rich_text.spans] == [(4, 10, "bold red")]


@pytest.mark.parametrize("width", [1, 5, 30])
def test_tiny_widths(width):
    snippet = make_snippet("alpha beta gamma delta epsilon", "gamma", width=width)
    assert "gamma" in marked(snippet)


WORDS = st.sampled_from(["remote", "Remotes", "control", "the", "is", "button", "東", "京", "naïve", "x", "42",
                         "meeting", "MEETINGS", "a" * 60, "🚀", "co-op", "don't"])
SEPARATORS = st.sampled_from([" ", "  ", "\n", ". ", ", ", "\t", "", "。"])
TEXTS = st.lists(st.tuples(WORDS, SEPARATORS), max_size=150).map(lambda parts: "".join(w + s for w, s in parts))


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(TEXTS, st.text(max_size=300)), query=st.one_of(st.lists(WORDS, max_size=4).map(" ".join),
                                                                       st.text(max_size=20)),
       width=st.integers(1, 250))
def test_property_snippets_are_exact_and_bounded(text, query, width):
    snippet = make_snippet(text, query, width)
    assert 0 <= snippet.start <= snippet.end <= len(text)
    shown = snippet.text
    if text[:snippet.start].strip():
        assert shown.startswith(ELLIPSIS)
        shown = shown[1:]
    if text[snippet.end:].strip():
        assert shown.endswith(ELLIPSIS)
        shown = shown[:-1]
    assert shown == re.sub(r"\s+", " ", text[snippet.start:snippet.end])
    terms = set(query_terms(query))
    matches = match_spans(text, list(terms))
    longest = max((e - s for s, e, _ in matches), default=0)
    assert snippet.end - snippet.start <= max(width, longest)
    for s, e in snippet.spans:  # each marked run is made of matched words
        assert all(m.lower() for m in re.findall(r"\S+", snippet.text[s:e]))
        assert set(query_terms(snippet.text[s:e])) <= terms and query_terms(snippet.text[s:e])
    if matches:
        assert snippet.spans
