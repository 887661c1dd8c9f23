"""Parsing a passage-indexed hit's JSON document: the standard library's json against vsearch's (orjson), side by side.

A QMSum meeting indexed with passages is returned by a search as one JSON document holding its text (~40 KB), its stems (~34 KB)
and every passage's vector as numbers (~48 x 384 floats): ~470 KiB. This builds documents of that shape, parses each the two ways,
rounds alternating, and prints milliseconds a hit (medians) and the ratio; both must give the same value.

Usage: .venv/bin/python bench/hit_parsing.py [--rounds 5] [--hits 50] [--passages 48]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsearch.store.layouts import _json_value  # noqa: E402


def documents(hits: int, passages: int, dims: int = 384) -> list[bytes]:
    """JSON replies shaped like a passage-indexed meeting: text, passage offsets and float32 vectors as numbers."""
    rng = np.random.default_rng(0)
    words = ["meeting", "remote", "control", "design", "budget", "we", "should", "the", "button", "user"]
    out = []
    for _ in range(hits):
        text = " ".join(rng.choice(words, size=7000))
        chunks = [{"start": i * 900, "end": i * 900 + 1100, "v": [float(x) for x in rng.standard_normal(dims)
                                                                    .astype("float32")]} for i in range(passages)]
        out.append(json.dumps([{"text": text, "stems": text[:34000], "chunks": chunks}]).encode())
    return out


def ms_a_hit(replies: list[bytes], parse) -> float:
    started = time.perf_counter()
    for reply in replies:
        parse(reply)
    return (time.perf_counter() - started) * 1000 / len(replies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hits", type=int, default=50)
    parser.add_argument("--passages", type=int, default=48)
    args = parser.parse_args()
    replies = documents(args.hits, args.passages)
    assert all(json.loads(r) == _json_value(r) for r in replies[:3]), "the two parsers disagree"
    runs: dict[str, list[float]] = {"json": [], "vsearch": []}
    for _ in range(args.rounds):
        runs["json"].append(ms_a_hit(replies, json.loads))
        runs["vsearch"].append(ms_a_hit(replies, _json_value))
    stdlib, ours = statistics.median(runs["json"]), statistics.median(runs["vsearch"])
    size = statistics.median(len(r) for r in replies) / 1024
    print(f"{args.hits} hits of {size:.0f} KiB ({args.passages} passages); median of {args.rounds}\n")
    print("| parser | ms a hit |\n| --- | --- |")
    print(f"| json (stdlib) | {stdlib:.2f} |\n| vsearch (orjson) | {ours:.2f} |")
    print(f"\nratio: {stdlib / ours:.1f}x faster")


if __name__ == "__main__":
    main()
