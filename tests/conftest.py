"""Shared fixtures: an offline dispatcher (aiosqlite + fakeredis) and the real services.

The real Redis and PostgreSQL come from tests/support/services.py: the machine's
(TEST_REDIS_URL, TEST_DATABASE_URL), else throwaway servers from dev dependencies. Set
MLUV_REQUIRE_SERVICES=1 (CI does) to make a test that still cannot have one fail, not skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Update
from fakeredis import FakeAsyncRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ai import create_openai
from bot.app import Resources, build_dispatcher
from bot.cache import Cache, keys_for
from bot.config import Config
from bot.db import migrate
from bot.db.engine import create_engine, create_sessionmaker
from bot.i18n import speaking
from bot.metrics import Metrics
from bot.middlewares import InFlight
from tests.support import services
from tests.support.recording import RecordingSession
from tests.support.world import World

TEST_TOKEN = "123456:TEST-token-for-tests"
REQUIRE_SERVICES = os.environ.get("MLUV_REQUIRE_SERVICES") == "1"


def missing_service(what: str, error: BaseException) -> NoReturn:
    """Skip the test (fail it under MLUV_REQUIRE_SERVICES=1): `what` cannot be had."""
    if isinstance(error, services.ServiceUnavailable):
        message = str(error)
    else:
        message = f"{what} is not reachable: {error!r}"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "bot_token": TEST_TOKEN,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'mluv.db'}",
        "redis_url": services.CONFIGURED_REDIS_URL,
        "admin_ids": "999",
        "openai_api_key": "test-key",
    }
    values.update(overrides)
    return Config(_env_file=None, **values)


@pytest.fixture(autouse=True)
def learner_locale() -> Iterator[None]:
    """`texts.X` in a test reads as the default test learner sees it: an English-speaking
    beginner (see `bot.i18n.locale_for`); a test about another learner wraps its own reads
    in `speaking(...)`."""
    with speaking("en"):
        yield


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
async def fake_redis() -> AsyncIterator[FakeAsyncRedis]:
    redis = FakeAsyncRedis()
    yield redis
    await redis.aclose()


@pytest.fixture
async def engine(config: Config) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(config.database_url)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def cache(fake_redis: FakeAsyncRedis) -> Cache:
    return Cache(fake_redis)


def make_resources(config: Config, engine: AsyncEngine, cache: Cache) -> Resources:
    inflight = InFlight()
    return Resources(
        config=config,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        cache=cache,
        openai=create_openai(config),
        inflight=inflight,
        metrics=Metrics(cache.counters, lambda: inflight.count),
    )


@contextlib.asynccontextmanager
async def dispatcher_against(
    openai_url: str, tmp_path: Path, engine: AsyncEngine, cache: Cache
) -> AsyncIterator[Dispatcher]:
    """The real dispatcher talking to an OpenAI stand-in, without client retries: a 200 is
    never retried anyway, and a failure is then immediate."""
    config = make_config(tmp_path, openai_base_url=openai_url, openai_max_retries=0)
    resources = make_resources(config, engine, cache)
    try:
        yield build_dispatcher(resources)
    finally:
        await resources.openai.close()


@pytest.fixture
def resources(config: Config, engine: AsyncEngine, cache: Cache) -> Resources:
    return make_resources(config, engine, cache)


@pytest.fixture
def dp(resources: Resources) -> Dispatcher:
    return build_dispatcher(resources)


@pytest.fixture
def recorder() -> RecordingSession:
    return RecordingSession()


@pytest.fixture
def bot(recorder: RecordingSession) -> Bot:
    return Bot(TEST_TOKEN, session=recorder)


W = TypeVar("W", bound=World)
WorldMaker = Callable[[type[W]], W]


@pytest.fixture
def make_world(
    dp: Dispatcher,
    bot: Bot,
    resources: Resources,
    recorder: RecordingSession,
    fake_redis: FakeAsyncRedis,
) -> WorldMaker[Any]:
    """A module's own `World` (a subclass with its shortcuts) over this test's dispatcher."""

    def make(kind: type[W]) -> W:
        return kind(dp, bot, resources, recorder, fake_redis, keys_for(resources.config))

    return make


@pytest.fixture
def feed(dp: Dispatcher, bot: Bot) -> Any:
    async def feed(update: Update) -> Any:
        return await dp.feed_update(bot, update)

    return feed


def pytest_sessionfinish() -> None:
    services.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which Redis and PostgreSQL the session used, if it used any."""
    for line in services.summary():
        terminalreporter.write_line(f"services: {line}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The session's Redis (see tests/support/services.py); the test skips if there is none."""
    try:
        return services.redis_url()
    except services.ServiceUnavailable as exc:
        missing_service("Redis", exc)


@pytest.fixture
async def real_redis(redis_url: str) -> AsyncIterator[Redis]:
    """The session's Redis, on a database number of the tests' own, emptied afterwards."""
    redis = Redis.from_url(redis_url)
    try:
        await redis.ping()
    except Exception as exc:
        await redis.aclose()
        missing_service("Redis", exc)
    yield redis
    await redis.flushdb()
    await redis.aclose()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The session's PostgreSQL (see tests/support/services.py); skips if there is none."""
    try:
        return services.postgres_url()
    except services.ServiceUnavailable as exc:
        missing_service("PostgreSQL", exc)


@pytest.fixture
async def postgres_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh schema-less database on the session's PostgreSQL, dropped afterwards."""
    import asyncpg

    admin_dsn = postgres_admin_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"mluv_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=5)
    except Exception as exc:
        missing_service("PostgreSQL", exc)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
