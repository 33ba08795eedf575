"""Webhook mode: an update's claim is a lease, so a replica that dies loses nothing.

The lease is taken when handling starts (in the update's one Redis round trip), renewed
while it runs, and turned into a 24 h "done" mark when it ends; on failure it is released.
Telegram redelivers an update it got no 2xx for: a done one is answered 200 at once, one
whose lease is alive gets a retryable answer (its owner may be dead), and once a dead
owner's lease lapses the redelivery takes it and the update is handled.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError

from bot.cache import Cache
from bot.cache.keys import UPDATE_DONE_TTL

LEASE_SECONDS = 10.0
DONE = b"done"

LeaseState = Literal["pending", "held", "unguarded", "busy", "done"]


class UpdateLease:
    """One update's lease; `state` tells the webhook which status to answer."""

    def __init__(self, cache: Cache, name: str, seconds: float = LEASE_SECONDS) -> None:
        self.cache = cache
        self.name = name
        self.seconds = seconds
        self.token = secrets.token_hex(8).encode()
        self.state: LeaseState = "pending"

    @property
    def retry_after(self) -> int:
        return max(1, round(self.seconds))

    def take(self, pipe: Pipeline) -> int:
        """Queue the claim in the update's round trip; how many results it adds."""
        pipe.set(self.name, self.token, nx=True, px=int(self.seconds * 1000))
        pipe.get(self.name)
        return 2

    def accept(self, results: list[Any] | None) -> bool:
        """Read the claim's results (None: Redis is away); True if this replica handles it."""
        if results is None:
            self.state = "unguarded"
        elif results[1] == self.token:
            self.state = "held"
        elif results[1] == DONE:
            self.state = "done"
        else:
            self.state = "busy"
        return self.state in ("held", "unguarded")

    @asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """Renew the lease while the update runs; mark it done after, release it on failure."""
        if self.state != "held":
            yield
            return
        renewer = asyncio.create_task(self._renew())
        try:
            yield
        except BaseException:
            renewer.cancel()
            await self.cache.run(self._release)
            raise
        renewer.cancel()
        await self.cache.run(self._mark_done)

    def _lock(self, redis: Redis) -> Lock:
        lock = Lock(redis, self.name, timeout=self.seconds, thread_local=False)
        lock.local.token = self.token
        return lock

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            await self.cache.run(self._reacquire)

    async def _reacquire(self, redis: Redis) -> None:
        with suppress(LockNotOwnedError):
            await self._lock(redis).reacquire()

    async def _release(self, redis: Redis) -> None:
        with suppress(LockNotOwnedError):
            await self._lock(redis).release()

    async def _mark_done(self, redis: Redis) -> None:
        await redis.set(self.name, DONE, ex=UPDATE_DONE_TTL)
