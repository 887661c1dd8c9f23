"""Part `longdocs`: runs bench/qmsum.py (QMSum, 232 meeting transcripts of ~9,000 words, 1,534 queries) through
the CLI in every mode, and keeps its figures: BM25, vector and hybrid over one vector a meeting (cut at the model's
256 tokens) against vector and hybrid over passages; the share of queries whose best passage overlaps the gold
answer span; load time, memory per document and query latency of both indexes.

Full: every query (the passage index embeds ~15,000 passages: ~15 min on 2 cores). --quick: a seeded sample of 200
queries, the same load. VSB_QMSUM_HOME=DIR reuses (and keeps) a home that holds both indexes already, to measure
the queries again without the load; its load time is then the earlier run's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from report_parts.common import ROOT, save, say

MODES = "text,vector,hybrid,vector-passages,hybrid-passages"


def run(quick: bool) -> Path:
    command = ["bench/qmsum.py", "--modes", MODES, *(["--limit", "200"] if quick else [])]
    home = os.environ.get("VSB_QMSUM_HOME")
    with tempfile.TemporaryDirectory(prefix="vsb-qmsum-out-") as tmp:
        out = Path(tmp) / "qmsum.json"
        args = [*command, "--out", str(out), *(["--home", home] if home else [])]
        say(f"longdocs: {' '.join(args)}")
        done = subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench/qmsum.py failed ({done.returncode}):\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    for index in result["indexes"].values():
        index.pop("info", None)  # the whole `vsearch info`: the memory figures are kept beside it
    return save("longdocs", {"quick": quick, "command": " ".join(command), **result})
