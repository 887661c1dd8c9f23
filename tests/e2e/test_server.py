"""The embedded Redis Stack: start on demand, status, stop, data kept across stops and crashes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT
from vsearch import server


@pytest.fixture
def own_home(monkeypatch):
    """A second, private server home, so stopping and killing it leaves the session server alone."""
    home = Path(tempfile.mkdtemp(prefix="vs-"))
    monkeypatch.setenv("VSEARCH_HOME", str(home))
    yield home
    server.stop(home)
    shutil.rmtree(home, ignore_errors=True)


def vsearch(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VSEARCH_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "vsearch", *args], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_start_status_stop(cli, own_home) -> None:
    stopped = cli("server", "status", ok=False)
    assert stopped.exit_code == 3 and stopped.stdout.startswith("stopped")
    started = cli("server", "start")
    assert f"unix://{own_home}/redis/redis.sock" in started.stderr
    status = cli("server", "status").stdout
    assert "running pid" in status and "Redis 7.4.1" in status and "search 21005" in status and "ReJSON" in status
    assert f"password file {own_home}/redis/password" in status
    assert (own_home / "redis" / "redis.log").exists()
    assert "embedded server stopped" in cli("server", "stop").stderr
    assert cli("server", "status", ok=False).exit_code == 3
    assert "was not running" in cli("server", "stop").stderr


def test_commands_start_the_server_on_demand_and_data_survives_a_stop(cli, own_home) -> None:
    cli("create-index", "kept", "--dim", "3", "--algorithm", "flat")
    cli("query", "kept", "--vector", "[1, 0, 0]")  # works without an explicit start
    cli("server", "stop")
    described = cli("info", "kept").stdout  # starts it again; the AOF brings the index back
    assert '"name": "kept"' in described


def test_a_killed_server_comes_back_with_its_data(own_home) -> None:
    result = vsearch("create-index", "survivor", "--algorithm", "flat", "--tag", "kind", home=own_home)
    assert result.returncode == 0, result.stderr
    load = subprocess.run(
        [sys.executable, "-m", "vsearch", "load", "survivor", "-", "--text-field", "t"],
        input='{"id": "a", "t": "a red shoe", "kind": "k"}\n{"id": "b", "t": "a blue bag", "kind": "k"}\n',
        capture_output=True, text=True, env={**os.environ, "VSEARCH_HOME": str(own_home)}, cwd=ROOT,
    )
    assert load.returncode == 0, load.stderr
    pid = int((own_home / "redis" / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # no shutdown, no final save: only the append-only file is left
    time.sleep(0.2)
    result = vsearch("info", "survivor", home=own_home)
    assert result.returncode == 0, result.stderr
    assert '"documents": 2' in result.stdout
    assert int((own_home / "redis" / "redis.pid").read_text()) != pid


def test_two_commands_starting_together_share_one_server(own_home) -> None:
    env = {**os.environ, "VSEARCH_HOME": str(own_home)}
    procs = [subprocess.Popen([sys.executable, "-m", "vsearch", "server", "start"], env=env, cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    state = server.status(own_home)
    assert state.running
    socket = f"{own_home}/redis/redis.sock".encode()
    servers = [p for p in Path("/proc").glob("[0-9]*") if socket in _cmdline(p)]
    assert len(servers) == 1


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:  # the process ended while we looked
        return b""


def test_socket_path_too_long(cli, monkeypatch, tmp_path) -> None:
    deep = tmp_path / ("x" * 120)
    monkeypatch.setenv("VSEARCH_HOME", str(deep))
    result = cli("server", "start", ok=False)
    assert result.exit_code == 1 and "too long for a unix socket" in result.stderr


def test_port_option_listens_on_loopback_and_cannot_change_a_running_server(cli, own_home) -> None:
    import socket as sockets

    import redis

    with sockets.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert f"127.0.0.1:{port}" in cli("server", "start", "--port", port).stderr
    assert redis.Redis(host="127.0.0.1", port=port, password=server.password(own_home)).ping()
    assert f"127.0.0.1:{port}" in cli("server", "status").stdout
    other = cli("server", "start", "--port", port + 1, ok=False)
    assert other.exit_code == 1 and f"already runs on port {port}" in other.stderr
    assert cli("server", "start", "--port", port).exit_code == 0


def test_a_taken_port_fails_fast_with_the_reason(cli, own_home) -> None:
    import socket as sockets

    with sockets.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        started = time.monotonic()
        result = cli("server", "start", "--port", taken.getsockname()[1], ok=False)
    assert result.exit_code == 1
    assert "Failed listening on port" in result.stderr and "redis.log" in result.stderr
    assert time.monotonic() - started < 10
