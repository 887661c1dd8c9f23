"""Rebuild sample_data/ from the project's shared evaluation data (developer tool, not shipped).

The sample is 300 products (15 of each of the 20 article types) from the Myntra fashion catalogue with
their photos, 20 more products without photos for the stdin example, and a short sentences file.
Usage: python scripts/make_sample_data.py ../shared/data/fashion
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

PER_TYPE = 15
COLUMNS = ["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "season",
           "year", "usage", "productDisplayName"]


def main(fashion: Path, out: Path) -> None:
    with open(fashion / "labels.csv", newline="", encoding="utf-8") as handle:
        labelled = sorted(csv.DictReader(handle), key=lambda row: int(row["id"]))
    by_type: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in labelled:
        by_type[row["articleType"]].append(row)
    chosen = sorted((row for rows in by_type.values() for row in rows[:PER_TYPE]), key=lambda r: int(r["id"]))

    (out / "images").mkdir(parents=True, exist_ok=True)
    with open(out / "products.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "image"])
        writer.writeheader()
        for row in chosen:
            shutil.copyfile(fashion / row["filename"], out / "images" / f"{row['id']}.jpg")
            writer.writerow({**{c: row[c] for c in COLUMNS}, "image": f"images/{row['id']}.jpg"})

    # Products without photos, for the "pipe JSONL into load" example.
    taken = {row["id"] for row in labelled}
    with open(fashion / "styles.csv", newline="", encoding="utf-8") as handle:
        extra = [row for row in csv.DictReader(handle) if row["id"] not in taken][:20]
    with open(out / "more_products.jsonl", "w", encoding="utf-8") as handle:
        for row in extra:
            record = {c: row[c] for c in COLUMNS}
            record["year"] = int(float(record["year"])) if record["year"] else None
            handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent.parent / "sample_data")
