"""Long texts as passages that fit a text model's window, for embedding each on its own (issue 15).

all-MiniLM-L6-v2 reads 256 tokens, two of them its own [CLS] and [SEP]: a longer text is truncated and the rest of it
never reaches the vector. `split_passages` cuts a text into passages of at most `max_tokens` tokens, counted with the
model's own tokenizer, each overlapping the one before by up to `overlap_tokens`, and cut where a paragraph, line,
sentence or clause ends near the window's end rather than mid-sentence. Each passage knows its [start, end) character
offsets in the text, so a result can show (and highlight) where in the document it matched.

The tokenizer is a `tokenizers.Tokenizer` (the model's `tokenizer.json`; `load_tokenizer` finds it): it loads in
milliseconds and needs no torch. The text is tokenized a slice at a time, so a 10 MB text never has all its tokens in
memory at once, and in one pass: each token is looked at a bounded number of times.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from vsearch.errors import ModelError, UsageError

# all-MiniLM-L6-v2 reads 256 tokens (its sentence_bert_config.json), [CLS] and [SEP] among them.
DEFAULT_WINDOW = 256
DEFAULT_SPECIAL_TOKENS = 2
DEFAULT_MAX_TOKENS = DEFAULT_WINDOW - DEFAULT_SPECIAL_TOKENS
OVERLAP_SHARE = 0.15
DEFAULT_OVERLAP = round(DEFAULT_MAX_TOKENS * OVERLAP_SHARE)  # 38
# Bumped whenever the same text and settings could give other passages: part of `PassageSettings.to_dict`, so an
# index's passages made by an older splitter are noticed (their fingerprints change) and made again.
SPLITTER_VERSION = 1

# A passage is cut within the last third of its window where a boundary is; nearer the start only if none is.
CUT_ZONE = 2 / 3
# No passage is longer than this many characters a token (unless one token is): only text the tokenizer reads as
# few tokens gets near it (runs of emoji or of letters past the tokenizer's longest word, each read as one [UNK]).
MAX_CHARS_PER_TOKEN = 16
# The text is tokenized in slices of about this many characters, cut after a whitespace character: tokenizers never
# look across whitespace, so each slice's tokens are the whole text's own (see models.text_model_reads).
SLICE_CHARS = 1 << 14
SLICES_PER_BATCH = 8  # encode_batch runs the slices of a batch on the tokenizer's own threads

# Only what BERT's normalizer keeps as whitespace: it deletes other control characters (\f, \v), joining the words
# on either side, so a slice must not end after one.
_SPACES = " \t\n\r"
_LINE_BREAKS = "\n\u2028\u2029"
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n|\u2029")
SENTENCE_ENDS = frozenset(".!?…‼⁇⁈⁉。！？｡؟।॥")
_FULLWIDTH_ENDS = frozenset("。！？｡")  # ends a sentence with no space after it (Chinese, Japanese)
CLAUSE_ENDS = frozenset(",;:，；：、")
_CLOSERS = frozenset("\"')]}»”’」』）】")

# How good a place to cut between two tokens is: a blank line, a line break, a sentence end, a clause end, a space,
# a word boundary with no space (before punctuation), inside a word.
_PARAGRAPH, _LINE, _SENTENCE, _CLAUSE, _SPACE, _WORD, _INSIDE = 6, 5, 4, 3, 2, 1, 0


@dataclass(frozen=True)
class Passage:
    text: str  # == the split text[start:end]
    start: int  # character offsets into the split text: [start, end)
    end: int
    tokens: int  # tokens the tokenizer makes of `text`, special tokens left out (at most max_tokens)


@dataclass(frozen=True)
class PassageSettings:
    """How an index's texts are split; recorded with the index, so every load splits them the same way."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    overlap: int = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise UsageError(f"passage max_tokens must be a whole number of at least 1, not {self.max_tokens!r}")
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or not 0 <= self.overlap <= self.max_tokens // 2:
            raise UsageError(f"passage overlap must be a whole number from 0 to half of max_tokens "
                             f"({self.max_tokens // 2}), not {self.overlap!r}")

    @classmethod
    def for_window(cls, window: int, special_tokens: int = DEFAULT_SPECIAL_TOKENS) -> PassageSettings:
        """The defaults for a model that reads `window` tokens, `special_tokens` of them its own: ~15% overlap."""
        max_tokens = max(window - special_tokens, 1)
        return cls(max_tokens, round(max_tokens * OVERLAP_SHARE))

    def to_dict(self) -> dict[str, int]:
        return {"max_tokens": self.max_tokens, "overlap": self.overlap, "splitter": SPLITTER_VERSION}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PassageSettings:
        """Settings as `to_dict` wrote them (its "splitter" says which version of this module split the passages)."""
        unknown = set(data) - {"max_tokens", "overlap", "splitter"}
        if unknown:
            raise UsageError(f"unknown passage settings: {', '.join(sorted(unknown))}")
        return cls(data.get("max_tokens", DEFAULT_MAX_TOKENS), data.get("overlap", DEFAULT_OVERLAP))

    def fingerprint(self) -> str:
        """What a passage's fingerprint digests of the settings: changes with them and with the splitter."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def split_passages(text: str, tokenizer: Any, max_tokens: int = DEFAULT_MAX_TOKENS,
                   overlap_tokens: int = DEFAULT_OVERLAP) -> list[Passage]:
    """`text` as passages of at most `max_tokens` tokens each, in order, covering every token of the text.

    Each passage starts at a token's start and ends at a token's end (so holds no surrounding whitespace), overlaps
    the one before by at most `overlap_tokens` tokens (starting at a sentence or line start within that overlap where
    there is one), and is cut at the best boundary in the last third of its window: a blank line, then a line break,
    a sentence end, a clause end, a space; a word is split only where no boundary is near (a word longer than the
    window). A text with no tokens (empty, whitespace) has no passages.
    """
    return list(iter_passages(text, tokenizer, max_tokens, overlap_tokens))


def iter_passages(text: str, tokenizer: Any, max_tokens: int = DEFAULT_MAX_TOKENS,
                  overlap_tokens: int = DEFAULT_OVERLAP) -> Iterator[Passage]:
    """`split_passages` one passage at a time: what it holds at once is bounded whatever the text's length."""
    PassageSettings(max_tokens, overlap_tokens)  # the same checks
    yield from _Splitter(text, tokenizer, max_tokens, overlap_tokens).passages()


