"""`bot.cache.gateway`: one-round-trip batches, fail-open, repairs, and the client's timeouts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fakeredis import FakeServer
from redis.asyncio.connection import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.utils import HIREDIS_AVAILABLE

from bot.cache import SOCKET_TIMEOUT, Cache, CacheTTLs, Keys, create_redis
from bot.cache.gateway import Gateway
from tests.conftest import make_config
from tests.test_cache_store import CountingRedis

KEYS = Keys(CacheTTLs())


async def test_batch_sends_every_command_in_one_round_trip() -> None:
    redis = CountingRedis()
    gateway = Gateway(redis, prefix="p:")
    try:
        await redis.set("p:a", "1")
        redis.commands.clear()

        results = await gateway.batch(
            lambda pipe: (pipe.get(gateway.full("a")), pipe.incr(gateway.full("n")))
        )

        assert results == [b"1", 1]
        assert redis.commands == [("PIPELINE",)]
        assert gateway.counters.errors == 0
    finally:
        await redis.aclose()


async def test_concurrent_batches_share_one_pipeline_and_keep_their_own_results() -> None:
    redis = CountingRedis()
    gateway = Gateway(redis)
    try:
        await redis.set("text", "not a number")
        redis.commands.clear()
        first, broken, last = await asyncio.gather(
            gateway.batch(lambda pipe: (pipe.incr("a"), pipe.incr("a"))),
            gateway.batch(lambda pipe: pipe.incr("text")),
            gateway.batch(lambda pipe: pipe.get("a")),
        )
        assert redis.commands == [("PIPELINE",)]  # three callers, one round trip
        assert (first, last) == ([1, 2], [b"2"])
        assert broken is None  # only the caller whose command failed fails
        assert gateway.counters.errors == 1 and gateway.available
    finally:
        await redis.aclose()


async def test_batch_fails_open_counts_the_error_and_cools_down() -> None:
    server = FakeServer()
    redis = CountingRedis(server=server)
    gateway = Gateway(redis, cooldown=60.0)
    try:
        server.connected = False
        assert await gateway.batch(lambda pipe: pipe.get("a")) is None
        assert gateway.counters.errors == 1
        assert gateway.available is False

        redis.commands.clear()
        assert await gateway.batch(lambda pipe: pipe.get("a")) is None
        assert redis.commands == []  # the cool-down: Redis is not even tried
        assert gateway.counters.errors == 1

        server.connected = True
        assert await gateway.health() == "healthy"
        assert await gateway.batch(lambda pipe: pipe.get("a")) == [None]
    finally:
        server.connected = True
        await redis.aclose()


async def test_batch_without_redis_is_none() -> None:
    gateway = Gateway(None)
    assert await gateway.batch(lambda pipe: pipe.get("a")) is None
    assert await gateway.run(lambda redis: redis.get("a")) is None
    assert gateway.counters.errors == 0


async def test_writes_that_missed_redis_are_redone_before_the_next_read() -> None:
    server = FakeServer()
    redis = CountingRedis(server=server)
    cache = Cache(redis, cooldown=60.0)
    key = KEYS.whisper("old", str)
    version = KEYS.stats_version(1)
    try:
        await redis.set(key.name, b'"old"')
        await redis.set(version.name, 5)
        server.connected = False
        await cache.put(key, "new")  # cannot be written: the old entry must not survive
        await cache.bump([version])
        server.connected = True
        assert await redis.get(key.name) == b'"old"'

        assert await cache.health() == "healthy"
        assert await redis.exists(key.name) == 0
        assert int(await redis.get(version.name)) != 5
    finally:
        server.connected = True
        await redis.aclose()


async def test_a_lock_release_that_missed_redis_is_redone() -> None:
    server = FakeServer()
    redis = CountingRedis(server=server)
    cache = Cache(redis, cooldown=60.0, lock_ttl=30)
    key = KEYS.honzik("release", str)

    async def load() -> str:
        server.connected = False  # Redis goes away while we hold the lock
        return "answer"

    try:
        assert await cache.fetch(key, load, shared=True) == "answer"
        server.connected = True
        assert await redis.exists(key.lock) == 1

        assert await cache.health() == "healthy"
        assert await redis.exists(key.lock) == 0
    finally:
        server.connected = True
        await redis.aclose()


async def test_a_silent_redis_is_asked_once_and_a_closed_connection_retried_once(
    tmp_path: Path,
) -> None:
    """A timeout is not retried (one short wait per update); a dropped connection is."""
    connections = 0
    behaviour = "silent"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(1024)
        if behaviour == "silent":
            await reader.read()  # never answers; returns when the client gives up
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = create_redis(make_config(tmp_path, redis_url=f"redis://127.0.0.1:{port}/0"))
    try:
        pool = redis.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert pool.connection_kwargs["socket_timeout"] == SOCKET_TIMEOUT == 0.25
        assert HIREDIS_AVAILABLE  # redis[hiredis]: the pool's connections parse with hiredis
        with pytest.raises(RedisTimeoutError):
            await redis.get("x")
        assert connections == 1
        behaviour, connections = "closing", 0
        with pytest.raises(RedisConnectionError):
            await redis.get("x")
        assert connections >= 2  # tried again on a new connection, not given up at once
    finally:
        await redis.aclose()
        server.close()
