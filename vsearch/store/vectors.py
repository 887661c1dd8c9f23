"""Vectors as the little-endian bytes RediSearch reads from a HASH field, and back.

numpy is imported inside the functions that use it: a `--like` or cached text query only passes float32 bytes
along, and starting without numpy saves a tenth of a second of its start-up.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Union

from vsearch.schema import DataType

if TYPE_CHECKING:
    import numpy as np

# A query vector: an array, or already the little-endian float32 bytes of one (a cached query embedding, a
# stored FLOAT32 vector), which is sent as it is.
QueryVector = Union["np.ndarray", bytes]


def vector_bytes(vector: np.ndarray, datatype: DataType) -> bytes:
    import numpy as np

    if datatype is DataType.float32:  # the common case, one copy: asarray keeps a little-endian float32 array as is
        return np.asarray(vector, dtype="<f4").tobytes()
    vector = np.asarray(vector, dtype=np.float32)
    if datatype is DataType.bfloat16:
        # bfloat16 is the top half of a float32; round to nearest even instead of truncating.
        bits = vector.astype("<f4").view("<u4").astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.astype("<u2").tobytes()
    return vector.astype(np.dtype(_numpy_type(datatype)).newbyteorder("<")).tobytes()


def bytes_vector(raw: bytes, datatype: DataType) -> np.ndarray:
    import numpy as np

    if datatype is DataType.bfloat16:
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(_numpy_type(datatype)).newbyteorder("<")).astype(np.float32)


def query_blob(vector: QueryVector, datatype: DataType) -> bytes:
    """What a KNN query sends as its vector, in the field's datatype."""
    if isinstance(vector, bytes):
        return vector if datatype is DataType.float32 else vector_bytes(bytes_vector(vector, DataType.float32), datatype)
    return vector_bytes(vector, datatype)


def dimensions(vector: QueryVector) -> int | None:
    """How many numbers a query vector holds; None if it is not one flat vector."""
    if isinstance(vector, bytes):
        return len(vector) // 4 if len(vector) % 4 == 0 else None
    return vector.shape[0] if vector.ndim == 1 else None


@cache  # called for every vector a load writes
def _numpy_type(datatype: DataType) -> type:
    import numpy as np

    return {DataType.float32: np.float32, DataType.float64: np.float64, DataType.float16: np.float16}[datatype]
