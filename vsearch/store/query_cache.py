"""Query embeddings cached in Redis, so a repeated text query loads no model at all.

A key names the model by its fingerprint (which changes whenever the model's files do) and the text by its
sha256, under vsearch's own namespace: `__vsearch:qcache:<fingerprint>:<sha256 of the UTF-8 text>`. The value
is the raw float32 vector; a TTL keeps the cache from growing without end. Only the query use case calls
this module: models and the store know nothing of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis

from vsearch.store.connection import translate_errors
from vsearch.store.keys import NAMESPACE

if TYPE_CHECKING:
    import numpy as np

DEFAULT_TTL = 7 * 24 * 3600  # seconds; a cached embedding is re-made at most once a week per query text
PREFIX = f"{NAMESPACE}qcache:"


def cache_key(fingerprint: str, text: str) -> str:
    # surrogatepass: a lone surrogate (from a JSON \ud800) is still a text someone can query twice.
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
    return f"{PREFIX}{fingerprint}:{digest}"


def get_many(client: redis.Redis, fingerprint: str, texts: Sequence[str], dim: int | None = None) -> list[bytes | None]:
    """The cached vector of each text as little-endian float32 bytes, None where there is none (or where it has
    the wrong size). Bytes, not an array: a cached query then never needs numpy."""
    if not texts:
        return []
    with translate_errors("cannot read the query cache"):
        values = client.mget([cache_key(fingerprint, t) for t in texts])
    out: list[bytes | None] = []
    for value in values:
        if isinstance(value, bytes) and value and len(value) % 4 == 0 and (dim is None or len(value) == 4 * dim):
            out.append(value)
        else:
            out.append(None)
    return out


def put_many(client: redis.Redis, fingerprint: str, texts: Sequence[str], vectors: Sequence[np.ndarray],
             ttl: int = DEFAULT_TTL) -> bool:
    """Cache each text's vector for `ttl` seconds, in one round trip; False if the server refused the writes.

    A refusal (out of memory, a read-only replica, a full disk) must not fail the query it would only speed up.
    """
    if not texts:
        return True
    import numpy as np

    pipe = client.pipeline(transaction=False)
    for text, vector in zip(texts, vectors):
        pipe.set(cache_key(fingerprint, text), np.asarray(vector, dtype="<f4").tobytes(), ex=ttl)
    with translate_errors("cannot write the query cache"):
        try:
            pipe.execute()
        except redis.ResponseError:
            return False
    return True
