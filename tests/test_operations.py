"""Operator features through the real dispatcher: admin commands, update claims, limits, metrics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx2._client
import openai._base_client
import pytest
from aiogram import Bot
from aiogram.methods import AnswerCallbackQuery, SendMessage
from aiohttp.test_utils import TestClient, TestServer
from fakeredis import FakeAsyncRedis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.app import build_dispatcher
from bot.cache import Cache, Family
from bot.cache.admin import CounterSync, count_keys, flush
from bot.handlers.admin import FLUSHABLE
from bot.logs import QUIET_LOGGERS, setup_logging
from bot.services.health import HealthService
from bot.web.server import create_web_app
from tests.conftest import TEST_TOKEN, make_config, make_resources
from tests.support import updates
from tests.support.recording import RecordingSession

ADMIN = updates.learner(999)  # make_config sets ADMIN_IDS=999

CACHE_KEYS = [
    "user:1:profile",
    "user:1:settings",
    "user:1:history:6",
    "stats:1:daily:2026-11-25",
    "stats:1:progress",
    "honzik:response:abc",
    "whisper:def",
    "tts:123:onyx",
    "words:1:all",
]
OTHER_KEYS = ["fsm:1:1:state", "update:42:7", "ratelimit:1:29000000", "otherapp:session:1"]


def texts_sent(recorder: RecordingSession) -> list[str]:
    return [request.text for request in recorder.of(SendMessage)]


async def seed(redis: FakeAsyncRedis) -> None:
    for name in CACHE_KEYS + OTHER_KEYS:
        await redis.set(name, "1", ex=3600)


async def names(redis: FakeAsyncRedis) -> set[str]:
    return {name.decode() for name in await redis.keys("*")}


async def test_non_admin_flush_changes_nothing(
    feed: Any, recorder: RecordingSession, fake_redis: FakeAsyncRedis
) -> None:
    await seed(fake_redis)
    before = await names(fake_redis)
    await feed(updates.message("/cache_flush", user=updates.learner(5)))
    await feed(updates.message("/cache_stats", user=updates.learner(5)))

    assert texts_sent(recorder) == [texts.ADMIN_ONLY, texts.ADMIN_ONLY]
    assert set(CACHE_KEYS) <= await names(fake_redis)
    assert before <= await names(fake_redis)


async def test_admin_flush_removes_every_cache_key_and_nothing_else(
    feed: Any, recorder: RecordingSession, fake_redis: FakeAsyncRedis
) -> None:
    await seed(fake_redis)
    await feed(updates.message("/cache_flush", user=ADMIN))

    left = await names(fake_redis)
    assert not left & set(CACHE_KEYS)
    assert set(OTHER_KEYS) <= left
    # the admin's own context was cached again while handling the command, then flushed
    assert texts_sent(recorder)[-1].startswith("🧹")


async def test_admin_flush_of_one_family(
    feed: Any, recorder: RecordingSession, fake_redis: FakeAsyncRedis
) -> None:
    await seed(fake_redis)
    await feed(updates.message("/cache_flush honzik", user=ADMIN))
    await feed(updates.message("/cache_flush nonsense", user=ADMIN))

    left = await names(fake_redis)
    assert "honzik:response:abc" not in left
    assert {"whisper:def", "tts:123:onyx", "user:1:profile"} <= left
    flushed, usage = texts_sent(recorder)
    assert flushed == texts.FLUSHED.format(count=1, families="honzik")
    assert usage == texts.FLUSH_USAGE.format(families="|".join(FLUSHABLE))


async def test_flush_honours_the_key_prefix(
    tmp_path: Path,
    engine: AsyncEngine,
    bot: Bot,
    recorder: RecordingSession,
    fake_redis: FakeAsyncRedis,
) -> None:
    config = make_config(tmp_path, redis_key_prefix="mluv:")
    dp = build_dispatcher(make_resources(config, engine, Cache(fake_redis, prefix="mluv:")))
    await fake_redis.set("mluv:honzik:response:x", "1")
    await fake_redis.set("honzik:response:not-ours", "1")
    await dp.feed_update(bot, updates.message("/cache_flush honzik", user=ADMIN))

    assert await names(fake_redis) >= {"honzik:response:not-ours"}
    assert "mluv:honzik:response:x" not in await names(fake_redis)


async def test_cache_stats_adds_up_replicas_and_estimates_savings(
    feed: Any, recorder: RecordingSession, fake_redis: FakeAsyncRedis, cache: Cache
) -> None:
    other_replica = Cache(fake_redis)
    other_replica.counters.hits[Family.HONZIK] += 3
    await CounterSync(other_replica, other_replica.counters).push()
    await fake_redis.set("honzik:response:abc", "1")

    await feed(updates.message("/cache_stats", user=ADMIN))

    report = texts_sent(recorder)[-1]
    assert (
        texts.CACHE_STATS_FAMILY.format(family="honzik", hits=3, misses=0, rate=100, keys=1)
        in report
    )
    assert texts.CACHE_STATS_SAVED.format(calls=3, dollars=0) in report
    assert texts.CACHE_STATS_MEMORY.format(memory="") in report


async def test_rate_limit_sends_one_notice_then_stays_quiet(
    tmp_path: Path, engine: AsyncEngine, bot: Bot, recorder: RecordingSession, cache: Cache
) -> None:
    config = make_config(tmp_path, rate_limit_per_minute=3)
    dp = build_dispatcher(make_resources(config, engine, cache))
    anna = updates.learner(23)
    for _ in range(6):
        await dp.feed_update(bot, updates.message("/help", user=anna))
    assert texts_sent(recorder) == [texts.HELP] * 3 + [texts.RATE_LIMITED]


async def test_rate_limit_covers_button_presses_before_any_sql(
    tmp_path: Path, engine: AsyncEngine, bot: Bot, recorder: RecordingSession, cache: Cache
) -> None:
    config = make_config(tmp_path, rate_limit_per_minute=2)
    dp = build_dispatcher(make_resources(config, engine, cache))
    anna = updates.learner(26)
    for _ in range(2):
        await dp.feed_update(bot, updates.message("/help", user=anna))
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    await dp.feed_update(bot, updates.callback("st:menu", user=anna))
    await dp.feed_update(bot, updates.callback("st:menu", user=anna))
    alerts = [r.text for r in recorder.of(AnswerCallbackQuery)]
    assert alerts == [texts.RATE_LIMITED]  # one notice, then silence
    assert statements == []  # refused before the learner is loaded


async def test_daily_ai_budget_refuses_politely(
    tmp_path: Path, engine: AsyncEngine, bot: Bot, recorder: RecordingSession, cache: Cache
) -> None:
    config = make_config(
        tmp_path,
        daily_ai_messages=1,
        openai_base_url="http://127.0.0.1:9/v1",
        openai_max_retries=0,
        openai_timeout=1,
    )
    dp = build_dispatcher(make_resources(config, engine, cache))
    anna = updates.learner(24)
    await dp.feed_update(bot, updates.message("Ahoj, jak se máš?", user=anna))
    await dp.feed_update(bot, updates.message("Dobrý den!", user=anna))
    # the first message used the day's one answer (OpenAI is unreachable here, so it is asked
    # to try again); the second is over the budget
    assert texts_sent(recorder) == [texts.TRY_AGAIN, texts.DAILY_LIMIT]


async def test_metrics_endpoint_shows_cache_counters(
    feed: Any, resources: Any, engine: AsyncEngine, cache: Cache
) -> None:
    await feed(updates.message("/help", user=updates.learner(25)))
    await feed(updates.message("/help", user=updates.learner(25)))
    app = create_web_app(HealthService(engine, cache, "test"), resources.metrics)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        body = await response.text()
    assert response.status == 200
    assert 'mluv_cache_hits_total{family="user"} 2.0' in body
    assert 'mluv_cache_misses_total{family="user"} 2.0' in body
    assert "mluv_handler_seconds_count" in body
    assert "mluv_updates_in_flight 0.0" in body


async def test_flush_and_count_match_the_key_prefix_literally(fake_redis: FakeAsyncRedis) -> None:
    """Glob characters in REDIS_KEY_PREFIX are escaped in the SCAN patterns."""
    foreign = ["app1:user:42:profile", "another-app:user:1:session", "app:user:1:profile"]
    for prefix in ("app[1]:", "a*:", "a?p:", "x\\y:"):
        await fake_redis.flushall()
        own = f"{prefix}user:42:profile"
        for name in [*foreign, own]:
            await fake_redis.set(name, "1")
        cache = Cache(fake_redis, prefix=prefix)

        assert await count_keys(cache, "user") == 1, prefix
        assert await flush(cache) == 1, prefix
        assert await names(fake_redis) == set(foreign), prefix


def test_log_records_never_show_the_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    token, key = TEST_TOKEN, "sk-proj-secret-key-123"
    setup_logging("INFO", "development", {"BOT_TOKEN": token, "OPENAI_API_KEY": key})
    log = logging.getLogger("bot.test")
    try:
        log.warning(f"GET https://api.telegram.org/bot{token}/getMe with {key}")
        log.warning("GET %s, key %s", f"https://api.telegram.org/bot{token}/getMe", key)
        try:
            raise RuntimeError(f"could not reach /bot{token}/getUpdates using {key}")
        except RuntimeError:
            log.exception("failed")
        setup_logging("INFO", "production", {"BOT_TOKEN": token, "OPENAI_API_KEY": key})
        try:
            raise RuntimeError(f"could not reach /bot{token}/getUpdates using {key}")
        except RuntimeError:
            logging.getLogger("bot.test").exception("failed as JSON")
        written = capsys.readouterr().err
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)

    assert token not in written and key not in written
    assert token.split(":")[1] not in written
    assert written.count("<BOT_TOKEN>") == 4  # two messages, two tracebacks
    assert written.count("<OPENAI_API_KEY>") == 4
    assert "RuntimeError: could not reach /bot<BOT_TOKEN>/getUpdates" in written


def test_http_client_loggers_are_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    """They log every request URL (with the bot token in it) at INFO."""
    setup_logging("DEBUG", "development", {})
    try:
        for name in ("httpx", "httpx2", "httpcore2", "openai"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
        # the loggers the installed OpenAI client writes its requests to
        assert openai._base_client.log.getEffectiveLevel() == logging.WARNING
        assert httpx2._client.logger.getEffectiveLevel() == logging.WARNING
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


async def test_health_says_telegram_is_unreachable_only_while_it_is(
    engine: AsyncEngine, cache: Cache
) -> None:
    health = HealthService(engine, cache, "test")
    status, body = await health.report()
    assert (status, "telegram" in body) == (200, False)

    health.telegram_reachable = False
    status, body = await health.report()
    assert status == 200  # alive: start-up goes on trying by itself
    assert body["telegram"] == "unreachable"
    assert body["database"] == "healthy" and body["redis"] == "healthy"
