"""Clients for the configured Redis (the embedded server by default), and driver errors as one line."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from vsearch.config import Settings, check_redis_url, has_userinfo, redact_url
from vsearch.errors import ConnectionLost, StoreError

try:
    from hiredis import pack_command as _pack_command
except ImportError:  # redis-py packs in Python then
    _pack_command = None


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured server (starting the embedded one if needed) that has RediSearch."""
    if settings.embedded:
        from vsearch import server

        socket = server.ensure_running(settings.home)
        client = server.client(settings.home, socket_connect_timeout=5, protocol=2)
        where = f"the embedded server ({socket})"
    else:
        url = settings.redis_url or ""
        where = redact_url(url)
        check_redis_url(url)
        from vsearch.server import client_identity

        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=5, protocol=2, **client_identity())
        except ValueError as exc:
            # urllib's messages quote the part they cannot parse, which may be the password ("'0000' does not
            # appear to be an IPv4 or IPv6 address" for a password "[0000]"): say what to fix without them.
            raise StoreError(f"invalid Redis URL {where}: {_parse_problem(url, exc)}") from exc
    try:
        client.execute_command("FT._LIST")
    except redis.AuthenticationError as exc:
        raise StoreError(f"Redis at {where} refused the credentials: {exc}") from exc
    except redis.ResponseError as exc:
        if "unknown command" in str(exc).lower():
            raise StoreError(f"Redis at {where} has no search module: use Redis Stack or Redis 8, "
                             "or leave --redis-url unset to use vsearch's embedded server") from exc
        raise StoreError(f"Redis at {where}: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise StoreError(f"cannot reach Redis at {where}: {reason(exc)}") from exc
    except redis.RedisError as exc:  # e.g. a rediss:// URL with a bad TLS option
        raise StoreError(f"cannot use Redis at {where}: {reason(exc)}") from exc
    return client


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Driver errors become one StoreError line that says what vsearch was doing."""
    try:
        yield
    except redis.ResponseError as exc:
        if str(exc).startswith("MISCONF"):  # it refuses writes once it could not save to disk
            raise StoreError(f"{what}: Redis cannot write its data to disk (is the disk full?): {reason(exc)}") from exc
        raise StoreError(f"{what}: Redis said: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ConnectionLost(f"{what}: lost the connection to Redis ({reason(exc)})") from exc


def transaction(client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Send `commands` as one MULTI/EXEC on a connection of the client's pool, packed as redis-py's pipeline packs
    them, and return EXEC's replies, a refused command's as its exception (as `execute(raise_on_error=False)` gives
    them). It skips the pipeline's bookkeeping for each command and reply: half of the client's time in writing a batch
    of given vectors (bench/report.py --part loading). A command refused while queued (out of memory, a disk error)
    aborts the whole transaction: its error is raised. Driver errors are the caller's to translate."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command(packed_transaction(connection, commands))
        refused: redis.ResponseError | None = None
        for _ in range(len(commands) + 1):  # MULTI's OK, then each command's QUEUED
            try:
                connection.read_response()
            except redis.ResponseError as exc:
                refused = refused or exc
        try:
            replies = connection.read_response()
        except redis.ExecAbortError:
            if refused is None:
                raise
            raise refused from None
        if not isinstance(replies, list) or len(replies) != len(commands):
            raise redis.ResponseError(f"EXEC answered {replies!r:.100} for {len(commands)} commands")
        return replies
    except BaseException:
        connection.disconnect()  # whatever was left unread must not reach the next user of the connection
        raise
    finally:
        pool.release(connection)


def packed_transaction(connection: redis.Connection, commands: Sequence[tuple[Any, ...]]) -> list[bytes]:
    """MULTI, the commands and EXEC in the protocol's bytes, as `connection.pack_commands` packs them: with hiredis
    (installed with redis[hiredis]) one C call a command, the very packer redis-py calls, without its Python around
    each (half the time of packing a batch)."""
    calls = [("MULTI",), *commands, ("EXEC",)]
    if _pack_command is None:
        return connection.pack_commands(calls)
    return [b"".join(map(_pack_command, calls))]


def reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def decode(value: object) -> object:
    """A RESP2 reply with bytes turned into text, lists recursively."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def after(reply: list[object], key: str) -> object:
    """The value after `key` in a RESP2 reply list, where flags without values can break plain pairing."""
    for i, item in enumerate(reply[:-1]):
        if isinstance(item, str) and item.lower() == key:
            return reply[i + 1]
    raise StoreError(f"unexpected reply from Redis: no {key}")


def _parse_problem(url: str, exc: ValueError) -> str:
    """What redis-py could not parse, in words that cannot hold the URL's credentials."""
    if not has_userinfo(url):
        return str(exc)  # no credentials to give away
    return ("it does not parse as scheme://user:password@host:port/db; percent-encode any of "
            "'@' ':' '/' '?' '#' '[' ']' '%' in the user name or password")
