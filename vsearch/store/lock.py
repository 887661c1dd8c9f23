"""One writer per index: a lock held in Redis with a TTL that its holder renews and only its token releases.

A crashed holder stops renewing, so the lock expires within TTL seconds and the next run goes ahead.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from vsearch.errors import LockHeld
from vsearch.store.connection import translate_errors
from vsearch.store.keys import lock_key

TTL_MS = 10_000  # a killed holder blocks the next run for at most this long
POLL_S = 0.5

# Extend or delete the lock only while it still holds our token: never another holder's lock.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"


@contextmanager
def index_lock(client: redis.Redis, name: str, wait_s: float = 0.0, ttl_ms: int = TTL_MS,
               waiting: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold the write lock of index NAME for the duration of the block, waiting up to `wait_s` for it."""
    key, token = lock_key(name), secrets.token_hex(16)
    deadline = time.monotonic() + wait_s
    told = False
    with translate_errors(f"cannot lock index '{name}'"):
        while not client.set(key, token, nx=True, px=ttl_ms):
            if time.monotonic() >= deadline:
                raise LockHeld(name, wait_s)
            if not told:
                waiting()
                told = True
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
    stop = threading.Event()
    renewer = threading.Thread(target=_renew, args=(client, key, token, ttl_ms, stop), daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        try:
            client.eval(_RELEASE, 1, key, token)
        except redis.RedisError:
            pass  # the server is gone: the lock expires by itself


def _renew(client: redis.Redis, key: str, token: str, ttl_ms: int, stop: threading.Event) -> None:
    while not stop.wait(ttl_ms / 3000):
        try:
            client.eval(_RENEW, 1, key, token)
        except redis.RedisError:
            pass  # a lost connection: the main thread finds out and stops; the lock then expires
