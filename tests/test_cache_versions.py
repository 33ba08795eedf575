"""Versioned entries: a missing version counter makes its entries stale, never current."""

from __future__ import annotations

from fakeredis import FakeAsyncRedis

from bot.cache import Cache, CacheTTLs, Family, Key, Keys
from bot.domain import Level, NativeLanguage, Profile
from tests.test_cache_store import CountingRedis, counting_loader, must_not_load

KEYS = Keys(CacheTTLs())


async def test_a_deleted_version_counter_makes_the_entry_stale(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    key, version = KEYS.progress(1, 86400, int), KEYS.stats_version(1)
    database = {"messages": 1}

    async def load() -> int:
        return database["messages"]

    assert await cache.fetch(key, load, version=version) == 1
    assert await cache.fetch(key, must_not_load, version=version) == 1
    database["messages"] = 2  # written while the counter was lost (evicted, or DEL by hand)
    await fake_redis.delete(version.name)

    assert await cache.fetch(key, load, version=version) == 2
    assert await cache.fetch(key, must_not_load, version=version) == 2
    assert cache.counters.misses[Family.STATS] == 2


async def test_entries_stamped_zero_are_stale_when_the_counter_is_missing(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    key, version = KEYS.words_all(2, list[str]), KEYS.words_version(2)
    await fake_redis.set(key.name, b'{"v":0,"data":["old"]}', ex=3600)
    load, calls = counting_loader(["new"])

    assert await cache.fetch(key, load, version=version) == ["new"]
    assert calls == [1]
    assert await cache.fetch(key, must_not_load, version=version) == ["new"]


async def test_a_recreated_counter_starts_at_a_random_value(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    key, version = KEYS.progress(3, 86400, int), KEYS.stats_version(3)
    load, _ = counting_loader(7)
    await cache.fetch(key, load, version=version)
    first = int(await fake_redis.get(version.name))
    await fake_redis.delete(version.name)
    await cache.bump([version])  # a writer's bump recreates it too, never at 1
    second = int(await fake_redis.get(version.name))

    assert first != second
    assert first > 1 and second > 1
    assert 0 < await fake_redis.ttl(version.name) <= version.ttl


async def test_a_write_during_the_load_after_a_lost_counter_makes_the_fill_stale(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    key, version = KEYS.progress(4, 86400, int), KEYS.stats_version(4)
    database = {"messages": 1}

    async def load_then_a_writer_commits() -> int:
        read = database["messages"]
        database["messages"] = 2
        await cache.bump([version])
        return read

    assert await cache.fetch(key, load_then_a_writer_commits, version=version) == 1

    async def load() -> int:
        return database["messages"]

    assert await cache.fetch(key, load, version=version) == 2


async def test_prefetched_blobs_replace_the_first_read() -> None:
    redis = CountingRedis()
    cache = Cache(redis)
    key, version = KEYS.progress(5, 86400, int), KEYS.stats_version(5)
    load, calls = counting_loader([9])
    try:
        names = cache.names([key], version=version)
        assert names == ["stats:5:progress", "stats:5:version"]
        await cache.fetch_many([key], load, prefetched=[None, None], version=version)
        assert calls == [1]

        blobs = await redis.mget(names)
        redis.commands.clear()
        values = await cache.fetch_many([key], must_not_load, prefetched=blobs, version=version)

        assert values == (9,)
        assert redis.commands == []
        assert cache.counters.hits[Family.STATS] == 1
    finally:
        await redis.aclose()


async def test_an_update_uses_what_its_round_trip_read_once_and_never_after_a_write() -> None:
    redis = CountingRedis()
    cache = Cache(redis)
    key = KEYS.profile(6)
    load, _ = counting_loader([])
    try:
        profile = await _a_profile(cache, key)
        names = cache.names([key])
        cache.prefetch(names, await redis.mget(names))
        redis.commands.clear()
        assert await cache.fetch(key, must_not_load) == profile
        assert redis.commands == []  # taken from the update's own round trip
        assert await cache.fetch(key, must_not_load) == profile
        assert redis.commands == [("MGET", "user:6:profile")]  # used once only

        cache.prefetch(names, await redis.mget(names))
        renamed = profile.model_copy(update={"first_name": "Bára"})
        await cache.put(key, renamed)
        assert await cache.fetch(key, load) == renamed  # the read before the write is forgotten
    finally:
        await redis.aclose()


async def _a_profile(cache: Cache, key: Key[Profile]) -> Profile:
    profile = Profile(
        id=6,
        telegram_id=6,
        username="anna",
        first_name="Anna",
        native_language=NativeLanguage.EN,
        level=Level.BEGINNER,
        onboarded=True,
    )
    await cache.put(key, profile)
    return profile
