"""vsearch.passages: long texts cut into passages that fit the model's window, with the model's own tokenizer.

The tokenizer is all-MiniLM-L6-v2's tokenizer.json (a file, not a model: it loads in ~50 ms, once per session).
"""

from __future__ import annotations

import re
import time
import tracemalloc
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from vsearch import passages
from vsearch.errors import UsageError
from vsearch.passages import (DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP, Passage, PassageSettings, count_tokens,
                              iter_passages, load_tokenizer, settings_for_model, split_passages)


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer()


def tokens_of(text: str, tokenizer) -> list[tuple[int, int]]:
    return tokenizer.encode(text, add_special_tokens=False).offsets


def check_invariants(text: str, found: list[Passage], tokenizer, max_tokens: int, overlap: int,
                     whole_tokens: bool = True) -> None:
    """What every split must hold: see split_passages' docstring. `whole_tokens`: each token of the whole text lies
    in one passage (else only inside the passages' union: where a slice had to be cut inside a word, the splitter's
    tokens are not the whole text's)."""
    spans = tokens_of(text, tokenizer)
    for p in found:
        assert 0 <= p.start < p.end <= len(text)
        assert text[p.start:p.end] == p.text
        assert p.tokens == count_tokens(p.text, tokenizer)
        # a word piece alone can become more tokens ("##ub" is "u", "##b"): only a passage of one may be over
        pieces = sum(1 for s, e in spans if p.start <= s and e <= p.end)
        assert p.tokens <= max_tokens or (pieces <= 1 and max_tokens <= 2), p
        assert not p.text[0].isspace() and not p.text[-1].isspace()
    for before, after in zip(found, found[1:]):
        assert before.start < after.start and before.end < after.end
    covers = [(p.start, p.end) for p in found]
    if not whole_tokens:
        merged: list[tuple[int, int]] = []
        for start, end in covers:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        covers = merged
    i = 0
    for start, end in spans:
        while i < len(covers) and covers[i][1] < end:
            i += 1
        assert i < len(covers) and covers[i][0] <= start, f"token {text[start:end]!r} at {start} is in no passage"
    # overlaps are bounded: tokens of the whole text inside two consecutive passages. The bound is in the splitter's
    # tokens; where a slice cut a word those are not the whole text's ("remotemeeting" cut after "remo" is other
    # pieces), so there the count of the whole text's tokens may be higher and only the order above holds.
    if whole_tokens:
        for before, after in zip(found, found[1:]):
            shared = sum(1 for s, e in spans if s >= after.start and e <= before.end)
            assert shared <= overlap


# -- examples --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", " ", "   \n\t \r\n  ", "\u3000\u2028"])
def test_no_tokens_no_passages(text, tokenizer):
    assert split_passages(text, tokenizer) == []


def test_control_characters_only_make_no_passage(tokenizer):
    assert split_passages("\x00\x01\x02", tokenizer) == []


@pytest.mark.parametrize("text", ["word", "  word  ", "\nHello, world!\n"])
def test_short_text_is_one_passage_without_its_surrounding_whitespace(text, tokenizer):
    (p,) = split_passages(text, tokenizer)
    assert p.text == text.strip() and text[p.start:p.end] == p.text


def test_every_passage_of_a_long_text_fits_and_the_text_is_covered(tokenizer):
    text = " ".join(f"Sentence number {i} says something about topic {i % 7}." for i in range(400))
    found = split_passages(text, tokenizer)
    assert len(found) > 5
    check_invariants(text, found, tokenizer, DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP)
    assert all(p.tokens > DEFAULT_MAX_TOKENS * 2 / 3 for p in found[:-1])  # cut near the window's end


def test_cuts_at_sentence_ends_rather_than_between_words(tokenizer):
    text = " ".join(f"Sentence {i} has some words." for i in range(200))
    for p in split_passages(text, tokenizer, max_tokens=40, overlap_tokens=6):
        assert p.text.endswith("."), p.text[-30:]
        assert p.text.startswith("Sentence"), p.text[:30]  # the overlap starts at a sentence start


def test_cuts_at_line_ends_rather_than_sentence_ends(tokenizer):
    lines = [f"Speaker {i % 3}: First part. Second part, with a clause." for i in range(60)]
    text = "\n".join(lines)
    for p in split_passages(text, tokenizer, max_tokens=50, overlap_tokens=8):
        assert p.text.endswith("clause."), p.text[-30:]
        assert p.text.startswith(("Speaker", "First", "Second")), p.text[:20]  # a line's or a sentence's start


