#!/usr/bin/env bash
# vsearch's main job on sample_data/: index 300 products (text and images) in the embedded Redis Stack,
# then a text query, an image query and a filtered query; a second load shows an unchanged reload.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 PATH="$PWD/.venv/bin:$PATH"
unset REDIS_URL VSEARCH_REDIS_URL  # the demo runs on the embedded server
INDEX=vsearch-demo
FIELDS=productDisplayName,articleType,gender,baseColour

run() { printf '\n$ %s\n' "$*" >&2; "$@"; }

vsearch drop-index "$INDEX" --delete-documents 2>/dev/null || true
run vsearch create-index "$INDEX" --algorithm hnsw --metric cosine \
  --tag gender --tag articleType --tag baseColour --text productDisplayName --numeric year --image
run vsearch load "$INDEX" sample_data/products.csv --id-field id --text-field productDisplayName --image-field image
run vsearch query "$INDEX" "black leather watch for men" -k 5 --return "$FIELDS" --format table
run vsearch query "$INDEX" --image sample_data/images/1653.jpg -k 5 --return "$FIELDS" --format table
run vsearch query "$INDEX" "shoes for running" -k 5 --where gender=Women --where "year>=2012" --return "$FIELDS" --format table
run vsearch load "$INDEX" sample_data/products.csv --id-field id --text-field productDisplayName --image-field image

# Long documents: four meeting transcripts (~6,000 words at most), split into passages; each result says where it matched.
vsearch drop-index vsearch-meetings --delete-documents 2>/dev/null || true
run vsearch create-index vsearch-meetings --text text
run vsearch load vsearch-meetings sample_data/meetings/
run vsearch query vsearch-meetings "why a high unit price matters for the remote control" -k 2 --return title --format table
