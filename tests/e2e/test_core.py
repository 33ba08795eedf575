"""The bot's core, end to end: commands, settings in the Redis cache, Redis and database
outages as /health and learners see them, start-up without a token, and a clean SIGTERM.

One bot (`core_bot`) serves the tests that need no special configuration; each uses its own
Telegram user id. Tests that need another configuration start their own bot.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from bot import texts
from bot.i18n import speaking
from tests.e2e.harness import (
    BotProcess,
    Fleet,
    PostgresDatabase,
    RedisServer,
    Stack,
    exchange,
    same_text,
    texts_of,
)
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

USER_TTL = 3600
NO_REDIS = "redis://127.0.0.1:9/0"

# Spawned together before the first test (see conftest): their start-ups overlap.
SPAWN_EARLY = ("_core", "_nocache", "_pg", "_no_token", "_empty_token")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _core(module_fleet: Fleet) -> BotProcess:
    return module_fleet.spawn("core")


@pytest_asyncio.fixture(loop_scope="module")
async def core_bot(_core: BotProcess) -> BotProcess:
    """The module's shared bot, ready (restarted if an earlier test stopped it)."""
    return await _core.ready()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _nocache(
    tmp_path_factory: pytest.TempPathFactory, module_oa: FakeOpenAI
) -> AsyncIterator[Stack]:
    async with Stack(tmp_path_factory.mktemp("nocache"), oa=module_oa) as stack:
        stack.fleet.spawn("nocache", env={"CACHE_ENABLED": "false"})
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _pg(
    tmp_path_factory: pytest.TempPathFactory, module_oa: FakeOpenAI
) -> AsyncIterator[tuple[Stack, PostgresDatabase]]:
    database = PostgresDatabase()
    try:
        url = await database.create()
    except Exception as exc:
        message = f"PostgreSQL is not reachable: {exc!r}"
        if os.environ.get("MLUV_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    try:
        async with Stack(tmp_path_factory.mktemp("pg"), oa=module_oa, database_url=url) as stack:
            stack.fleet.spawn("pg")
            yield stack, database
    finally:
        await database.drop()


def _spawn_without_token(
    tmp_path_factory: pytest.TempPathFactory, name: str, token: str | None
) -> BotProcess:
    # From an empty directory, so no `.env` can supply a token.
    workdir = tmp_path_factory.mktemp(name)
    bot = BotProcess(
        workdir,
        tg=None,
        oa=None,
        redis_url=NO_REDIS,
        name=name,
        cwd=workdir,
        env={"BOT_TOKEN": token},
    )
    return bot.spawn()


@pytest.fixture(scope="module")
def _no_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    bot = _spawn_without_token(tmp_path_factory, "notoken", None)
    yield bot
    bot.kill()


@pytest.fixture(scope="module")
def _empty_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    bot = _spawn_without_token(tmp_path_factory, "emptytoken", "")
    yield bot
    bot.kill()


def saved_text(option: str, value: str, locale: str = "en") -> str:
    """What the learner reads after the change (advanced learners read the bot in Czech)."""
    with speaking(locale):
        label = texts.OPTION_LABELS[option]
        return texts.SETTING_SAVED.format(label=label, value=texts.value_label(option, value))


async def help_(tg: FakeTelegram, user: int) -> list[str]:
    return texts_of(await exchange(tg, user, lambda: tg.send_command(user, "help")))


async def set_level(tg: FakeTelegram, user: int, level: str) -> list[str]:
    return texts_of(await exchange(tg, user, lambda: tg.send_command(user, "level", level)))


# ------------------------------------------------------------------ the shared bot


async def test_commands_are_published_at_start(core_bot: BotProcess, module_tg: FakeTelegram):
    calls = await module_tg.wait_for_method("setMyCommands")
    (czech,) = [c for c in calls if c.params.get("language_code") is None]
    published = {c["command"]: c["description"] for c in czech.params["commands"]}
    with speaking("cs"):
        assert published == texts.COMMANDS


async def test_start_welcomes_and_asks_the_native_language(
    core_bot: BotProcess, module_tg: FakeTelegram
):
    tg, user = module_tg, 2001
    tg.add_user(user, "Olena", language_code="uk")
    calls = await exchange(tg, user, lambda: tg.send_command(user, "start"), count=2)
    welcome, question = texts_of(calls)
    with speaking("uk"):  # a new learner's native language is their Telegram app's
        assert same_text(welcome, texts.welcome("Olena"))
        assert same_text(question, texts.ASK_LANGUAGE)
    buttons = calls[1].params["reply_markup"]["inline_keyboard"]
    assert len([b for row in buttons for b in row]) == len(texts.VALUE_LABELS["language"]) + 1


async def test_help_answers(core_bot: BotProcess, module_tg: FakeTelegram):
    (answer,) = await help_(module_tg, 2002)
    assert same_text(answer, texts.HELP)


async def test_level_advanced_is_saved_and_cached(
    core_bot: BotProcess, module_tg: FakeTelegram, module_redis: RedisServer
):
    user = 2003
    (answer,) = await set_level(module_tg, user, "advanced")
    assert same_text(answer, saved_text("level", "advanced", "cs"))

    # The cache is written before the confirmation is sent: no waiting needed.
    for key in (f"user:{user}:profile", f"user:{user}:settings"):
        ttl = await module_redis.ttl(key)
        assert 0 < ttl <= USER_TTL, f"{key} has TTL {ttl}"
    profile = await module_redis.get_json(f"user:{user}:profile")
    assert profile["level"] == "advanced"
    assert profile["telegram_id"] == user


async def test_sticker_gets_a_hint(core_bot: BotProcess, module_tg: FakeTelegram):
    tg, user = module_tg, 2004
    (answer,) = texts_of(await exchange(tg, user, lambda: tg.send_sticker(user)))
    assert same_text(answer, texts.UNSUPPORTED_MEDIA)


async def test_health_reports_healthy(core_bot: BotProcess):
    status, body = await core_bot.health()
    assert status == 200
    assert body["status"] == "healthy"
    assert body["database"] == "healthy"
    assert body["redis"] == "healthy"
    assert body["service"] == "mluv-me"
    assert body["environment"] == "e2e"


async def test_redis_outage_and_recovery_without_restarting_the_bot(
    core_bot: BotProcess, module_tg: FakeTelegram, module_redis: RedisServer
):
    tg, user, pid = module_tg, 2005, core_bot.pid
    await help_(tg, user)
    assert await module_redis.keys(f"user:{user}:*")

    await module_redis.kill()
    try:
        (answer,) = await help_(tg, user)
        assert same_text(answer, texts.HELP)
        (answer,) = await set_level(tg, user, "intermediate")
        assert same_text(answer, saved_text("level", "intermediate"))
        status, body = await core_bot.health()
        assert (status, body["redis"], body["status"]) == (200, "unavailable", "healthy")
    finally:
        await module_redis.restart()

    await core_bot.wait_health(
        lambda status, body: status == 200 and body["redis"] == "healthy",
        timeout=5,
        what='/health with redis "healthy" after Redis came back',
    )
    assert await module_redis.keys(f"user:{user}:*") == []  # the new Redis starts empty

    (answer,) = await help_(tg, user)
    assert same_text(answer, texts.HELP)
    keys = await module_redis.keys(f"user:{user}:*")
    assert {f"user:{user}:profile", f"user:{user}:settings"} <= set(keys)
    # The change made while Redis was down reached the database and is what gets cached now.
    profile = await module_redis.get_json(f"user:{user}:profile")
    assert profile["level"] == "intermediate"
    assert core_bot.running and core_bot.pid == pid


# ------------------------------------------------------------------ bots of their own


async def test_cache_disabled_writes_nothing_to_redis(_nocache: Stack):
    tg, redis = _nocache.tg, _nocache.redis
    bot = await _nocache.fleet.bots[0].ready()
    user = 2101
    await exchange(tg, user, lambda: tg.send_command(user, "start"), count=2)
    await help_(tg, user)
    (answer,) = await set_level(tg, user, "advanced")
    assert same_text(answer, saved_text("level", "advanced", "cs"))
    # A whole conversation turn too (history, Honzík's answer, speech would all be cached).
    calls = await exchange(tg, user, lambda: tg.send_text(user, "Ahoj, jak se máš?"))
    await tg.wait_for_method("sendVoice", since=calls[0].seq, chat_id=user, timeout=10)

    assert await redis.total_keys() == 0
    status, body = await bot.health()
    assert (status, body["redis"]) == (200, "disabled")


async def test_database_unavailable_makes_health_503(_pg: tuple[Stack, PostgresDatabase]):
    stack, database = _pg
    bot = await stack.fleet.bots[0].ready()
    status, body = await bot.health()
    assert (status, body["database"]) == (200, "healthy")

    await database.drop()
    status, body = await bot.wait_health(
        lambda status, body: status == 503, timeout=10, what="/health 503"
    )
    assert body["status"] == "unhealthy"
    assert body["database"] == "unavailable"
    assert body["redis"] == "healthy"

    # A learner the cache does not know yet gets a kind message, not silence.
    (answer,) = await help_(stack.tg, 2201)
    assert same_text(answer, texts.TEMPORARILY_UNAVAILABLE)  # in the app's language


async def test_missing_bot_token_exits_with_one_line_about_botfather(_no_token: BotProcess):
    assert await _no_token.wait_exit(60) != 0
    lines = [line for line in _no_token.log_text().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "@BotFather" in lines[0]


async def test_empty_bot_token_exits_with_one_line_about_botfather(_empty_token: BotProcess):
    assert await _empty_token.wait_exit(60) != 0
    lines = [line for line in _empty_token.log_text().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "@BotFather" in lines[0]


# ------------------------------------------------------------------ last: stops the shared bot


async def test_sigterm_while_idle_exits_cleanly(core_bot: BotProcess, module_tg: FakeTelegram):
    (answer,) = await help_(module_tg, 2301)
    assert same_text(answer, texts.HELP)
    assert await core_bot.stop(signal.SIGTERM) == 0
    core_bot.assert_no_traceback()
    assert "stopped" in core_bot.log_text().splitlines()[-1]
