"""Shared by tests/unit and tests/e2e: no test reads the user's Redis or model settings, and none downloads."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
for variable in ("REDIS_URL", "VSEARCH_REDIS_URL", "VSEARCH_MODEL", "VSEARCH_IMAGE_MODEL", "VSEARCH_DEVICE"):
    os.environ.pop(variable, None)
