"""Single-flight across replicas: two caches on one Redis load a missing value once."""

from __future__ import annotations

import asyncio
from typing import Any

from fakeredis import FakeServer

from bot.cache import Cache, CacheTTLs, Family, Keys
from tests.test_cache_store import DEADLINE, CountingRedis, until

KEYS = Keys(CacheTTLs())


async def test_two_replicas_and_a_local_caller_share_one_load() -> None:
    server = FakeServer()
    redis_a, redis_b = CountingRedis(server=server), CountingRedis(server=server)
    replica_a = Cache(redis_a, poll_interval=0.005)
    replica_b = Cache(redis_b, poll_interval=0.005)
    key = KEYS.honzik("shared", str)
    b_waiting = asyncio.Event()

    def watch_b(args: tuple[Any, ...], result: Any) -> None:
        if args[:2] == ("SET", key.lock) and result is None:
            b_waiting.set()  # B found the lock taken and waits for it

    redis_b.on_command = watch_b
    calls: list[str] = []

    async def load() -> str:
        calls.append("load")
        await b_waiting.wait()
        return "one answer"

    try:
        first = asyncio.create_task(replica_a.fetch(key, load, shared=True))
        await until(lambda: calls == ["load"], "replica A to start loading")
        local = asyncio.create_task(replica_a.fetch(key, load, shared=True))
        remote = asyncio.create_task(replica_b.fetch(key, load, shared=True))
        results = await asyncio.wait_for(asyncio.gather(first, local, remote), DEADLINE)

        assert results == ["one answer"] * 3
        assert calls == ["load"]
        assert replica_b.counters.misses[Family.HONZIK] == 1
        assert await redis_a.exists(key.lock) == 0
    finally:
        await redis_a.aclose()
        await redis_b.aclose()


async def test_a_waiter_gives_up_on_a_lock_that_outlives_it_and_loads_itself() -> None:
    redis = CountingRedis()
    cache = Cache(redis, lock_ttl=0.05, poll_interval=0.005)
    key = KEYS.whisper("stuck", str)
    await redis.set(key.lock, "a replica that died", px=60_000)
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        return "loaded anyway"

    try:
        assert await asyncio.wait_for(cache.fetch(key, load, shared=True), DEADLINE) == (
            "loaded anyway"
        )
        assert calls == [1]
        assert await redis.get(key.lock) == b"a replica that died"
        assert cache.counters.errors == 0
    finally:
        await redis.aclose()
