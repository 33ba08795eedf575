"""CACHE_BYPASS: chosen families always come from the source; the others stay cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakeredis import FakeAsyncRedis
from pydantic import ValidationError

from bot.cache import Cache, CacheTTLs, Family, Keys, create_cache
from tests.conftest import make_config
from tests.test_cache_store import CountingRedis, counting_loader, must_not_load, profile

KEYS = Keys(CacheTTLs())


async def test_a_bypassed_family_is_neither_read_nor_written() -> None:
    redis = CountingRedis()
    cache = Cache(redis, bypass={Family.HONZIK})
    answer = KEYS.honzik("digest", str)
    load, calls = counting_loader("Ahoj!")
    try:
        assert await cache.fetch(answer, load, shared=True) == "Ahoj!"
        assert await cache.fetch(answer, load, shared=True) == "Ahoj!"
        assert calls == [1, 1]
        assert redis.commands == []  # not even the single-flight lock
        assert await redis.keys("*") == []
        assert cache.counters.misses[Family.HONZIK] == 2
        assert cache.counters.hits[Family.HONZIK] == 0

        user = KEYS.profile(1)
        load_user, user_calls = counting_loader(profile(1))
        assert await cache.fetch(user, load_user) == profile(1)
        assert await cache.fetch(user, must_not_load) == profile(1)
        assert user_calls == [1]
        assert await redis.keys("*") == [b"user:1:profile"]
    finally:
        await redis.aclose()


async def test_writes_to_a_bypassed_family_drop_the_entry(fake_redis: FakeAsyncRedis) -> None:
    cache = Cache(fake_redis, bypass={Family.TTS})
    key = KEYS.tts("digest", "onyx", str)
    await fake_redis.set(key.name, b'"cached before the bypass"')

    assert await cache.read(key) is None
    await cache.put(key, "file-id")

    assert await fake_redis.exists(key.name) == 0
    assert cache.counters.misses[Family.TTS] == 1


def test_cache_bypass_is_read_from_a_comma_separated_list(tmp_path: Path) -> None:
    config = make_config(tmp_path, cache_bypass="honzik, TTS,")
    assert config.cache_bypass == {Family.HONZIK, Family.TTS}
    assert make_config(tmp_path).cache_bypass == frozenset()
    assert make_config(tmp_path, cache_bypass="").cache_bypass == frozenset()


def test_unknown_cache_families_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown cache families honza; known: history"):
        make_config(tmp_path, cache_bypass="honzik,honza")


async def test_create_cache_applies_the_bypass(tmp_path: Path) -> None:
    cache = create_cache(make_config(tmp_path, cache_bypass="whisper"))
    try:
        assert cache.bypass == {Family.WHISPER}
    finally:
        await cache.close()
