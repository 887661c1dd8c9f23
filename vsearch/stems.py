"""The stemmed words that text and hybrid mode rank by BM25, for a document's TEXT fields and for a query alike.

RediSearch's own stemming cannot give BM25 over stems: a stemmed TEXT field indexes each word as written and,
when the stem differs, once more under "+stem", and a query expands each word to the word, the stem and +stem.
A document holding the word as written then matches two terms of the expansion and scores twice, and one holding
two forms of the word splits their count between two terms, each with its own IDF. SciFact's 300 test claims,
nDCG@10 by bench/hybrid_quality.py: 0.6835 over the stems of this module; before it, the same bench measured 0.652
with RediSearch's expansion and 0.662 with none (VERBATIM). Querying only stem and +stem scored 0.658 in a one-off
experiment, not kept.

So vsearch writes the stems of every TEXT field of a document into one hidden field, STEMS_FIELD (each marked
as a term no word can be), and a query looks its own stems up there: BM25 over stems, as Lucene's and
Elasticsearch's English analysers rank. The stemmer is Snowball's English (Porter2), the one RediSearch itself
uses, through PyStemmer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from vsearch.filters import STOPWORDS

STEMS_FIELD = "__vsearch_stems"

# Every stem is stored and looked up with this mark at its end, a private-use character no text holds. RediSearch
# keeps one posting per term and document whatever the field, with one count for all fields: a bare stem "boot"
# would also count the word "boot" of a title, and score a document holding the word as written twice again.
STEM_MARK = "\ue000"

# Letters and digits only: the same words RediSearch's tokenizer would find, and no character of a stem needs
# escaping in a query or could split differently when RediSearch tokenizes the stored field.
_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def stems(text: str) -> list[str]:
    """The stems of the words of `text`, in order, stopwords left out (before stemming and after: "its" -> "it")."""
    words = [word for word in _WORD.findall(text.lower()) if word not in STOPWORDS]
    return [stem for stem in _stemmer().stemWords(words) if stem not in STOPWORDS]


def stemmed_text(values: Iterable[Any]) -> str:
    """The STEMS_FIELD value of a document: the stems of its TEXT values (strings, or lists of them) in one line.
    A null (JSON's, in a document another tool wrote) is no text, not the word "None"."""
    parts: list[str] = []
    for value in values:
        for text in value if isinstance(value, list) else [value]:
            if text is not None:
                parts.extend(stems(str(text)))
    return " ".join(stem + STEM_MARK for stem in parts)


def stem_query(text: str) -> str | None:
    """`text` as a full-text OR query over STEMS_FIELD (any of its stems); None when no stem is left.

    Stems are letters and digits only, so nothing in them needs escaping, and stopwords are out, so the query is
    never the stopword union that crashes RediSearch 2.10 (see vsearch.filters).
    """
    found = list(dict.fromkeys(stems(text)))
    return f"@{STEMS_FIELD}:({'|'.join(stem + STEM_MARK for stem in found)})" if found else None