def count_tokens(text: str, tokenizer: Any) -> int:
    """Tokens `tokenizer` makes of `text`, special tokens left out: what a passage's limit counts."""
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


class _Splitter:
    """One text's token offsets, held from the current passage's first token on, and the choice of each cut."""

    def __init__(self, text: str, tokenizer: Any, max_tokens: int, overlap: int) -> None:
        self.text, self.tokenizer = text, tokenizer
        self.max_tokens, self.overlap = max_tokens, overlap
        self.max_chars = max_tokens * MAX_CHARS_PER_TOKEN
        # starts[i - base], ends[i - base]: token i's characters; word_starts[i - base]: token i starts a word
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.word_starts: list[bool] = []
        self.base = 0
        self.slices = _token_slices(text, tokenizer)
        self.exhausted = False
        self.hard_cuts: list[int] = []  # the first token of each slice that had to be cut inside a word
        self.word_local = _word_local(tokenizer)

    def passages(self) -> Iterator[Passage]:
        first = floor = 0  # floor: the first token past the passage before, where this one must end at the earliest
        while True:
            self._fill(first + self.max_tokens + 1)
            last_known = self.base + len(self.starts) - 1
            if first > last_known:
                return
            high = min(first + self.max_tokens - 1, last_known)
            while high > first and self._end(high) - self._start(first) > self.max_chars:
                high -= 1
            final = self.exhausted and high == last_known
            cut = high if final else self._best_cut(first, max(floor, first), high)
            passage, first, cut = self._checked(first, max(floor, first), cut)
            yield passage
            if final and cut == high:
                return
            first, floor = self._next_start(first, cut), cut + 1
            self._forget_before(first)

    # -- the token stream ----------------------------------------------------------------------------------------

    def _fill(self, upto: int) -> None:
        """Hold the tokens up to index `upto` (exclusive), or all that are left."""
        while not self.exhausted and self.base + len(self.starts) < upto:
            found = next(self.slices, None)
            if found is None:
                self.exhausted = True
                return
            offset, offsets, words, hard = found
            if hard:
                self.hard_cuts.append(self.base + len(self.starts))
            self.starts.extend([offset + start for start, _ in offsets])
            self.ends.extend([offset + end for _, end in offsets])
            # A new word where the pre-tokenizer's word index changes (whitespace or punctuation split them): a cut
            # there leaves every token as it was. Each slice begins a word.
            self.word_starts.extend([word is None or i == 0 or word != words[i - 1] for i, word in enumerate(words)])

    def _forget_before(self, index: int) -> None:
        drop = index - self.base
        if drop > 4096:
            del self.starts[:drop], self.ends[:drop], self.word_starts[:drop]
            self.base = index

    def _start(self, i: int) -> int:
        return self.starts[i - self.base]

    def _end(self, i: int) -> int:
        return self.ends[i - self.base]

    def _word_start(self, i: int) -> bool:
        return self.word_starts[i - self.base]

    # -- choosing cuts -------------------------------------------------------------------------------------------

    def _level(self, i: int, first: int) -> int:
        """How good a place the boundary after token i is to end a passage that starts at token `first` (token i + 1
        must be held)."""
        text = self.text
        gap_start, gap_end = self._end(i), self._start(i + 1)
        if gap_end > gap_start:
            gap = text[gap_start:gap_end]
            newlines = gap.count("\n")
            if newlines > 1 or "\n\n" in gap.replace("\r", "") or "\u2029" in gap:
                return _PARAGRAPH
            if newlines or "\u2028" in gap:
                return _LINE
        elif not self._word_start(i + 1):
            return _INSIDE
        spaced = gap_end > gap_start
        token = text[self._start(i):self._end(i)]
        if token and all(c in _CLOSERS for c in token) and i > first and self._end(i - 1) == self._start(i):
            token = text[self._start(i - 1):self._end(i - 1)]  # `end."` ends a sentence as `end.` does
        mark = token[-1:]
        if mark in SENTENCE_ENDS and (spaced or mark in _FULLWIDTH_ENDS):
            return _SENTENCE
        if mark in CLAUSE_ENDS and (spaced or mark in "，；：、"):
            return _CLAUSE
        return _SPACE if spaced else _WORD

    def _best_cut(self, first: int, floor: int, high: int) -> int:
        """The last token of the passage that starts at `first` and ends in [floor, high] (`high` + 1 is held): the
        best boundary in the window's last third, the latest of equals; the whole window if none is better."""
        low = max(first + max(math.ceil((high - first + 1) * CUT_ZONE), 1) - 1, floor)
        # Line breaks are found by the string's own search, not token by token: most texts have one in every window.
        line = self._last_line_break(low, high)
        if line is not None:
            zone = self.text[self._end(low):self._start(high + 1)]
            blank = None
            for blank in _BLANK_LINE.finditer(zone):
                pass
            if blank is not None:
                return self._token_before(self._end(low) + blank.start(), low, high)
            return line
        best, best_level = high, -1
        for i in range(high, low - 1, -1):
            level = self._level(i, first)
            if level > best_level:
                best, best_level = i, level
                if level >= _SENTENCE:
                    break
        if best_level <= _INSIDE:  # no word boundary in the last third: take the latest one before it, if any
            for i in range(low - 1, floor - 1, -1):
                if self._level(i, first) > _INSIDE:
                    return i
        return best

    def _last_line_break(self, low: int, high: int) -> int | None:
        """The last token in [low, high] followed by a line break, if any."""
        zone_start, zone_end = self._end(low), self._start(high + 1)
        found = max(self.text.rfind(c, zone_start, zone_end) for c in _LINE_BREAKS)
        return None if found < 0 else self._token_before(found, low, high)

    def _token_before(self, position: int, low: int, high: int) -> int:
        """The last token in [low, high] that ends at or before character `position`."""
        base = self.base
        i = bisect_right(self.ends, position, low - base, high + 1 - base) - 1 + base
        return min(max(i, low), high)

    def _next_start(self, first: int, cut: int) -> int:
        """The first token of the passage after the one that ends at `cut`: the earliest sentence or line start within
        the last `overlap` tokens of that passage, else the earliest word start there, else the window's own start."""
        low = max(first + 1, cut + 1 - self.overlap)
        # The next passage must reach past this one: with its overlap, at least its first new token within max_chars.
        while low <= cut and self._end(cut + 1) - self._start(low) > self.max_chars:
            low += 1
        if low > cut:
            return cut + 1
        spaced = worded = None
        for i in range(low, cut + 1):
            level = self._level(i - 1, first)
            if level >= _SENTENCE:
                return i
            if level >= _SPACE and spaced is None:
                spaced = i
            elif level >= _WORD and worded is None:
                worded = i
        if spaced is not None:
            return spaced
        if worded is not None:
            return worded
        return cut + 1 if self._word_start(cut + 1) else low

    def _checked(self, first: int, floor: int, cut: int) -> tuple[Passage, int, int]:
        """The passage from token `first` to `cut`, shortened until the tokenizer makes at most max_tokens of its text
        on its own. With a word-local tokenizer (BERT's: each word tokenized on its own, whatever is around it) a
        passage that starts and ends at word boundaries has exactly its tokens in the whole text, so only passages cut
        inside a word are tokenized again: a word piece on its own can become more tokens ("##ub" is "u", "##b").
        The end never moves before `floor` (the passage must reach past the one before); past that, the overlap goes.
        Only a passage of one word piece can then be left with more tokens than max_tokens (when that is 1 or 2)."""
        while True:
            start, end = self._start(first), self._end(cut)
            passage_text = self.text[start:end]
            if self.word_local and self._whole_words(first, cut):
                return Passage(passage_text, start, end, cut - first + 1), first, cut
            tokens = count_tokens(passage_text, self.tokenizer)
            if tokens <= self.max_tokens or first == cut:
                return Passage(passage_text, start, end, tokens), first, cut
            if cut > floor:
                cut = max(floor, cut - (tokens - self.max_tokens))
            else:
                first += 1

    def _whole_words(self, first: int, cut: int) -> bool:
        """Whether the passage starts and ends at word boundaries and takes in no slice that was cut inside a word
        (its text would join what the slices tokenized apart)."""
        if not self._word_start(first):
            return False
        if cut + 1 < self.base + len(self.starts):
            if not self._word_start(cut + 1):
                return False
        elif not self.exhausted:
            return False
        i = bisect_right(self.hard_cuts, first)
        return i == len(self.hard_cuts) or self.hard_cuts[i] > cut


