"""The Redis adapter, split by concern; everything above it sees dataclasses, never raw replies.

- `connection`: clients for the configured server, and driver errors turned into one line.
- `keys`: vsearch's own key namespace, document key prefixes and the rule that no two may overlap.
- `definitions`: FT.CREATE schemas, aliases, the recorded spec, FT.INFO.
- `vectors`: vectors as the bytes RediSearch reads.
- `documents`: batched writes, fingerprints, reads of stored vectors, id scans and deletes.
- `search`: KNN queries and their hits.
- `lock`: one writer per index, held in Redis.
"""

from vsearch.store.connection import connect, translate_errors
from vsearch.store.definitions import (IndexStats, count_documents, create_index, drop_index, get_spec, index_exists,
                                       index_names, index_stats)
from vsearch.store.documents import (Document, StoredState, copy_documents, delete_documents, document_vector, exist,
                                     read_states, scan_ids, write_documents)
from vsearch.store.keys import NAMESPACE, default_prefix
from vsearch.store.search import Hit, search
from vsearch.store.vectors import bytes_vector, vector_bytes

__all__ = [
    "NAMESPACE", "Document", "Hit", "IndexStats", "StoredState", "bytes_vector", "connect", "copy_documents",
    "count_documents",
    "create_index", "default_prefix", "delete_documents", "document_vector", "drop_index", "exist", "get_spec",
    "index_exists", "index_names", "index_stats", "read_states", "scan_ids", "search", "translate_errors",
    "vector_bytes",
    "write_documents",
]
