"""Vectors as the little-endian bytes RediSearch reads from a HASH field, and back."""

from __future__ import annotations

import numpy as np

from vsearch.schema import DataType

NUMPY_TYPES = {DataType.float32: np.float32, DataType.float64: np.float64, DataType.float16: np.float16}


def vector_bytes(vector: np.ndarray, datatype: DataType) -> bytes:
    vector = np.asarray(vector, dtype=np.float32)
    if datatype is DataType.bfloat16:
        # bfloat16 is the top half of a float32; round to nearest even instead of truncating.
        bits = vector.astype("<f4").view("<u4").astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return rounded.astype("<u2").tobytes()
    return vector.astype(np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")).tobytes()


def bytes_vector(raw: bytes, datatype: DataType) -> np.ndarray:
    if datatype is DataType.bfloat16:
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")).astype(np.float32)
