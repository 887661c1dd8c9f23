"""Which keys belong to what: vsearch's own namespace, and each index's document prefix.

Redis indexes every key that starts with an index's prefix, so two indexes whose prefixes overlap (one is a
prefix of the other, as `pa:` and `pa:b:` are) see, and with `drop-index --delete-documents` delete, each
other's documents. vsearch therefore refuses any prefix that overlaps another index's or its own namespace,
and makes default prefixes that cannot overlap: the index name with `%`, `:` and `~` percent-encoded, then
`:` (a rebuild's generation adds `~N` before the colon).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vsearch.errors import UsageError

NAMESPACE = "__vsearch:"  # vsearch's own keys: index records, locks, caches; no document key may start with it


def record_key(name: str) -> str:
    return f"{NAMESPACE}index:{name}"


def lock_key(name: str) -> str:
    return f"{NAMESPACE}lock:{name}"


def _encode(name: str) -> str:
    return name.replace("%", "%25").replace(":", "%3A").replace("~", "%7E")


def default_prefix(name: str, generation: int = 1) -> str:
    """`NAME:` for an index's first generation, `NAME~N:` for the Nth; never a prefix of another name's."""
    return f"{_encode(name)}:" if generation <= 1 else f"{_encode(name)}~{generation}:"


def generation_prefix(prefix: str, generation: int) -> str:
    """A user-chosen prefix for a later generation: `~N` goes before its last character, so `doc:` becomes
    `doc~2:` and `doc` becomes `do~2c`. Never an extension of the prefix: that would put one generation's keys
    under another's prefix, and dropping the old generation would delete the new one's documents."""
    base = base_prefix(prefix)
    return base if generation <= 1 else f"{base[:-1]}~{generation}{base[-1]}"


_GENERATION_MARK = re.compile(r"~\d+(?=.\Z)", re.DOTALL)  # \Z and DOTALL: a prefix may end in a newline
_OLD_GENERATION_MARK = re.compile(r"~\d+~\Z")  # before: `doc` became `doc~2~`


def base_prefix(prefix: str) -> str:
    """The first generation's prefix of the family `prefix` belongs to: `doc~3:` -> `doc:`."""
    if _OLD_GENERATION_MARK.search(prefix):
        return _OLD_GENERATION_MARK.sub("", prefix)
    return _GENERATION_MARK.sub("", prefix, count=1)


def overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def check_user_prefix(prefix: str) -> None:
    """A prefix given with --prefix or in a schema file: `~` marks vsearch's generations, so none may hold it
    (`doc~2:` would be the second generation of `doc:`, and a rebuild of either would delete the other's keys)."""
    if "~" in prefix:
        raise UsageError(f"prefix '{prefix}' holds '~', which vsearch keeps for an index's generations "
                         "(`doc~2:` is the second one of `doc:`): pick a prefix without it")


def check_prefix(prefix: str, taken: Iterable[tuple[str, str]]) -> None:
    """Refuse a prefix that would make Redis index keys that belong to someone else, now or after a rebuild.

    `taken` pairs each prefix in use with whose it is (an index name, or vsearch itself). Two prefixes clash when
    one starts with the other, or when their families do (every generation of a family starts with its base's
    first characters, so disjoint bases keep every future generation apart).
    """
    if not prefix:
        raise UsageError("an empty --prefix would index every key in the database: give a prefix such as 'docs:'")
    if overlaps(prefix, NAMESPACE):
        raise UsageError(f"prefix '{prefix}' overlaps vsearch's own keys ('{NAMESPACE}*'): pick another name or --prefix")
    for other, owner in taken:
        if not other or overlaps(prefix, other) or overlaps(base_prefix(prefix), base_prefix(other)):
            raise UsageError(f"prefix '{prefix}' overlaps index '{owner}' (prefix '{other or '(none: every key)'}'): "
                             "its documents would be indexed, and deleted, by both; pick another name or --prefix")
