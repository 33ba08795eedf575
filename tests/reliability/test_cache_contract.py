"""The shared hit/miss counters expire too.

README, "The Redis cache": "let Redis evict old entries (every key has a TTL anyway)". The
shared hit/miss counters (`metrics:cache`, written by CounterSync every 5 s) are renewed on
every push and expire a month after the last one.
"""

from __future__ import annotations

import pytest

from bot.cache.keys import SHARED_COUNTERS
from tests.e2e.harness import eventually

from .invariants import assert_invariants
from .support import Deployment, barrier

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


class PersistentKey(AssertionError):
    """A key the bot wrote without an expiry."""


async def test_shared_cache_counters_expire(main: Deployment) -> None:
    await barrier(main.tg, 5601)  # some cache hits and misses for the counters to carry

    async def written() -> bool:
        return bool(await main.redis.keys(SHARED_COUNTERS))

    await eventually(written, timeout=15, what=f"{SHARED_COUNTERS} written by the counter sync")
    async with main.redis.client() as redis:
        pttl = int(await redis.pttl(SHARED_COUNTERS))
    await assert_invariants(main)  # everything else expires as it should
    if pttl < 0:
        raise PersistentKey(f"{SHARED_COUNTERS} has no TTL (PTTL {pttl})")
