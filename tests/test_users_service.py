"""`UserService` on aiosqlite (migrated schema) with a fakeredis cache."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiogram.types import User as TelegramUser
from fakeredis import FakeAsyncRedis
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.cache import Cache, CacheTTLs, Family, Keys
from bot.db.engine import create_sessionmaker
from bot.db.models import User, UserSettings
from bot.domain import OPTIONS, LearnerSettings, Level, NativeLanguage, Profile, Style
from bot.services.users import UserService, is_learner
from tests.support.updates import learner

KEYS = Keys(CacheTTLs())


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def users(cache: Cache) -> UserService:
    return UserService(cache, KEYS)


class SqlLog:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)


@pytest.fixture
def sql(engine: AsyncEngine) -> Iterator[SqlLog]:
    log = SqlLog()
    event.listen(engine.sync_engine, "before_cursor_execute", log)
    yield log
    event.remove(engine.sync_engine, "before_cursor_execute", log)


async def rows(
    sessions: async_sessionmaker[AsyncSession], telegram_id: int
) -> tuple[User, UserSettings]:
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
        assert user is not None
        settings = await session.scalar(select(UserSettings).where(UserSettings.user_id == user.id))
        assert settings is not None
        return user, settings


async def cached_profile(redis: FakeAsyncRedis, telegram_id: int) -> Profile:
    blob = await redis.get(f"user:{telegram_id}:profile")
    assert blob is not None
    return Profile.model_validate_json(blob)


async def cached_settings(redis: FakeAsyncRedis, telegram_id: int) -> LearnerSettings:
    blob = await redis.get(f"user:{telegram_id}:settings")
    assert blob is not None
    return LearnerSettings.model_validate_json(blob)


@pytest.mark.parametrize(
    ("language_code", "expected"),
    [("uk", NativeLanguage.UK), ("de", NativeLanguage.DE), ("fr", NativeLanguage.EN), (None, "en")],
)
async def test_first_contact_creates_the_learner_with_their_language(
    users: UserService,
    sessions: async_sessionmaker[AsyncSession],
    fake_redis: FakeAsyncRedis,
    language_code: str | None,
    expected: str,
) -> None:
    tg_user = learner(2001, language_code=language_code, username="olena", first_name="Olena")
    async with sessions() as session:
        profile, settings = await users.context(session, tg_user)

    assert profile.telegram_id == 2001
    assert profile.native_language == expected
    assert (profile.username, profile.first_name) == ("olena", "Olena")
    assert profile.level is Level.BEGINNER
    assert profile.onboarded is False
    assert settings == LearnerSettings()

    user, settings_row = await rows(sessions, 2001)
    assert profile.id == user.id
    assert (user.native_language, user.level, user.onboarded) == (expected, "beginner", False)
    assert (settings_row.conversation_style, settings_row.voice_replies) == ("friendly", True)
    assert await cached_profile(fake_redis, 2001) == profile
    assert await cached_settings(fake_redis, 2001) == settings
    for key in ("user:2001:profile", "user:2001:settings"):
        assert 0 < await fake_redis.ttl(key) <= 3600


async def test_second_context_call_is_a_cache_hit_without_sql(
    users: UserService, sessions: async_sessionmaker[AsyncSession], sql: SqlLog, cache: Cache
) -> None:
    tg_user = learner(2002)
    async with sessions() as session:
        first = await users.context(session, tg_user)
    assert any("INSERT INTO users" in s for s in sql.statements)

    sql.statements.clear()
    async with sessions() as session:
        second = await users.context(session, tg_user)

    assert second == first
    assert sql.statements == []
    assert cache.counters.hits[Family.USER] == 2  # profile and settings, one MGET
    assert cache.counters.misses[Family.USER] == 2


async def test_known_learner_missing_from_the_cache_is_read_not_recreated(
    users: UserService,
    sessions: async_sessionmaker[AsyncSession],
    fake_redis: FakeAsyncRedis,
    sql: SqlLog,
) -> None:
    async with sessions() as session:
        first, _ = await users.context(session, learner(2003))
    await fake_redis.flushdb()
    sql.statements.clear()

    async with sessions() as session:
        again, _ = await users.context(session, learner(2003))

    assert again == first
    assert not any(s.lstrip().startswith("INSERT") for s in sql.statements)
    assert await cached_profile(fake_redis, 2003) == first


async def test_changed_telegram_name_is_written_to_db_and_cache(
    users: UserService, sessions: async_sessionmaker[AsyncSession], fake_redis: FakeAsyncRedis
) -> None:
    async with sessions() as session:
        before, _ = await users.context(session, learner(2004, username="old", first_name="Ann"))

    async with sessions() as session:
        after, _ = await users.context(session, learner(2004, username="new", first_name="Anna"))

    assert (after.id, after.username, after.first_name) == (before.id, "new", "Anna")
    user, _ = await rows(sessions, 2004)
    assert (user.username, user.first_name) == ("new", "Anna")
    assert await cached_profile(fake_redis, 2004) == after

    # A learner who removes their username is followed too.
    async with sessions() as session:
        gone, _ = await users.context(session, learner(2004, username=None, first_name="Anna"))
    assert gone.username is None
    assert (await rows(sessions, 2004))[0].username is None
    assert (await cached_profile(fake_redis, 2004)).username is None


async def test_change_commits_first_then_overwrites_both_cached_entries(
    users: UserService,
    sessions: async_sessionmaker[AsyncSession],
    fake_redis: FakeAsyncRedis,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with sessions() as session:
        profile, _ = await users.context(session, learner(2005))

    seen_in_db_at_put: list[tuple[str, str]] = []
    original_put_many = cache.put_many

    async def put_many(entries: Any) -> None:
        # Another connection must already see the change when the cache is overwritten.
        user, settings_row = await rows(sessions, 2005)
        seen_in_db_at_put.append((user.level, settings_row.conversation_style))
        await original_put_many(entries)

    monkeypatch.setattr(cache, "put_many", put_many)

    async with sessions() as session:
        new_profile, new_settings = await users.change(
            session, profile, OPTIONS["level"], "advanced"
        )
    assert new_profile.level is Level.ADVANCED
    assert seen_in_db_at_put == [("advanced", "friendly")]
    assert (await cached_profile(fake_redis, 2005)).level is Level.ADVANCED

    async with sessions() as session:
        _, new_settings = await users.change(session, new_profile, OPTIONS["style"], "tutor")
    assert new_settings.conversation_style is Style.TUTOR
    assert seen_in_db_at_put[-1] == ("advanced", "tutor")
    assert (await cached_settings(fake_redis, 2005)).conversation_style is Style.TUTOR
    assert (await cached_profile(fake_redis, 2005)).level is Level.ADVANCED

    async with sessions() as session:
        _, voice_off = await users.change(session, new_profile, OPTIONS["voice"], False)
    assert voice_off.voice_replies is False
    assert (await rows(sessions, 2005))[1].voice_replies is False

    # The next context call serves the changed values straight from the cache.
    async with sessions() as session:
        profile_now, settings_now = await users.context(session, learner(2005))
    assert (profile_now.level, settings_now.conversation_style) == (Level.ADVANCED, Style.TUTOR)


async def test_a_change_the_database_refuses_leaves_the_cache_alone(
    users: UserService, sessions: async_sessionmaker[AsyncSession], fake_redis: FakeAsyncRedis
) -> None:
    async with sessions() as session:
        profile, _ = await users.context(session, learner(2006))

    async with sessions() as session:
        with pytest.raises(IntegrityError):
            await users.update(session, profile, {"level": "expert"}, on_profile=True)

    assert (await rows(sessions, 2006))[0].level == "beginner"
    assert await cached_profile(fake_redis, 2006) == profile


async def test_finish_onboarding_is_stored_and_cached(
    users: UserService, sessions: async_sessionmaker[AsyncSession], fake_redis: FakeAsyncRedis
) -> None:
    async with sessions() as session:
        profile, _ = await users.context(session, learner(2007))
    async with sessions() as session:
        done = await users.finish_onboarding(session, profile)

    assert done.onboarded is True
    assert (await rows(sessions, 2007))[0].onboarded is True
    assert (await cached_profile(fake_redis, 2007)).onboarded is True


async def test_concurrent_first_contacts_create_exactly_one_learner(
    sessions: async_sessionmaker[AsyncSession], fake_redis: FakeAsyncRedis, sql: SqlLog
) -> None:
    # Two replicas (own Cache, so no in-process single-flight) see the same new learner at once.
    replicas = [UserService(Cache(fake_redis), KEYS), UserService(Cache(fake_redis), KEYS)]
    both_looked = asyncio.Barrier(2)

    for service in replicas:
        original = service._load
        looked: list[int] = []

        async def gated(
            session: AsyncSession, telegram_id: int, original: Any = original, looked: Any = looked
        ) -> User | None:
            row = await original(session, telegram_id)
            if not looked:
                looked.append(1)
                assert row is None
                # Neither inserts before both have seen that the learner does not exist yet.
                await asyncio.wait_for(both_looked.wait(), 10)
            return row

        service._load = gated  # type: ignore[method-assign]

    async def first_contact(service: UserService) -> Profile:
        async with sessions() as session:
            profile, _ = await service.context(session, learner(2008))
            return profile

    a, b = await asyncio.wait_for(asyncio.gather(*(first_contact(s) for s in replicas)), 20)

    assert a == b
    # Both really raced: each tried to insert, one lost on the unique telegram_id.
    assert sum(s.startswith("INSERT INTO users") for s in sql.statements) == 2
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1
        assert await session.scalar(select(func.count()).select_from(UserSettings)) == 1
    assert await cached_profile(fake_redis, 2008) == a


async def test_the_level_check_constraint_rejects_bad_values(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        session.add(User(telegram_id=2009, level="expert", native_language="en"))
        with pytest.raises(IntegrityError, match="level"):
            await session.commit()

    async with sessions() as session:
        session.add(User(telegram_id=2010, level="beginner", native_language="xx"))
        with pytest.raises(IntegrityError):
            await session.commit()

    async with sessions() as session:
        user = User(telegram_id=2011, level="native", native_language="vi")
        user.settings = UserSettings(voice_speed="ludicrous")
        session.add(user)
        with pytest.raises(IntegrityError):
            await session.commit()

    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


def test_bots_and_telegram_service_accounts_are_not_learners() -> None:
    assert is_learner(learner(2012))
    assert not is_learner(TelegramUser(id=2013, is_bot=True, first_name="Bot"))
    assert not is_learner(TelegramUser(id=777000, is_bot=False, first_name="Telegram"))
    assert not is_learner(TelegramUser(id=1087968824, is_bot=False, first_name="Group"))


async def test_context_takes_the_learners_entries_read_in_the_callers_round_trip(
    users: UserService,
    sessions: async_sessionmaker[AsyncSession],
    fake_redis: FakeAsyncRedis,
    sql: SqlLog,
    cache: Cache,
) -> None:
    names = users.context_names(2014)
    assert names == ["user:2014:profile", "user:2014:settings"]
    async with sessions() as session:
        cache.prefetch(names, [None, None])
        first = await users.context(session, learner(2014))

    blobs = await cache.batch(lambda pipe: pipe.mget(names))
    assert blobs is not None
    sql.statements.clear()
    reads_before = cache.counters.hits[Family.USER]
    async with sessions() as session:
        cache.prefetch(names, blobs[0])
        again = await users.context(session, learner(2014))

    assert again == first
    assert sql.statements == []
    assert cache.counters.hits[Family.USER] == reads_before + 2
