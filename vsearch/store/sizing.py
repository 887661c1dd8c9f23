"""How much memory an index and its documents take, so a user can see when one server stops holding the corpus.

RediSearch 2.10's FT.INFO counts the vector index (`vector_index_sz_mb`) apart from the rest of the index
(`total_index_memory_sz_mb`: inverted indexes, tags, the document table). The documents themselves (the
hashes or JSON values that hold each vector) live in the keyspace, measured here with MEMORY USAGE on a sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

import redis

from vsearch.errors import IndexNotFound
from vsearch.schema import IndexSpec
from vsearch.store.connection import after, decode, translate_errors
from vsearch.store.documents import key_of, scan_ids

SAMPLE = 200  # documents whose MEMORY USAGE is averaged
MB = 1024 * 1024


@dataclass(frozen=True)
class IndexMemory:
    documents: int
    vector_index_mb: float
    other_index_mb: float  # inverted indexes, tag and numeric indexes, the document table
    document_bytes: float  # mean MEMORY USAGE of a document's key, from a sample
    bytes_per_document: float  # the key and its share of both indexes
    server_used_mb: float
    server_limit_mb: float | None  # maxmemory, else the machine's memory; None when the server does not say
    documents_that_fit: int | None  # more documents like these that the limit leaves room for

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def index_memory(client: redis.Redis, spec: IndexSpec) -> IndexMemory:
    with translate_errors(f"cannot read the memory figures of index '{spec.name}'"):
        info = decode(client.execute_command("FT.INFO", spec.physical))
        if not isinstance(info, list):
            raise IndexNotFound(spec.name)
        documents = int(float(after(info, "num_docs")))  # type: ignore[arg-type]
        vector_mb = float(after(info, "vector_index_sz_mb"))  # type: ignore[arg-type]
        other_mb = float(after(info, "total_index_memory_sz_mb"))  # type: ignore[arg-type]
        sample = [int(client.memory_usage(key_of(spec, i)) or 0) for i in islice(scan_ids(client, spec), SAMPLE)]
        memory = client.info("memory")
    document_bytes = sum(sample) / len(sample) if sample else 0.0
    per_document = document_bytes + (vector_mb + other_mb) * MB / documents if documents else 0.0
    used = float(memory.get("used_memory", 0))
    limit = float(memory.get("maxmemory") or memory.get("total_system_memory") or 0) or None
    fit = int(max(limit - used, 0) / per_document) if limit and per_document else None
    return IndexMemory(documents, vector_mb, other_mb, document_bytes, per_document, used / MB,
                       limit / MB if limit else None, fit)
