"""tests/unit: no Redis server and no model; each test runs in milliseconds (`pytest tests/unit`).

A unit test that reaches for the embedded server fails instead of quietly starting one.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from vsearch import server

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test tried to start or reach the embedded Redis server: put it in tests/e2e")

    for name in ("ensure_running", "client", "start"):
        if hasattr(server, name):
            monkeypatch.setattr(server, name, refuse)
