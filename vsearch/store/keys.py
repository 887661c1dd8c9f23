"""Which keys belong to what: vsearch's own namespace, and each index's document prefix.

Redis indexes every key that starts with an index's prefix, so two indexes whose prefixes overlap (one is a
prefix of the other, as `pa:` and `pa:b:` are) see, and with `drop-index --delete-documents` delete, each
other's documents. vsearch therefore refuses any prefix that overlaps another index's or its own namespace,
and makes default prefixes that cannot overlap: the index name with `%`, `:` and `~` percent-encoded, then
`:` (a rebuild's generation adds `~N` before the colon).
"""

from __future__ import annotations

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
    """A user-chosen prefix for a later generation: `doc:` becomes `doc~2:` (`doc` becomes `doc~2~`)."""
    base = prefix[:-1] if prefix.endswith(":") else prefix
    return f"{base}~{generation}{':' if prefix.endswith(':') else '~'}"


def overlaps(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def check_prefix(prefix: str, taken: Iterable[tuple[str, str]]) -> None:
    """Refuse a prefix that would make Redis index keys that belong to someone else.

    `taken` pairs each prefix in use with whose it is (an index name, or vsearch itself).
    """
    if not prefix:
        raise UsageError("an empty --prefix would index every key in the database: give a prefix such as 'docs:'")
    if overlaps(prefix, NAMESPACE):
        raise UsageError(f"prefix '{prefix}' overlaps vsearch's own keys ('{NAMESPACE}*'): pick another name or --prefix")
    for other, owner in taken:
        if overlaps(prefix, other):
            raise UsageError(f"prefix '{prefix}' overlaps index '{owner}' (prefix '{other}'): its documents would be "
                             "indexed, and deleted, by both; pick another name or --prefix")
