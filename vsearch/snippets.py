"""A short snippet of a passage for a results table: the part around the words of the query, with those words marked.

`make_snippet(passage_text, query)` picks the window of about `width` characters that holds the most distinct query
words (then the most matches), cuts it at word boundaries, writes "…" where it cuts the passage, folds whitespace runs
(line breaks) into single spaces so it fits one table cell, and gives the [start, end) spans of the matched words in
the snippet's own text, for highlighting. A word matches a query word when their Snowball stems are equal ("meetings"
matches "meeting"), as text mode ranks them (vsearch.stems); stopwords never match. Pure: no Redis, no model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

DEFAULT_WIDTH = 200
ELLIPSIS = "…"

# RediSearch's default English stopwords (vsearch.filters.STOPWORDS, repeated so this module needs nothing else).
STOPWORDS = frozenset(
    "a is the an and are as at be but by for if in into it no not of on or such that their then there these "
    "they this to was will with".split()
)
# A word: a run of letters and digits, except that each CJK ideograph is a word of its own (as BERT reads them: the
# languages written with them put no spaces between words).
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_WORD = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W_])+")
_SPACE_RUN = re.compile(r"\s+")
_SENTENCE_START = re.compile(r"(?<=[.!?…。！？])\s+|\n\s*")


@dataclass(frozen=True)
class Snippet:
    text: str  # what to show: the passage's [start, end), whitespace runs folded, "…" where more of the passage is
    start: int  # [start, end): the part of the passage text it shows
    end: int
    spans: tuple[tuple[int, int], ...]  # the matched words, as [start, end) offsets into `text`


def query_terms(query: str | Iterable[str]) -> list[str]:
    """The stems a snippet looks for: of the query's words (a string, or words already split), stopwords left out,
    each once, in the query's order."""
    words = _WORD.findall(query.lower()) if isinstance(query, str) else [w.lower() for t in query for w in _WORD.findall(t)]
    kept = [w for w in words if w not in STOPWORDS]
    return [s for s in dict.fromkeys(_stem_words(kept)) if s not in STOPWORDS]


def match_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int, int]]:
    """(start, end, which term) of each word of `text` whose stem is one of `terms` (stems, as `query_terms` gives)."""
    index = {term: i for i, term in enumerate(terms)}
    if not index:
        return []
    found = list(_WORD.finditer(text))
    stems = _stem_words([m.group().lower() for m in found])
    return [(m.start(), m.end(), index[s]) for m, s in zip(found, stems) if s in index]


def make_snippet(text: str, query: str | Iterable[str], width: int = DEFAULT_WIDTH) -> Snippet:
    """About `width` characters of `text` around the query's words (see the module's docstring); the text's start
    where none of them is in it."""
    width = max(width, 1)
    matches = match_spans(text, query_terms(query))
    start, end = _window(text, matches, width)
    return _render(text, start, end, [(s, e) for s, e, _ in matches if start <= s and e <= end])


def to_rich(snippet: Snippet, style: str = "bold") -> Any:
    """The snippet as a rich Text with its matched words in `style`, for a table cell."""
    from rich.text import Text

    out = Text(snippet.text)
    for start, end in snippet.spans:
        out.stylize(style, start, end)
    return out


def _window(text: str, matches: list[tuple[int, int, int]], width: int) -> tuple[int, int]:
    """[start, end) of at most `width` characters: the one holding the most distinct terms, then the most matches,
    the earliest of equals; grown to `width` around them and cut at word boundaries."""
    if len(text) <= width:
        return 0, len(text)
    if not matches:
        return 0, _word_end_before(text, 0, width)
    best = (0, 0, 0, 0)  # distinct terms, matches, first and last match of the window
    counts: dict[int, int] = {}
    low = 0
    for high, (_, end, term) in enumerate(matches):
        counts[term] = counts.get(term, 0) + 1
        while low < high and end - matches[low][0] > width:
            old = matches[low][2]
            counts[old] -= 1
            if not counts[old]:
                del counts[old]
            low += 1
        if (len(counts), high - low + 1) > best[:2]:
            best = (len(counts), high - low + 1, low, high)
    first, last = matches[best[2]][0], matches[best[3]][1]
    spare = width - (last - first)
    start = max(0, first - spare // 3)  # a little context before the first match, more after
    # Start at a sentence's start where one is in the context before the first match.
    sentence = None
    for sentence in _SENTENCE_START.finditer(text, start, first):
        pass
    if sentence is not None:
        start = sentence.end()
    end = min(len(text), start + width)
    if end == len(text):  # near the passage's end: show more before the matches instead
        start = max(0, min(start, end - width))
    start = _word_start_after(text, start, first)
    return start, max(_word_end_before(text, start, end), last)


def _word_start_after(text: str, start: int, limit: int) -> int:
    """`start`, moved forward to the next word's start if it falls inside a word (never past `limit`)."""
    if start == 0 or not (_is_word_char(text[start - 1]) and _is_word_char(text[start])):
        return _skip_spaces(text, start, limit)
    found = _WORD.search(text, start, limit + 1)
    while found is not None and found.start() == start:  # inside the word that `start` cuts: the one after it
        found = _WORD.search(text, found.end(), limit + 1)
    return min(found.start(), limit) if found is not None else limit


def _word_end_before(text: str, start: int, end: int) -> int:
    """`end` moved back to the end of the last word that ends at or before it (if that leaves something)."""
    end = min(end, len(text))
    if end == len(text) or not (_is_word_char(text[end - 1]) and _is_word_char(text[end])):
        return end
    cut = end
    while cut > start and _is_word_char(text[cut - 1]):
        cut -= 1
    return cut if cut > start and text[start:cut].strip() else end


def _skip_spaces(text: str, start: int, limit: int) -> int:
    while start < limit and text[start].isspace():
        start += 1
    return start


def _is_word_char(char: str) -> bool:
    return char.isalnum() and not re.match(f"[{_CJK}]", char)


def _render(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> Snippet:
    """The snippet of text[start:end]: whitespace folded, ellipses added, spans moved onto the snippet's text."""
    while end > start and text[end - 1].isspace():
        end -= 1
    while start < end and text[start].isspace():
        start += 1
    head = ELLIPSIS if text[:start].strip() else ""
    parts: list[str] = [head]
    # where each original offset lands in the output: the spans' ends only, found in one pass over the folded runs
    marks = sorted({p for span in spans for p in span})
    moved: dict[int, int] = {}
    out_length, position, m = len(head), start, 0
    for run in _SPACE_RUN.finditer(text, start, end):
        while m < len(marks) and marks[m] <= run.start():
            moved[marks[m]] = out_length + marks[m] - position
            m += 1
        parts.append(text[position:run.start()])
        parts.append(" ")
        out_length += run.start() - position + 1
        position = run.end()
        while m < len(marks) and marks[m] < position:  # inside a folded run: where the single space ends
            moved[marks[m]] = out_length
            m += 1
    while m < len(marks):
        moved[marks[m]] = out_length + marks[m] - position
        m += 1
    parts.append(text[position:end])
    if text[end:].strip():
        parts.append(ELLIPSIS)
    merged: list[tuple[int, int]] = []
    for span in ((moved[s], moved[e]) for s, e in spans):
        if merged and span[0] == merged[-1][1]:  # ideographs one after another: one highlighted run
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    return Snippet("".join(parts), start, end, tuple(merged))


def _stem_words(words: list[str]) -> list[str]:
    return list(_stemmer().stemWords(words)) if words else []


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer  # PyStemmer: the Snowball English stemmer that vsearch.stems (and RediSearch) use

    return Stemmer.Stemmer("english")
