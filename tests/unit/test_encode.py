"""`vsearch encode`'s batching, with a stand-in encoder: no server, no model. The command itself: tests/e2e/test_encode.py."""

from __future__ import annotations

import numpy as np

from vsearch.encode import Item, encode_items


class CountingEncoder:
    """A stand-in encoder for the batching logic only: records each call's size."""

    name, dim, modalities = "counting", 2, frozenset({"text"})

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode_texts(self, texts, batch_size=64):
        self.calls.append(len(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    def encode_images(self, images, batch_size=64):  # pragma: no cover - not used
        raise NotImplementedError


def test_chunks_keep_order_and_size() -> None:
    encoder = CountingEncoder()
    items = [Item(str(i), "x" * i) for i in range(10)]
    out = list(encode_items(items, encoder, images=False, batch_size=2, chunk=4))
    assert encoder.calls == [4, 4, 2]
    assert [i for ids, _ in out for i in ids] == [str(i) for i in range(10)]
    assert [v[0] for _, vectors in out for v in vectors] == list(range(10))
