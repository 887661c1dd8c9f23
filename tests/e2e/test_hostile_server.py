"""What a hostile local user or a broken disk can do to the embedded server, and what vsearch does about it.

- A password file that is not a file (a folder, say) or not text is one error line that says how to recover.
- A damaged ONNX export (truncated, altered, a file missing) is found before it is loaded and made again, with one
  warning line; if it cannot be, text queries fall back to sentence-transformers (tests also in test_onnx_text.py).
- `vsearch models prepare` keeps the data directory private: its exports are the owner's only (0700/0600).
"""

from __future__ import annotations

import json
import os
import shutil
import socket as sockets
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from tests.e2e.conftest import ROOT, one_error_line
from vsearch import server


@pytest.fixture
def own_home(monkeypatch):
    """A private server home, so stopping and breaking it leaves the session server alone."""
    home = Path(tempfile.mkdtemp(prefix="vs-"))
    monkeypatch.setenv("VSEARCH_HOME", str(home))
    yield home
    server.stop(home, say=lambda message: None)
    shutil.rmtree(home, ignore_errors=True)


def vsearch(*args: str, home: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "VSEARCH_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([*(prefix or []), sys.executable, "-m", "vsearch", *args], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)


def servers_of(home: Path) -> list[int]:
    """redis-server processes whose working directory is this home's data folder, counted in /proc."""
    data = str((home / "redis" / "data").resolve())
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(process / "cwd") == data and b"redis-server" in (process / "cmdline").read_bytes():
                found.append(int(process.name))
        except OSError:
            continue
    return found


def free_port() -> int:
    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def raw_command(port: int, command: bytes) -> bytes:
    """What any local user's client gets from the TCP port, without vsearch's help."""
    with sockets.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(command)
        return conn.recv(200)


# ---------------------------------------------------------------------------------------------------
# 1. A password on every connection, out of the process list and out of every output


def test_the_tcp_port_asks_every_client_for_the_password(cli, own_home) -> None:
    port = free_port()
    started = cli("server", "start", "--port", port)
    assert raw_command(port, b"SET stolen 1\r\n").startswith(b"-NOAUTH")
    assert raw_command(port, b"KEYS *\r\n").startswith(b"-NOAUTH")
    secret_file = own_home / "redis" / "password"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    assert redis.Redis(host="127.0.0.1", port=port, password=secret).ping()
    with pytest.raises(redis.AuthenticationError):  # the unix socket asks too
        redis.Redis(unix_socket_path=str(own_home / "redis" / "redis.sock"), protocol=2).set("stolen", 1)
    status = cli("server", "status")
    assert str(secret_file) in status.stdout and str(secret_file) in started.stderr
    (pid,) = servers_of(own_home)
    assert secret.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    outputs = started.output + status.output + cli("server", "stop").output
    assert secret not in outputs
    assert secret not in (own_home / "redis" / "redis.log").read_text()


def test_a_server_from_an_older_vsearch_without_a_password_is_restarted_with_one(own_home) -> None:
    """An older vsearch started the server with no password: the next command restarts it, data kept."""
    data = own_home / "redis" / "data"
    data.mkdir(parents=True)
    sock = own_home / "redis" / "redis.sock"
    args = [str(server.server_binary()), "--port", "0", "--unixsocket", str(sock), "--dir", str(data),
            "--appendonly", "yes", "--save", "", "--daemonize", "yes",
            "--pidfile", str(own_home / "redis" / "redis.pid"), "--logfile", str(own_home / "redis" / "redis.log")]
    for module in server.module_paths():
        args += ["--loadmodule", str(module)]
    subprocess.run(args, env=server._server_env(own_home), check=True, capture_output=True)
    old = redis.Redis(unix_socket_path=str(sock), protocol=2)
    while not _answers(old):
        time.sleep(0.05)
    assert vsearch("create-index", "old", "--dim", "3", "--algorithm", "flat", "--redis-url", f"unix://{sock}",
                   home=own_home).returncode == 0

    result = vsearch("info", "old", home=own_home)
    assert result.returncode == 0, result.stderr
    assert '"name": "old"' in result.stdout
    assert "restarting the embedded server" in result.stderr
    assert len(servers_of(own_home)) == 1
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(unix_socket_path=str(sock), protocol=2).set("stolen", 1)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.mark.parametrize("damage", ["folder", "fifo", "binary"])
def test_a_password_file_that_is_not_a_text_file_is_one_error_line(own_home, damage) -> None:
    secret = own_home / "redis" / "password"
    secret.parent.mkdir(parents=True, mode=0o700)
    if damage == "folder":
        secret.mkdir(mode=0o700)
    elif damage == "fifo":  # opening it for reading would wait for a writer forever
        os.mkfifo(secret, 0o600)
    else:
        secret.write_bytes(b"\xff\xfe\x00 not text")
        secret.chmod(0o600)
    result = vsearch("list", home=own_home)  # connecting reads the password
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "password file" in result.stderr and "delete it" in result.stderr


def test_two_commands_racing_for_a_new_password_agree_on_one(own_home) -> None:
    code = f"from pathlib import Path; from vsearch import server; print(server.password(Path({str(own_home)!r})))"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    seen = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert seen == {(own_home / "redis" / "password").read_text().strip()}
    assert not [p for p in (own_home / "redis").iterdir() if p.name.startswith(".password-")]


# ---------------------------------------------------------------------------------------------------
# 2. Everything under the home is its owner's only


def assert_private(home: Path) -> None:
    loose = [f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}" for p in [home, *home.rglob("*")]
             if not p.is_symlink() and p.lstat().st_mode & 0o077]
    assert not loose, loose