def _word_local(tokenizer: Any) -> bool:
    """Whether the tokenizer tokenizes each word on its own: BERT's normalizer (character by character), its
    pre-tokenizer (whitespace and punctuation split words) and WordPiece. Others have their passages counted again."""
    kinds = {type(getattr(tokenizer, part, None)).__name__ for part in ("normalizer", "pre_tokenizer", "model")}
    return kinds == {"BertNormalizer", "BertPreTokenizer", "WordPiece"}


def _token_slices(text: str, tokenizer: Any) -> Iterator[tuple[int, list[tuple[int, int]], list[int | None], bool]]:
    """(where a slice starts, its tokens' (start, end) offsets, their word indexes, whether the slice starts inside a
    word), slice by slice.

    Slices end after their last whitespace character, so no word is split; one with no whitespace at all (a run of
    16,384 letters) is cut where it must be (BERT reads such a run as [UNK] anyway).
    """
    position, length, hard = 0, len(text), False
    while position < length:
        bounds: list[tuple[int, int, bool]] = []
        while position < length and len(bounds) < SLICES_PER_BATCH:
            end = min(position + SLICE_CHARS, length)
            cut_inside = False
            if end < length:
                space = max(text.rfind(c, position, end) for c in _SPACES)
                if space >= position:
                    end = space + 1
                else:
                    cut_inside = True
            bounds.append((position, end, hard))
            position, hard = end, cut_inside
        encodings = tokenizer.encode_batch([text[a:b] for a, b, _ in bounds], add_special_tokens=False)
        for (start, _, starts_inside), encoding in zip(bounds, encodings):
            yield start, encoding.offsets, encoding.word_ids, starts_inside


