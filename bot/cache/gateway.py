"""The fail-open gateway every Redis call of the bot goes through.

Redis is never allowed to fail a request: an error is counted, turns the call into "no
answer" (None), and opens a short cool-down so a dead Redis costs nothing per update; the pool
reconnects by itself when Redis returns. Writes that could not reach Redis are remembered and
redone by the first call after it returns, before anything is read.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError

from bot.cache.keys import Family, Key

log = logging.getLogger(__name__)

T = TypeVar("T")
RedisHealth = Literal["healthy", "unavailable", "disabled"]

REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

# A version counter starts at a random value and moves on by a random step, so a counter
# recreated after eviction or deletion cannot come back to a value an old entry was stamped with.
_VERSION_START = 2**62
_VERSION_STEP = 2**32


def fresh_version() -> int:
    return secrets.randbelow(_VERSION_START) + 1


def version_step() -> int:
    return secrets.randbelow(_VERSION_STEP) + 1


class CacheCounters:
    """In-process hit/miss counts per key family, and Redis calls that failed."""

    def __init__(self) -> None:
        self.hits: Counter[Family] = Counter()
        self.misses: Counter[Family] = Counter()
        self.errors = 0


@dataclass(slots=True)
class Repairs:
    """Writes that must reach Redis even if it is away now: redone as soon as it returns.

    Without this, a value written over (or a version bumped) while Redis was unreachable would
    leave the old entry valid in Redis for the rest of its TTL once Redis came back with its data.
    """

    unlink: set[str] = field(default_factory=set)
    bump: dict[str, int] = field(default_factory=dict)  # version counter -> its TTL
    release: dict[str, bytes] = field(default_factory=dict)  # lock -> our token

    def __bool__(self) -> bool:
        return bool(self.unlink or self.bump or self.release)

    def merge(self, other: Repairs) -> None:
        self.unlink |= other.unlink
        self.bump.update(other.bump)
        self.release.update(other.release)


class Gateway:
    """One pooled `redis.asyncio` client (or none when the cache is disabled), failing open."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        prefix: str = "",
        counters: CacheCounters | None = None,
        cooldown: float = 1.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.counters = counters or CacheCounters()
        self._cooldown = cooldown
        self._down_until = 0.0
        self._pending = Repairs()
        self._queued: list[tuple[Callable[[Pipeline], object], asyncio.Future[list[Any] | None]]]
        self._queued = []
        self._flushing: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.redis is not None

    @property
    def available(self) -> bool:
        """Enabled and not in a cool-down after an error."""
        return self.redis is not None and time.monotonic() >= self._down_until

    def full(self, key: Key[Any] | str) -> str:
        """The name in Redis: the configured prefix and the key's name."""
        return self.prefix + (key.name if isinstance(key, Key) else key)

    async def run(self, call: Callable[[Redis], Awaitable[T]]) -> T | None:
        """One raw Redis operation under the fail-open rules; None if it could not run."""
        if not await self._ready():
            return None
        return await self._guard(call(self._client()))

    async def batch(self, build: Callable[[Pipeline], object]) -> list[Any] | None:
        """The commands `build` queues, sent on one non-transactional pipeline in one round trip.

        Their results in order, or None when Redis is disabled, cooling down or failed.
        Batches asked for in the same turn of the event loop go out together, in one pipeline
        (automatic pipelining): a page of a hundred updates costs Redis and the bot one round
        trip instead of a hundred, each caller still getting only its own results.
        """
        if not await self._ready():
            return None
        future: asyncio.Future[list[Any] | None] = asyncio.get_running_loop().create_future()
        self._queued.append((build, future))
        if len(self._queued) == 1:
            self._flushing.add(task := asyncio.create_task(self._flush()))
            task.add_done_callback(self._flushing.discard)
        return await future

    async def _flush(self) -> None:
        queued, self._queued = self._queued, []
        pipe = self._client().pipeline(transaction=False)
        spans: list[tuple[int, int]] = []
        for build, _ in queued:
            start = len(pipe.command_stack)
            build(pipe)
            spans.append((start, len(pipe.command_stack)))
        results: list[Any] | None = None
        try:
            results = await self._guard(pipe.execute(raise_on_error=False))
        finally:
            for (start, end), (_, future) in zip(spans, queued, strict=True):
                if not future.done():
                    future.set_result(self._own(results, start, end))

    def _own(self, results: list[Any] | None, start: int, end: int) -> list[Any] | None:
        """One caller's share of a shared pipeline; None if one of its commands failed."""
        if results is None:
            return None
        part = results[start:end]
        failed = next((r for r in part if isinstance(r, Exception)), None)
        if failed is not None:
            self.counters.errors += 1
            log.warning("a redis command failed: %s", failed)
            return None
        return part

    async def repair(self, repairs: Repairs) -> None:
        """Apply these writes now, or as soon as Redis is back."""
        if self.redis is None or not repairs:
            return
        if not (await self._ready() and await self._apply(repairs)):
            self._pending.merge(repairs)

    async def health(self) -> RedisHealth:
        """Ping Redis directly, ignoring the cool-down, and end it when Redis answers."""
        if self.redis is None:
            return "disabled"
        try:
            await self.redis.ping()
        except REDIS_FAILURES:
            return "unavailable"
        self._down_until = 0.0
        await self._ready()
        return "healthy"

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    async def _ready(self) -> bool:
        """Usable, with the writes that failed while Redis was away redone first."""
        if not self.available:
            return False
        if not self._pending:
            return True
        pending, self._pending = self._pending, Repairs()
        if await self._apply(pending):
            return True
        self._pending.merge(pending)
        return False

    async def _apply(self, repairs: Repairs) -> bool:
        pipe = self._client().pipeline(transaction=False)
        for name, ttl in repairs.bump.items():
            pipe.incrby(name, version_step())
            pipe.expire(name, ttl)
        if repairs.unlink:
            pipe.unlink(*repairs.unlink)
        for name, token in repairs.release.items():
            pipe.eval(Lock.LUA_RELEASE_SCRIPT, 1, name, token)
        return await self._guard(pipe.execute()) is not None

    def _client(self) -> Redis:
        assert self.redis is not None
        return self.redis

    async def _guard(self, call: Awaitable[T]) -> T | None:
        """Await one Redis call; on failure count it, start the cool-down and return None."""
        try:
            return await call
        except REDIS_FAILURES as exc:
            self.counters.errors += 1
            if time.monotonic() >= self._down_until:
                log.warning("redis unavailable, serving from the database: %s", exc)
            self._down_until = time.monotonic() + self._cooldown
            return None