def test_everything_under_home_is_private_after_start_and_writes(own_home) -> None:
    # What an older vsearch left behind: a readable data folder and log.
    (own_home / "redis" / "data").mkdir(parents=True, mode=0o755)
    (own_home / "redis" / "redis.log").write_text("an old log\n")
    for path in [own_home, own_home / "redis", own_home / "redis" / "data"]:
        path.chmod(0o755)
    (own_home / "redis" / "redis.log").chmod(0o644)

    assert vsearch("create-index", "priv", "--dim", "3", "--algorithm", "flat", "--storage", "hash", home=own_home).returncode == 0
    client = server.client(own_home, decode_responses=True)
    client.hset("priv:a", "text_vector", np.ones(3, dtype=np.float32).tobytes())
    client.bgrewriteaof()  # new AOF files, created by the server itself
    while client.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.05)
    assert_private(own_home)


# ---------------------------------------------------------------------------------------------------
# 3. One error line, never a traceback


def test_a_home_that_is_a_file(cli, monkeypatch, tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    for home in (tmp_path / "file", tmp_path / "file" / "below"):
        monkeypatch.setenv("VSEARCH_HOME", str(home))
        result = cli("server", "start", ok=False)
        assert result.exit_code == 1
        line = one_error_line(result)
        assert f"cannot use {home} as vsearch's data directory" in line and "not a folder" in line


def read_only(folder: Path) -> list[str]:
    """A command prefix under which `folder` cannot be written, even by root (whom modes do not stop)."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        return []
    prefix = ["unshare", "--mount", "sh", "-c", f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"', "sh"]
    if shutil.which("unshare") is None or subprocess.run([*prefix, "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("running as root without a private mount namespace: cannot make a folder read-only")
    return prefix


@pytest.mark.parametrize("exists", [True, False], ids=["home-read-only", "parent-read-only"])
def test_a_home_that_cannot_be_written(tmp_path, exists) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    home = folder if exists else folder / "vsearch"
    result = vsearch("info", "x", home=home, prefix=read_only(folder))
    assert result.returncode == 1
    assert result.stderr.startswith(f"vsearch: error: cannot use {home} as vsearch's data directory")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_disk_that_refuses_writes_gives_one_line_and_stop_still_works(cli, own_home) -> None:
    """MISCONF: the AOF cannot be written (here: the next AOF file is /dev/full, whose writes fail ENOSPC)."""
    cli("create-index", "full", "--dim", "3", "--algorithm", "flat")
    aof = own_home / "redis" / "data" / "appendonlydir"
    (aof / "appendonly.aof.2.incr.aof").symlink_to("/dev/full")
    client = server.client(own_home, decode_responses=True)
    client.bgrewriteaof()  # opens the new incr file: /dev/full
    while client.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.05)
    client.set("one-write", "fails to reach the disk")
    while client.info("persistence")["aof_last_write_status"] == "ok":  # the write fails within a second
        time.sleep(0.1)

    result = cli("create-index", "more", "--dim", "3", "--algorithm", "flat", ok=False)
    assert result.exit_code == 1 and "MISCONF" in one_error_line(result)
    assert cli("server", "status").stdout.startswith("running")
    stopped = cli("server", "stop")
    assert "embedded server stopped" in stopped.stderr and "Traceback" not in stopped.output
    assert "disk refused its last writes (MISCONF)" in stopped.stderr
    assert servers_of(own_home) == []


def test_a_rediss_url_with_a_bad_tls_option(cli) -> None:
    result = cli("info", "x", "--redis-url", "rediss://localhost:1?ssl_cert_reqs=bogus", ok=False)
    assert result.exit_code == 1
    assert "bogus" in one_error_line(result)


# ---------------------------------------------------------------------------------------------------
# 5. One data directory, one server


def test_a_deleted_socket_does_not_start_a_second_server(cli, own_home) -> None:
    cli("create-index", "kept", "--dim", "3", "--algorithm", "flat")
    (before,) = servers_of(own_home)
    (own_home / "redis" / "redis.sock").unlink()
    unreachable = cli("server", "status", ok=False)
    assert unreachable.exit_code == 1 and f"(pid {before}) serves" in one_error_line(unreachable)
    result = cli("info", "kept")
    assert '"name": "kept"' in result.stdout  # the data survived the restart
    assert len(servers_of(own_home)) == 1 and servers_of(own_home) != [before]
    assert cli("server", "status").stdout.startswith("running")
    assert "embedded server stopped" in cli("server", "stop").stderr
    assert servers_of(own_home) == []


def test_the_data_lock_refuses_a_second_server(own_home) -> None:
    server.ensure_running(own_home)
    paths = server.ServerPaths(own_home)
    with pytest.raises(server.ServerError, match="still serves"):
        server._lock_data(paths)
    assert stat.S_IMODE(paths.data_lock.stat().st_mode) == 0o600


# ---------------------------------------------------------------------------------------------------
# 6. A long AOF replay is waited on, and said


def test_a_long_load_is_waited_on_and_reported(own_home) -> None:
    """HNSW insertion on replay makes the AOF load take a while; Redis answers -LOADING meanwhile."""
    server.ensure_running(own_home)
    client = server.client(own_home, protocol=2)
    client.execute_command("FT.CREATE", "slow", "ON", "HASH", "PREFIX", 1, "slow:", "SCHEMA", "v", "VECTOR", "HNSW",
                           8, "TYPE", "FLOAT32", "DIM", 64, "DISTANCE_METRIC", "L2", "EF_CONSTRUCTION", 400)
    vectors = np.random.default_rng(0).random((8000, 64), dtype=np.float32)
    pipe = client.pipeline(transaction=False)
    for i, vector in enumerate(vectors):  # one HSET a document: Redis serves clients every 1024 while loading
        pipe.hset(f"slow:{i}", "v", vector.tobytes())
    pipe.execute()
    client.close()
    server.stop(own_home)

    result = vsearch("info", "slow", home=own_home)
    assert result.returncode == 0, result.stderr
    assert '"documents": 8000' in result.stdout
    assert "vsearch: the embedded server is loading its data (" in result.stderr


# ---------------------------------------------------------------------------------------------------
# The ONNX export of the text model, under vsearch's data directory


def test_a_truncated_onnx_export_is_made_again_and_the_query_answers(cli, vsearch_home, index_name, tmp_path) -> None:
    from vsearch.models.onnx import export_path, text_encoder

    rows = [{"id": "a", "t": "red summer dress"}, {"id": "b", "t": "black leather watch"}]
    (tmp_path / "a.jsonl").write_text("".join(f'{{"id": "{r["id"]}", "t": "{r["t"]}"}}\n' for r in rows))
    cli("create-index", index_name, "--algorithm", "flat")
    cli("load", index_name, tmp_path / "a.jsonl", "--text-field", "t")
    cli("models", "prepare")
    model = export_path(vsearch_home, "all-MiniLM-L6-v2") / "model.onnx"
    model.write_bytes(model.read_bytes()[:1_000_000])  # what a full disk or a killed copy leaves
    text_encoder.cache_clear()  # as in a new process
    result = cli("query", index_name, "black leather watch", "-k", "1", "--no-cache")
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("vsearch: warning: the ONNX export in ") and "model.onnx has 1,000,000 bytes" in warning
    hit = [json.loads(line) for line in result.stdout.splitlines()][0]
    assert hit["id"] == "b" and hit["score"] > 0.9999
    assert cli("models", "prepare").stderr.startswith("fast query model for")  # whole again: nothing to warn about


def test_models_prepare_on_a_fresh_home_keeps_it_private(tmp_path) -> None:
    from tests.e2e.test_onnx_text import tiny_bert

    model = tiny_bert(tmp_path / "model", "mean", normalize=True)
    home = tmp_path / "fresh" / "vsearch"
    result = vsearch("models", "prepare", "--model", str(model), home=home)
    assert result.returncode == 0, result.stderr
    assert (home / "models").is_dir()
    assert_private(home)