# -- the model's tokenizer ---------------------------------------------------------------------------------------

TOKENIZER_FILE = "tokenizer.json"


@lru_cache(maxsize=8)
def load_tokenizer(model_name_or_path: str = "all-MiniLM-L6-v2") -> Any:
    """The model's fast tokenizer (`tokenizer.json`), with its own truncation and padding turned off (the bundled
    all-MiniLM-L6-v2 file truncates at 128 and pads to 128): every token of a text is counted."""
    from tokenizers import Tokenizer

    path = _model_dir(model_name_or_path) / TOKENIZER_FILE
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises its own exception type for a missing or malformed file
        raise ModelError(f"cannot read the tokenizer of '{model_name_or_path}' ({path}): {exc}") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def settings_for_model(model_name_or_path: str = "all-MiniLM-L6-v2") -> PassageSettings:
    """The default passage settings for a model: its window (sentence-transformers' max_seq_length, else the
    tokenizer's model_max_length) less the special tokens it adds, ~15% overlap."""
    directory = _model_dir(model_name_or_path)
    window = _read_int(directory / "sentence_bert_config.json", "max_seq_length")
    if window is None:
        window = _read_int(directory / "tokenizer_config.json", "model_max_length")
    if window is None or window > 1 << 20:  # transformers writes a huge number for "no limit"
        window = DEFAULT_WINDOW
    special = load_tokenizer(model_name_or_path).num_special_tokens_to_add(False)
    return PassageSettings.for_window(window, special)


def _model_dir(model_name_or_path: str) -> Path:
    from vsearch.models.names import model_dir

    directory = model_dir(model_name_or_path)
    if directory is None:
        raise ModelError(f"model '{model_name_or_path}' is not a local model directory: its tokenizer is needed to "
                         "split texts into passages")
    return directory


def _read_int(path: Path, key: str) -> int | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
