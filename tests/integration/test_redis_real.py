"""The cache against a real Redis (the `redis_url` fixture): round trips, TTLs, locks, the pool."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.cache import SOCKET_TIMEOUT, Cache, Family, Key, create_cache, create_redis, keys_for
from bot.config import Config
from tests.conftest import make_config

pytestmark = pytest.mark.integration

DEADLINE = 10.0


@pytest.fixture
def prefix() -> str:
    """Keys of this test only, so parallel runs on one database do not see each other."""
    return f"test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def live_config(tmp_path: Path, prefix: str, redis_url: str) -> Config:
    return make_config(
        tmp_path,
        redis_url=redis_url,
        redis_key_prefix=prefix,
        redis_cache_ttl_user=120,
        redis_cache_ttl_stats=60,
        redis_max_connections=3,
    )


@pytest.fixture
async def other_client(real_redis: Redis, redis_url: str) -> AsyncIterator[Redis]:
    """A second, independent client of the same Redis database."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def record_commands(
    monkeypatch: pytest.MonkeyPatch, client: Redis, answers: list[tuple[Any, Any]] | None = None
) -> list[tuple[Any, ...]]:
    """Record what `client` sends (a pipeline counts as one) and, optionally, what it got back."""
    sent: list[tuple[Any, ...]] = []
    execute_command = client.execute_command
    pipeline = client.pipeline

    async def recording_execute(*args: Any, **options: Any) -> Any:
        sent.append(args)
        result = await execute_command(*args, **options)
        if answers is not None:
            answers.append((args, result))
        return result

    def recording_pipeline(*args: Any, **kwargs: Any) -> Any:
        sent.append(("PIPELINE",))
        return pipeline(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", recording_execute)
    monkeypatch.setattr(client, "pipeline", recording_pipeline)
    return sent


def as_dict(key: Key[Any]) -> Key[dict[str, str]]:
    return Key(key.name, key.family, key.ttl, dict[str, str])


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def test_a_two_key_hit_is_one_mget_round_trip(
    real_redis: Redis, prefix: str, live_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = keys_for(live_config)
    cache = Cache(real_redis, prefix=prefix)
    pair = [as_dict(keys.profile(1)), as_dict(keys.settings(1))]
    loads: list[int] = []

    async def load() -> list[dict[str, str]]:
        loads.append(1)
        return [{"name": "Anna"}, {"style": "friendly"}]

    sent = record_commands(monkeypatch, real_redis)
    await cache.fetch_many(pair, load)
    assert [c[0] for c in sent] == ["MGET", "PIPELINE"]  # miss: one read, one pipelined fill

    sent.clear()
    values = await cache.fetch_many(pair, load)

    assert values == ({"name": "Anna"}, {"style": "friendly"})
    assert loads == [1]
    assert sent == [("MGET", f"{prefix}user:1:profile", f"{prefix}user:1:settings")]
    assert cache.counters.hits[Family.USER] == 2


async def test_ttls_follow_the_configuration(
    real_redis: Redis, prefix: str, live_config: Config
) -> None:
    keys = keys_for(live_config)
    cache = Cache(real_redis, prefix=prefix)

    async def load() -> list[int]:
        return [1, 2, 3]

    far_from_midnight = 86400
    profile = Key(keys.profile(2).name, Family.USER, keys.ttl.user, int)
    entries = [profile, keys.progress(2, far_from_midnight, int), keys.whisper("x", int)]
    await cache.fetch_many(entries, load)
    await cache.put(Key(keys.settings(2).name, Family.USER, keys.ttl.user, int), 4)

    assert 110 <= await real_redis.ttl(f"{prefix}user:2:profile") <= 120
    assert 110 <= await real_redis.ttl(f"{prefix}user:2:settings") <= 120
    assert 50 <= await real_redis.ttl(f"{prefix}stats:2:progress") <= 60
    assert 86390 <= await real_redis.ttl(f"{prefix}whisper:x") <= 86400


async def test_fill_never_overwrites_but_put_does(
    real_redis: Redis, prefix: str, tmp_path: Path
) -> None:
    cache = Cache(real_redis, prefix=prefix)
    key = keys_for(make_config(tmp_path)).whisper("3", str)

    async def load() -> str:
        await cache.put(key, "written after commit")
        return "read before commit"

    assert await cache.fetch(key, load) == "read before commit"
    assert await real_redis.get(f"{prefix}whisper:3") == b'"written after commit"'


async def test_shared_lock_across_two_clients(
    real_redis: Redis,
    other_client: Redis,
    prefix: str,
    live_config: Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = keys_for(live_config).honzik("digest", str)
    lock_name = f"{prefix}honzik:response:digest:lock"
    replica_a = Cache(real_redis, prefix=prefix, poll_interval=0.005)
    replica_b = Cache(other_client, prefix=prefix, poll_interval=0.005)

    a_loading = asyncio.Event()
    release_a = asyncio.Event()
    loads: list[str] = []

    async def load_a() -> str:
        loads.append("a")
        a_loading.set()
        await release_a.wait()
        return "Ahoj!"

    async def load_b() -> str:
        loads.append("b")
        return "should not run"

    task_a = asyncio.create_task(replica_a.fetch(key, load_a, shared=True))
    await asyncio.wait_for(a_loading.wait(), DEADLINE)
    assert await other_client.exists(lock_name) == 1
    assert 0 < await other_client.pttl(lock_name) <= 30_000

    b_answers: list[tuple[Any, Any]] = []
    record_commands(monkeypatch, other_client, b_answers)
    task_b = asyncio.create_task(replica_b.fetch(key, load_b, shared=True))
    # B has missed and, finding the lock taken, waits for A to let go of it.
    await until(
        lambda: any(args[:2] == ("SET", lock_name) and r is None for args, r in b_answers),
        "B to find the lock taken",
    )
    release_a.set()

    assert await asyncio.wait_for(asyncio.gather(task_a, task_b), DEADLINE) == ["Ahoj!"] * 2
    assert loads == ["a"]
    assert await real_redis.exists(lock_name) == 0


async def test_more_callers_than_connections_queue_for_one_instead_of_failing(
    tmp_path: Path, real_redis: Redis, redis_url: str, prefix: str
) -> None:
    """Waiting for a free connection is local contention, not Redis being down."""
    config = make_config(
        tmp_path, redis_url=redis_url, redis_max_connections=2, redis_key_prefix=prefix
    )
    cache = create_cache(config)
    key = cache.full("contention")
    try:
        assert cache.redis is not None
        assert cache.redis.connection_pool.max_connections == 2
        pool = cache.redis.connection_pool
        held = [await pool.get_connection(), await pool.get_connection()]

        async def give_back_later() -> None:
            await asyncio.sleep(2 * SOCKET_TIMEOUT)  # busy for longer than any socket wait
            for connection in held:
                await pool.release(connection)

        results = await asyncio.gather(
            give_back_later(), *(cache.run(lambda redis: redis.incr(key)) for _ in range(200))
        )
        assert sorted(r for r in results[1:] if r is not None) == list(range(1, 201))
        assert cache.counters.errors == 0 and cache.available
    finally:
        await real_redis.delete(key)
        await cache.close()
    default = create_redis(make_config(tmp_path))
    assert default.connection_pool.max_connections == 50
    await default.aclose()


async def test_create_cache_uses_the_prefix_and_can_be_disabled(
    tmp_path: Path, real_redis: Redis, redis_url: str, prefix: str
) -> None:
    cache = create_cache(make_config(tmp_path, redis_url=redis_url, redis_key_prefix=prefix))
    try:
        assert await cache.health() == "healthy"
        await cache.put(keys_for(make_config(tmp_path)).whisper("4", int), 1)
        assert await real_redis.exists(f"{prefix}whisper:4") == 1
    finally:
        await cache.close()
    disabled = create_cache(make_config(tmp_path, cache_enabled=False))
    assert disabled.redis is None
    assert await disabled.health() == "disabled"


async def test_reconnects_after_the_server_drops_the_connection(
    live_config: Config, other_client: Redis, prefix: str
) -> None:
    client = create_redis(live_config)
    cache = Cache(client, prefix=prefix, cooldown=0.0)
    key = keys_for(live_config).whisper("5", str)
    loads: list[int] = []

    async def load() -> str:
        loads.append(1)
        return "value"

    try:
        assert await cache.fetch(key, load) == "value"
        my_id = await client.client_id()
        # Kill only this client's connection, not other processes' (the server is shared).
        killed = await other_client.execute_command("CLIENT", "KILL", "ID", my_id, "TYPE", "normal")
        assert killed == 1

        assert await cache.fetch(key, load) == "value"  # succeeds or fails open
        assert await cache.health() == "healthy"
        hits_before = cache.counters.hits[Family.WHISPER]
        loads_before = len(loads)
        assert await cache.fetch(key, load) == "value"

        assert cache.counters.hits[Family.WHISPER] == hits_before + 1
        assert len(loads) == loads_before
        assert cache.redis is client
        assert await client.client_id() != my_id  # a new connection, same client object
    finally:
        await cache.close()
