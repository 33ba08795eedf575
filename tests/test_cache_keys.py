"""The Redis names the bot writes: patterns and TTLs are the operator's contract."""

from __future__ import annotations

import datetime as dt

from fakeredis import FakeAsyncRedis

from bot.cache import Cache, CacheTTLs, Family, Keys
from bot.cache.admin import flush
from bot.cache.keys import (
    BUDGET_TTL,
    KEY_ROOTS,
    RATE_LIMIT_TTL,
    SHARED_COUNTERS,
    SHARED_COUNTERS_TTL,
    UPDATE_DONE_TTL,
    VERSION_TTL,
)
from bot.services.limits import count_in_window, within_daily_budget

KEYS = Keys(CacheTTLs(user=100, stats=50, openai=1000))
DAY = dt.date(2026, 3, 1)


def test_cache_key_patterns_and_ttls() -> None:
    built = [
        (KEYS.profile(7), "user:7:profile", Family.USER, 100),
        (KEYS.settings(7), "user:7:settings", Family.USER, 100),
        (KEYS.history(7, 6, str), "user:7:history:6", Family.HISTORY, 100),
        (KEYS.content(7), "user:7:content", Family.USER, 1000),  # outlives what it lists
        (KEYS.daily_stats(3, DAY, 40, str), "stats:3:daily:2026-03-01", Family.STATS, 40),
        (KEYS.progress(3, 40, str), "stats:3:progress", Family.STATS, 40),
        (KEYS.progress(3, 4000, str), "stats:3:progress", Family.STATS, 50),
        (KEYS.stats_chart(3, DAY, 40), "stats:3:chart:2026-03-01", Family.STATS, 40),
        (KEYS.stats_version(3), "stats:3:version", Family.STATS, VERSION_TTL),
        (KEYS.honzik("h", str), "honzik:response:h", Family.HONZIK, 1000),
        (KEYS.whisper("a", str), "whisper:a", Family.WHISPER, 1000),
        (KEYS.tts("t", "onyx", str), "tts:t:onyx", Family.TTS, 1000),
        (KEYS.words_all(3, str), "words:3:all", Family.WORDS, 100),
        (KEYS.words_due(3, 40, str), "words:3:due", Family.WORDS, 40),
        (KEYS.words_version(3), "words:3:version", Family.WORDS, VERSION_TTL),
        (KEYS.translate("t", "uk", str), "translate:t:uk", Family.TRANSLATE, 1000),
    ]
    for key, name, family, ttl in built:
        assert (key.name, key.family, key.ttl) == (name, family, ttl)
        assert name.split(":")[0] in KEY_ROOTS
    assert KEYS.honzik("h", str).lock == "honzik:response:h:lock"


def test_names_outside_the_cache_are_never_flushable() -> None:
    names = {
        Keys.rate_limit(7, 29_000_000): "ratelimit:7:29000000",
        Keys.budget(7, DAY): "budget:7:2026-03-01",
        Keys.update_mark(42, 9): "update:42:9",
        SHARED_COUNTERS: "metrics:cache",
    }
    for built, expected in names.items():
        assert built == expected
        assert built.split(":")[0] not in KEY_ROOTS
    assert (RATE_LIMIT_TTL, BUDGET_TTL, UPDATE_DONE_TTL) == (60, 2 * 86400, 86400)
    assert SHARED_COUNTERS_TTL == 30 * 86400


async def test_flush_keeps_rate_limits_budgets_and_update_marks(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    kept = [Keys.rate_limit(7, 1), Keys.budget(7, DAY), Keys.update_mark(42, 9), SHARED_COUNTERS]
    for name in [*kept, KEYS.profile(7).name, KEYS.honzik("h", str).lock]:
        await fake_redis.set(name, 1, ex=60)

    assert await flush(cache) == 2
    assert sorted(await fake_redis.keys("*")) == sorted(name.encode() for name in kept)


async def test_the_daily_budget_counts_under_its_key(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    assert await within_daily_budget(cache, 7, DAY, 2)
    assert await within_daily_budget(cache, 7, DAY, 2)
    assert not await within_daily_budget(cache, 7, DAY, 2)
    assert await within_daily_budget(cache, 8, DAY, 0)  # 0: unlimited, nothing counted

    assert await fake_redis.keys("*") == [b"budget:7:2026-03-01"]
    assert 0 < await fake_redis.ttl("budget:7:2026-03-01") <= BUDGET_TTL
    name = cache.full(Keys.rate_limit(7, 1))
    assert await count_in_window(cache, name, RATE_LIMIT_TTL) == 1
    assert 0 < await fake_redis.ttl(name) <= RATE_LIMIT_TTL
