"""The ids one `load` run has read, kept in Redis (not in the process) so memory stays constant on any input.

A hash `__vsearch:run:<random>:ids` maps each id to where it was read (`file:line`): duplicates within the run
are found by it, and `--prune` keeps every id it holds. It expires an hour after the last batch touched it, so a
killed run's list goes away by itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import redis

from vsearch.store.connection import translate_errors
from vsearch.store.keys import NAMESPACE

SEEN_TTL_S = 3600  # renewed by every batch


class RunIds:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.key = f"{NAMESPACE}run:{secrets.token_hex(8)}:ids"

    def where_read(self, ids: Sequence[str]) -> list[str | None]:
        """Where each id was read earlier in this run, None for an id not read yet."""
        if not ids:
            return []
        with translate_errors("cannot record the ids of this run"):
            found = self.client.hmget(self.key, list(ids))
        return [None if where is None else where.decode("utf-8", "replace") for where in found]

    def record(self, read: dict[str, str]) -> None:
        """Record ids as read (id -> where), and keep the list for another hour."""
        if not read:
            return
        with translate_errors("cannot record the ids of this run"):
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(self.key, mapping=read)
            pipe.expire(self.key, SEEN_TTL_S)
            pipe.execute()

    def were_read(self, ids: Sequence[str]) -> list[bool]:
        with translate_errors("cannot read the ids of this run"):
            return [found is not None for found in self.client.hmget(self.key, list(ids))] if ids else []

    def forget(self) -> None:
        try:
            self.client.unlink(self.key)
        except redis.RedisError:
            pass  # it expires by itself
