"""The Redis adapter, split by concern: every Redis command vsearch sends (but the embedded server's own process
management in vsearch/server.py) is sent from here, and everything above it sees dataclasses, never raw replies.

- `connection`: clients for the configured server, and driver errors turned into one line.
- `keys`: vsearch's own key namespace, document key prefixes and the rule that no two may overlap.
- `definitions`: FT.CREATE schemas, aliases, the recorded spec, FT.INFO.
- `generations`: a rebuild's new generation beside the live one, checked and swapped in behind the alias.
- `layouts`: how a document is laid out in a HASH and in a JSON document.
- `vectors`: vectors as the bytes RediSearch reads.
- `documents`: batched writes, fingerprints, reads of stored vectors, id scans and deletes.
- `search`: KNN and full-text queries and their hits.
- `lock`: one writer per index, held in Redis. `run_ids`: the ids one load has read.
- `query_cache`: query embeddings kept in Redis. `sizing`: memory per document.
"""

import redis

from vsearch.store.connection import connect, translate_errors
from vsearch.store.definitions import (IndexStats, check_owned, count_documents, create_index, drop_index, get_spec,
                                       index_exists, index_names, index_stats, purge_replaced_entries)
from vsearch.store.documents import (Document, StoredPassages, StoredState, check_persisted, copy_documents,
                                     content_keys, delete_documents, document_vector, exist, read_passages, read_states,
                                     read_vectors, scan_ids, write_batch, write_documents)
from vsearch.store.generations import abandon, go_live, next_generation, wait_indexed
from vsearch.store.keys import NAMESPACE, default_prefix
from vsearch.store.search import Hit, search
from vsearch.store.vectors import bytes_vector, vector_bytes

Client = redis.Redis  # what `connect` returns; the use cases pass it along without calling it

__all__ = [
    "NAMESPACE", "Client", "Document", "Hit", "content_keys", "IndexStats", "StoredPassages", "StoredState", "read_passages", "abandon", "bytes_vector", "check_owned",
    "check_persisted", "connect", "copy_documents", "count_documents", "create_index", "default_prefix",
    "delete_documents", "document_vector", "drop_index", "exist", "get_spec", "go_live", "index_exists",
    "index_names", "index_stats", "next_generation", "purge_replaced_entries", "read_states", "read_vectors",
    "scan_ids", "search", "translate_errors", "vector_bytes", "wait_indexed", "write_batch", "write_documents",
]
