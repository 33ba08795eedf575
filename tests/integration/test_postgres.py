"""Migrations and the user service on the machine's PostgreSQL (a throwaway database each)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fakeredis import FakeAsyncRedis
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot import texts
from bot.app import build_dispatcher
from bot.cache import Cache, CacheTTLs, Keys
from bot.db import migrate
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Base, User, UserSettings
from bot.domain import OPTIONS, Level, NativeLanguage, Profile
from bot.services.users import UserService
from tests.conftest import make_config, make_resources
from tests.e2e._webhook import echo_reply
from tests.e2e.harness import same_text
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.support.updates import learner
from tests.test_runtime import Polling, inbox_rows, stored

pytestmark = pytest.mark.integration

TABLES = {"users", "user_settings", "messages", "daily_stats", "saved_words", "inbox", "reminders"}
HEAD = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
KEYS = Keys(CacheTTLs())
BIG_TELEGRAM_ID = 7_000_000_000  # beyond a 32-bit integer


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}")
    yield engine
    await engine.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(_tables)


async def differences(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_differences)


async def versions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())


async def assert_up_down_up(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    assert await tables(engine) == TABLES | {"alembic_version"}
    assert await versions(engine) == [HEAD]
    assert await differences(engine) == []

    await migrate.downgrade(engine, "base")
    assert await tables(engine) - {"alembic_version"} == set()
    assert await versions(engine) == []

    await migrate.upgrade(engine)
    assert await tables(engine) == TABLES | {"alembic_version"}
    assert await versions(engine) == [HEAD]
    assert await differences(engine) == []


async def test_postgres_migrates_up_down_and_up_and_matches_the_models(pg: AsyncEngine) -> None:
    assert pg.dialect.name == "postgresql"
    await assert_up_down_up(pg)


async def test_sqlite_migrates_up_down_and_up_and_matches_the_models(sqlite: AsyncEngine) -> None:
    await assert_up_down_up(sqlite)


async def test_model_drift_would_be_detected(pg: AsyncEngine) -> None:
    # The comparison is not vacuous: a schema missing a column shows up as a difference.
    await migrate.upgrade(pg)
    async with pg.begin() as conn:
        await conn.execute(text("ALTER TABLE saved_words DROP COLUMN example"))
    diffs = await differences(pg)
    assert any(d[0] == "add_column" and d[3].name == "example" for d in diffs), diffs


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO users (telegram_id, native_language, level, onboarded, current_streak, "
        "best_streak) VALUES (1, 'en', 'expert', false, 0, 0)",
        "INSERT INTO users (telegram_id, native_language, level, onboarded, current_streak, "
        "best_streak) VALUES (1, 'xx', 'beginner', false, 0, 0)",
    ],
    ids=["level", "native_language"],
)
async def test_postgres_check_constraints_reject_bad_values(
    pg: AsyncEngine, statement: str
) -> None:
    await migrate.upgrade(pg)
    with pytest.raises(IntegrityError, match="ck_users_"):
        async with pg.begin() as conn:
            await conn.execute(text(statement))
    async with pg.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM users")) == 0


async def test_bad_settings_values_are_rejected_on_postgres(pg: AsyncEngine) -> None:
    await migrate.upgrade(pg)
    async with create_sessionmaker(pg)() as session:
        user = User(telegram_id=1, level=Level.BEGINNER.value, native_language="en")
        user.settings = UserSettings(character="batman")
        session.add(user)
        with pytest.raises(IntegrityError, match="ck_user_settings_character_allowed"):
            await session.commit()


async def test_concurrent_upgrades_from_three_replicas(postgres_url: str) -> None:
    engines = [create_engine(postgres_url) for _ in range(3)]
    try:
        await asyncio.wait_for(asyncio.gather(*(migrate.upgrade(e) for e in engines)), 30)
        assert await versions(engines[0]) == [HEAD]
        assert await tables(engines[1]) == TABLES | {"alembic_version"}
        assert await differences(engines[2]) == []
    finally:
        for engine in engines:
            await engine.dispose()


async def test_user_service_on_postgres(pg: AsyncEngine) -> None:
    await migrate.upgrade(pg)
    sessions = create_sessionmaker(pg)
    redis = FakeAsyncRedis()
    users = UserService(Cache(redis), KEYS)
    try:
        tg_user = learner(BIG_TELEGRAM_ID, language_code="uk", username="olena")
        async with sessions() as session:
            profile, settings = await users.context(session, tg_user)
        assert profile.telegram_id == BIG_TELEGRAM_ID
        assert profile.native_language is NativeLanguage.UK
        assert settings.voice_replies is True

        async with sessions() as session:
            row = await session.scalar(select(User).where(User.telegram_id == BIG_TELEGRAM_ID))
            assert row is not None and row.id == profile.id
            assert row.username == "olena"
            count = await session.scalar(
                select(func.count()).select_from(UserSettings).where(UserSettings.user_id == row.id)
            )
            assert count == 1

        async with sessions() as session:
            changed, _ = await users.change(session, profile, OPTIONS["level"], "intermediate")
        assert changed.level is Level.INTERMEDIATE
        cached = Profile.model_validate_json(await redis.get(f"user:{BIG_TELEGRAM_ID}:profile"))
        assert cached == changed
        async with sessions() as session:
            level = await session.scalar(
                select(User.level).where(User.telegram_id == BIG_TELEGRAM_ID)
            )
            assert level == "intermediate"
    finally:
        await redis.aclose()


async def test_concurrent_first_contacts_on_postgres_create_one_learner(pg: AsyncEngine) -> None:
    await migrate.upgrade(pg)
    sessions = create_sessionmaker(pg)
    redis = FakeAsyncRedis()
    replicas = [UserService(Cache(redis), KEYS), UserService(Cache(redis), KEYS)]
    both_looked = asyncio.Barrier(2)

    for service in replicas:
        looked: list[int] = []

        async def gated(
            session: AsyncSession,
            telegram_id: int,
            original: Any = service._load,
            looked: list[int] = looked,
        ) -> User | None:
            row = await original(session, telegram_id)
            if not looked:
                looked.append(1)
                await asyncio.wait_for(both_looked.wait(), 10)
            return row

        service._load = gated  # type: ignore[method-assign]

    async def first_contact(service: UserService) -> Profile:
        async with sessions() as session:
            profile, _ = await service.context(session, learner(BIG_TELEGRAM_ID + 1))
            return profile

    try:
        a, b = await asyncio.wait_for(asyncio.gather(*(first_contact(s) for s in replicas)), 20)
        assert a == b
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(User)) == 1
            assert await session.scalar(select(func.count()).select_from(UserSettings)) == 1
    finally:
        await redis.aclose()


async def test_nul_in_a_text_and_a_first_name_is_dropped_on_postgres(
    pg: AsyncEngine, tmp_path: Path
) -> None:
    """PostgreSQL refuses NUL in text: once, it failed every update of such a learner."""
    await migrate.upgrade(pg)
    async with FakeTelegram() as telegram, FakeOpenAI() as oa:
        oa.script_chat(echo_reply)
        config = make_config(tmp_path, openai_base_url=oa.base_url)
        resources = make_resources(config, pg, Cache(FakeAsyncRedis()))
        session = AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url))
        async with Bot(DEFAULT_TOKEN, session=session) as bot:
            telegram.add_user(BIG_TELEGRAM_ID, "An\x00na")
            telegram.send_text(BIG_TELEGRAM_ID, "Ahoj,\x00 jak se máš?")
            telegram.send_command(BIG_TELEGRAM_ID, "help")
            polling = Polling(build_dispatcher(resources), bot, pg, resources)
            polling.start()
            await telegram.wait_for_method("sendMessage", 2, chat_id=BIG_TELEGRAM_ID, timeout=20)
            await polling.finish()
        await resources.openai.close()
        answer, help_text = telegram.sent_messages(BIG_TELEGRAM_ID)
    assert "Ahoj, jak se máš?" in answer
    assert same_text(help_text, texts.HELP), "and their next update too"
    assert await stored(pg, BIG_TELEGRAM_ID) == ("Anna", [("Ahoj, jak se máš?", True)])
    assert await inbox_rows(pg) == 0
