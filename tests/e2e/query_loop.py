"""A second process for the rebuild test: queries an index in a loop until a stop file appears, then prints
how many queries ran, failed, or came back empty, as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from vsearch import config, store
from vsearch.errors import VsearchError


def main(name: str, stop: Path) -> None:
    settings = config.resolve()
    client = store.connect(settings)
    vector = np.random.default_rng(0).random(384).astype(np.float32)
    queries = failed = empty = 0
    while not stop.exists():
        queries += 1
        try:
            spec = store.get_spec(client, name)
            if not store.search(client, spec, spec.vectors[0], vector, 3):
                empty += 1
        except VsearchError as exc:
            failed += 1
            print(exc, file=sys.stderr)
    print(json.dumps({"queries": queries, "failed": failed, "empty": empty}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
