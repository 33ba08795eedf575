"""What operators do to the cache: flush families, see hit rates across replicas.

Flushing walks the bot's own key families with SCAN and deletes with UNLINK in batches: never
FLUSHDB or KEYS, because the same Redis may hold other data (update marks, rate limits,
budgets, another application) that must survive.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bot.cache.gateway import CacheCounters
from bot.cache.keys import KEY_ROOTS, SHARED_COUNTERS, SHARED_COUNTERS_TTL, Family
from bot.cache.store import Cache

log = logging.getLogger(__name__)

SCAN_BATCH = 500
SYNC_SECONDS = 5.0
_GLOB = re.compile(r"([*?\[\]\\])")


def root_pattern(cache: Cache, root: str) -> str:
    """The SCAN MATCH pattern of every key under `root`, with the prefix matched literally.

    REDIS_KEY_PREFIX is an operator's free text: unescaped, `app[1]:` would match `app1:` (and
    not itself), `a*:` every application's keys starting with `a`.
    """
    return _GLOB.sub(r"\\\1", cache.prefix) + f"{root}:*"


async def flush(cache: Cache, roots: tuple[str, ...] = KEY_ROOTS) -> int | None:
    """Delete every key under the given roots; the number deleted, or None if Redis failed."""

    async def sweep(redis: Redis) -> int:
        deleted = 0
        for root in roots:
            batch: list[bytes] = []
            async for name in redis.scan_iter(match=root_pattern(cache, root), count=SCAN_BATCH):
                batch.append(name)
                if len(batch) >= SCAN_BATCH:
                    deleted += await redis.unlink(*batch)
                    batch.clear()
            if batch:
                deleted += await redis.unlink(*batch)
        return deleted

    return await cache.run(sweep)


async def count_keys(cache: Cache, root: str) -> int | None:
    async def count(redis: Redis) -> int:
        total = 0
        async for _ in redis.scan_iter(match=root_pattern(cache, root), count=SCAN_BATCH):
            total += 1
        return total

    return await cache.run(count)


async def memory_used(cache: Cache) -> str | None:
    info = await cache.run(lambda redis: redis.info("memory"))
    return None if info is None else str(info.get("used_memory_human"))


@dataclass
class CounterSync:
    """Adds this replica's hit/miss counts to shared Redis counters every few seconds.

    One pipeline per period, never a write per request; what could not be written is kept
    and added next time.
    """

    cache: Cache
    counters: CacheCounters
    _sent_hits: Counter[Family] = field(default_factory=Counter)
    _sent_misses: Counter[Family] = field(default_factory=Counter)

    async def push(self) -> None:
        hits = self.counters.hits - self._sent_hits
        misses = self.counters.misses - self._sent_misses
        if not hits and not misses:
            return
        name = self.cache.full(SHARED_COUNTERS)

        async def write(redis: Redis) -> bool:
            pipe = redis.pipeline(transaction=False)
            for family, count in hits.items():
                pipe.hincrby(name, f"{family.value}:hits", count)
            for family, count in misses.items():
                pipe.hincrby(name, f"{family.value}:misses", count)
            pipe.expire(name, SHARED_COUNTERS_TTL)
            await pipe.execute()
            return True

        if await self.cache.run(write):
            self._sent_hits.update(hits)
            self._sent_misses.update(misses)

    async def shared(self) -> dict[str, int] | None:
        """The totals of every replica (after pushing ours), by `family:hits|misses`."""
        await self.push()
        raw = await self.cache.run(lambda redis: redis.hgetall(self.cache.full(SHARED_COUNTERS)))
        if raw is None:
            return None
        return {_text(field_): int(value) for field_, value in raw.items()}

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            await self.push()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
