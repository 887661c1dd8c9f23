#!/usr/bin/env bash
# Set everything up, then run the whole test suite against a real Redis Stack that the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
unset REDIS_URL VSEARCH_REDIS_URL
exec .venv/bin/python -m pytest "$@"