def test_a_blank_line_beats_a_later_line_break(tokenizer):
    first = "\n".join(["one two three four"] * 4)  # 16 tokens
    text = first + "\n\n" + "\n".join(["five six seven eight"] * 4)
    found = split_passages(text, tokenizer, max_tokens=20, overlap_tokens=0)
    assert found[0].text == first


def test_overlap_is_taken_when_there_is_no_sentence(tokenizer):
    text = " ".join(f"w{i}" for i in range(300))  # "w12" is 2 tokens: "w", "##12"
    found = split_passages(text, tokenizer, max_tokens=30, overlap_tokens=6)
    check_invariants(text, found, tokenizer, 30, 6)
    for before, after in zip(found, found[1:]):
        assert after.start < before.end  # they do overlap
        assert before.text[-1].isdigit() and after.text[0] == "w"  # whole words at both ends


def test_no_overlap(tokenizer):
    text = "alpha beta gamma delta. " * 100
    found = split_passages(text, tokenizer, max_tokens=25, overlap_tokens=0)
    check_invariants(text, found, tokenizer, 25, 0)
    assert all(after.start > before.end for before, after in zip(found, found[1:]))


def test_one_word_longer_than_the_window_is_split_inside(tokenizer):
    word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 2  # 90 letters, many word pieces
    found = split_passages(word, tokenizer, max_tokens=5, overlap_tokens=1)
    check_invariants(word, found, tokenizer, 5, 1)
    assert len(found) > 2


def test_cjk_without_spaces(tokenizer):
    text = "東京タワーは高い。とても高い。" * 40 + "日本語の文章には空白がありません"
    found = split_passages(text, tokenizer, max_tokens=20, overlap_tokens=3)
    check_invariants(text, found, tokenizer, 20, 3)
    assert all(p.text.endswith("。") for p in found[:-1])


def test_emoji_and_accents(tokenizer):
    text = "Ünïcödé café 🚀🔥 naïve façade 👩‍👩‍👧 " * 50
    check_invariants(text, split_passages(text, tokenizer, 16, 2), tokenizer, 16, 2)


def test_a_long_line_without_any_whitespace_is_cut_into_bounded_passages(tokenizer):
    text = "a" * 100_000  # read as [UNK] tokens, a slice each
    found = split_passages(text, tokenizer)
    assert "".join(p.text for p in found) == text
    assert max(len(p.text) for p in found) <= passages.SLICE_CHARS


def test_a_long_line_of_short_unknown_tokens_is_cut_by_characters_too(tokenizer):
    text = " ".join(["🚀" * 150] * 400)  # each run is one [UNK] of 150 characters
    found = split_passages(text, tokenizer, max_tokens=254, overlap_tokens=0)
    check_invariants(text, found, tokenizer, 254, 0)
    assert max(len(p.text) for p in found) <= 254 * passages.MAX_CHARS_PER_TOKEN


def test_one_very_long_line(tokenizer):
    text = " ".join(f"token{i % 97}" for i in range(60_000))  # ~400 KB, no line break
    started = time.perf_counter()
    found = split_passages(text, tokenizer)
    assert time.perf_counter() - started < 10
    check_invariants(text[:20_000], split_passages(text[:20_000], tokenizer), tokenizer, DEFAULT_MAX_TOKENS,
                     DEFAULT_OVERLAP)
    assert found[0].start == 0 and found[-1].end == len(text)


def test_memory_does_not_grow_with_the_text(tokenizer):
    line = "Speaker A: we talked about the remote control and its buttons , right ?\n"

    def peak(text: str) -> int:
        tracemalloc.start()
        try:
            for _ in iter_passages(text, tokenizer):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(line * 800), peak(line * 6_400)  # 58 KB and 470 KB: 8x the text
    assert large < 2 * small + 1_000_000


def test_slices_do_not_change_the_passages(tokenizer):
    text = "Some words, then more words. And a line\nthat ends; " * 300
    whole = split_passages(text, tokenizer, 30, 5)
    with mock.patch.object(passages, "SLICE_CHARS", 37), mock.patch.object(passages, "SLICES_PER_BATCH", 2):
        assert split_passages(text, tokenizer, 30, 5) == whole


def test_a_tokenizer_that_is_not_word_local_is_counted_again(tokenizer):
    """A wrapper the splitter does not know as BERT's: every passage's tokens are counted on its own text."""

    class Other:
        def __init__(self, inner):
            self.inner = inner
            self.calls = 0

        def encode(self, text, add_special_tokens=False):
            self.calls += 1
            return self.inner.encode(text, add_special_tokens=add_special_tokens)

        def encode_batch(self, texts, add_special_tokens=False):
            return self.inner.encode_batch(texts, add_special_tokens=add_special_tokens)

    other = Other(tokenizer)
    text = "one two three. " * 100
    assert split_passages(text, other, 20, 3) == split_passages(text, tokenizer, 20, 3)
    assert other.calls >= len(split_passages(text, tokenizer, 20, 3))


