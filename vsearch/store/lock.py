"""One writer per index: a lock held in Redis with a TTL that its holder renews and only its token releases.

A crashed holder stops renewing, so the lock expires within TTL seconds and the next run goes ahead. A holder
that finds its token gone (its lease lapsed, so another run may hold the lock now) must write nothing more:
`Lease.check` is called before every write and raises LockLost then.

The renewer thread has a connection of its own, with a socket timeout of a third of the TTL: a reply stuck on the
load's connections (a long transaction, a lost packet) cannot hold up a renewal past the lease. Each lease keeps the
longest time it went unrenewed, so a lost lock says whether it lapsed (nothing renewed it for longer than the TTL: a
process paused or starved of CPU) or was removed while renewed (a FLUSHALL, a restarted server without its data,
another tool).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from vsearch.errors import LockHeld, LockLost
from vsearch.store.connection import translate_errors
from vsearch.store.keys import lock_key

TTL_MS = 10_000  # a killed holder blocks the next run for at most this long
POLL_S = 0.5

# Extend or delete the lock only while it still holds our token: never another holder's lock.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"


class Lease:
    """The held lock. Tokens are random and a lapsed key never comes back, so finding our token in the key
    means no other run has held the lock since we took it."""

    def __init__(self, client: redis.Redis, name: str, key: str, token: str, ttl_ms: int) -> None:
        self.client, self.name, self.key, self.token, self.ttl_ms = client, name, key, token, ttl_ms
        self.taken = self.renewed = time.monotonic()
        self.longest_gap_s = 0.0  # the longest the lease went unrenewed, up to the last renewal (or the loss)
        self.lost = False
        self._lock = threading.Lock()  # the renewer thread and the run both renew

    def renew(self, client: redis.Redis | None = None) -> bool:
        """Extend the lease by a whole TTL (on `client`, else the run's); False once the token is gone."""
        if self.lost:
            return False
        asked = time.monotonic()
        held = bool((client or self.client).eval(_RENEW, 1, self.key, self.token, self.ttl_ms))
        with self._lock:
            # The lease counts from when the renewal was sent: Redis set the new TTL at most then.
            self.longest_gap_s = max(self.longest_gap_s, asked - self.renewed)
            if held:
                self.renewed = max(self.renewed, asked)
            else:
                self.lost = True
        return held

    def check(self) -> None:
        """Before a write: renew now (one round trip), and stop the run if the lock is no longer ours."""
        with translate_errors(f"cannot renew the lock of index '{self.name}'"):
            held = self.renew()
        if not held:
            raise LockLost(self.name, time.monotonic() - self.taken, self.longest_gap_s, self.ttl_ms / 1000)


@contextmanager
def index_lock(client: redis.Redis, name: str, wait_s: float = 0.0, ttl_ms: int = TTL_MS,
               waiting: Callable[[], None] = lambda: None) -> Iterator[Lease]:
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
    lease = Lease(client, name, key, token, ttl_ms)
    stop = threading.Event()
    own = _renewer_client(client, ttl_ms)
    renewer = threading.Thread(target=_keep_renewing, args=(lease, own, stop), daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join()
        own.close()
        try:
            client.eval(_RELEASE, 1, key, token)
        except redis.RedisError:
            pass  # the server is gone: the lock expires by itself


def _renewer_client(client: redis.Redis, ttl_ms: int) -> redis.Redis:
    """A client on the same server with its own connection pool, whose replies time out within a third of the TTL."""
    pool = client.connection_pool
    timeout = _renew_every_s(ttl_ms)
    kwargs = {**pool.connection_kwargs, "socket_timeout": timeout, "socket_connect_timeout": timeout}
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, max_connections=1,
                                                            **kwargs))


def _renew_every_s(ttl_ms: int) -> float:
    """A third of the lease: two renewals may fail (or time out) before it lapses."""
    return ttl_ms / 3000


def _keep_renewing(lease: Lease, client: redis.Redis, stop: threading.Event) -> None:
    """Renew three times a lease: a run busy embedding for longer than the TTL keeps its lock."""
    while not stop.wait(_renew_every_s(lease.ttl_ms)):
        try:
            if not lease.renew(client):
                return  # lapsed: the next write's check stops the run
        except redis.RedisError:
            pass  # a lost connection: the main thread retries; its next check renews or finds the lock lost