def test_iter_passages_is_lazy(tokenizer):
    text = "word " * 1_000_000
    first = next(iter_passages(text, tokenizer))
    assert first.start == 0 and first.tokens == DEFAULT_MAX_TOKENS


@pytest.mark.parametrize("max_tokens, overlap", [(0, 0), (10, -1), (10, 6), (True, 0), (10, 2.5)])
def test_bad_settings_are_refused(max_tokens, overlap, tokenizer):
    with pytest.raises(UsageError):
        split_passages("some text", tokenizer, max_tokens, overlap)


# -- settings --------------------------------------------------------------------------------------------------

def test_settings_defaults_fit_the_model_window():
    assert PassageSettings() == PassageSettings(254, 38)
    assert PassageSettings.for_window(256, 2) == PassageSettings(254, 38)
    assert PassageSettings.for_window(128, 2) == PassageSettings(126, 19)
    assert settings_for_model() == PassageSettings(254, 38)


def test_settings_round_trip_and_fingerprint():
    chosen = PassageSettings(100, 10)
    data = chosen.to_dict()
    assert data == {"max_tokens": 100, "overlap": 10, "splitter": passages.SPLITTER_VERSION}
    assert PassageSettings.from_dict(data) == chosen
    assert PassageSettings.from_dict({}) == PassageSettings()
    assert chosen.fingerprint() != PassageSettings(100, 11).fingerprint()
    with mock.patch.object(passages, "SPLITTER_VERSION", passages.SPLITTER_VERSION + 1):
        newer = chosen.fingerprint()
    assert newer != chosen.fingerprint()  # a new splitter makes every passage again


def test_settings_from_dict_refuses_what_it_does_not_know():
    with pytest.raises(UsageError, match="unknown passage settings: colour"):
        PassageSettings.from_dict({"max_tokens": 10, "colour": "red"})
    with pytest.raises(UsageError, match="overlap"):
        PassageSettings.from_dict({"max_tokens": 10, "overlap": 9})


def test_the_tokenizer_counts_past_its_files_truncation(tokenizer):
    assert count_tokens("word " * 1000, tokenizer) == 1000  # the bundled tokenizer.json truncates at 128


def test_an_unknown_model_has_no_tokenizer():
    from vsearch.errors import ModelError

    with pytest.raises(ModelError, match="not a local model directory"):
        load_tokenizer("/nonexistent/model")


# -- properties ------------------------------------------------------------------------------------------------

WORDS = st.sampled_from(["the", "meeting", "remote", "control", "Ünïcödé", "naïve", "東京", "タワー", "🚀", "🔥🔥",
                         "a" * 120, "x", "3.5", "e.g.", "don't", "(note)", "\"quoted.\"", "co-operate", "ﬁne", "①",
                         "\x00", "\u200b", "‍", "¿qué?", "word" * 30])
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\n\n", " . ", ". ", "! ", "? ", ", ", "; ", "。", "", "\t", "\r\n",
                              " \n \n", ": "])
TEXTS = st.one_of(
    st.lists(st.tuples(WORDS, SEPARATORS), max_size=120).map(lambda parts: "".join(w + s for w, s in parts)),
    st.text(max_size=400),
    st.text(alphabet=st.sampled_from("ab .\n,東🚀"), max_size=600),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, max_tokens=st.integers(1, 40), overlap_share=st.floats(0, 0.5))
def test_property_passages_are_exact_bounded_and_cover_the_text(tokenizer, text, max_tokens, overlap_share):
    overlap = min(int(max_tokens * overlap_share), max_tokens // 2)
    found = split_passages(text, tokenizer, max_tokens, overlap)
    check_invariants(text, found, tokenizer, max_tokens, overlap)
    assert bool(found) == bool(tokens_of(text, tokenizer))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, slice_chars=st.integers(8, 64))
@example(text="e.g.。¿qué?remotemeeting the ", slice_chars=8)  # a word cut by a slice: overlap is in other tokens
def test_property_small_slices_give_the_same_passages(tokenizer, text, slice_chars):
    expected = split_passages(text, tokenizer, 12, 3)
    with mock.patch.object(passages, "SLICE_CHARS", slice_chars):
        found = split_passages(text, tokenizer, 12, 3)
    whole_words = all(len(run) < slice_chars for run in re.findall(r"[^ \t\n\r]+", text))
    if whole_words:
        assert found == expected  # slices cut at whitespace: the same tokens, so the same passages
    check_invariants(text, found, tokenizer, 12, 3, whole_tokens=whole_words)
