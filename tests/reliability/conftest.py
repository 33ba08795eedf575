"""Fixtures for the reliability suite: a few long-lived deployments, started together.

Each deployment is one `python -m bot` with its own Telegram and OpenAI stand-ins and its own
throwaway Redis (so an outage in one scenario cannot leak into another):

- `main`: SQLite, OPENAI_TIMEOUT=2 and OPENAI_MAX_RETRIES=1, and its Redis behind a
  `TcpProxy` (a network partition: Redis keeps its data but the bot cannot reach it);
  OpenAI faults, Telegram flood control, bad input and partitions run against it, each test
  with its own learners.
- `outage`: SQLite; its Redis is killed and restarted under traffic.
- `pg`: PostgreSQL through a `TcpProxy` that the test cuts and restores.

All of them live for the session on the session's event loop (the stand-ins run in this
process). The bots are spawned together before the first test that needs one, so their
start-ups (seconds of CPU-bound imports each) overlap; tests then `await bot.ready()`.
Every async test and fixture here uses `loop_scope="session"`.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from tests.conftest import missing_service
from tests.e2e import harness
from tests.e2e.harness import PostgresDatabase, Stack
from tests.support import services

from .proxy import TcpProxy
from .support import Deployment, echo_reply

HERE = Path(__file__).parent
DEPLOYMENTS = ("_main", "_outage", "_pg")
_STARTED = pytest.StashKey[float]()
OURS: list[Deployment] = []


# ------------------------------------------------------------------ reporting


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = time.monotonic()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """A failing test's report gets the log tail of every bot that was live during it."""
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


# ------------------------------------------------------------------ start-up


@pytest.fixture(scope="session", autouse=True)
def _services_and_early_spawn(request: pytest.FixtureRequest) -> Iterator[None]:
    """Check for redis-server, then spawn every deployment a selected test uses, at once.

    A deployment's error is not raised here but by the tests that use it (pytest caches it).
    """
    try:
        services.redis_binary()
    except services.ServiceUnavailable as exc:
        missing_service("redis-server", exc)
    used = {
        name
        for item in request.session.items
        if HERE in Path(str(item.path)).parents
        for name in getattr(item, "fixturenames", ())
    }
    for name in DEPLOYMENTS:
        if name in used:
            with contextlib.suppress(Exception, pytest.skip.Exception, pytest.fail.Exception):
                request.getfixturevalue(name)
    yield
    for deployment in OURS:  # stop them in parallel before each fixture waits for its own
        if deployment.bot.running and deployment.bot.signalled is None:
            deployment.bot.send_signal(signal.SIGTERM)


def _deployment(stack: Stack, bot: harness.BotProcess, db_url: str) -> Deployment:
    deployment = Deployment(bot=bot, tg=stack.tg, oa=stack.oa, redis=stack.redis, db_url=db_url)
    OURS.append(deployment)
    return deployment


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _main(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    stack = Stack(tmp_path_factory.mktemp("main"))
    async with TcpProxy(stack.redis.port) as redis_proxy, stack:
        stack.oa.script_chat(echo_reply)
        env = {
            "OPENAI_TIMEOUT": "2",
            "OPENAI_MAX_RETRIES": "1",
            "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
        }
        bot = stack.fleet.spawn("main", env=env)
        deployment = _deployment(stack, bot, bot.env["DATABASE_URL"])
        deployment.proxy = redis_proxy
        yield deployment


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _outage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    async with Stack(tmp_path_factory.mktemp("outage")) as stack:
        stack.oa.script_chat(echo_reply)
        bot = stack.fleet.spawn("outage")
        yield _deployment(stack, bot, bot.env["DATABASE_URL"])


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _pg(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    database = PostgresDatabase()
    try:
        await database.create()
    except Exception as exc:
        missing_service("PostgreSQL", exc)
    assert database.admin_url is not None
    admin = make_url(database.admin_url)
    try:
        async with TcpProxy(admin.port or 5432, target_host=admin.host or "127.0.0.1") as proxy:
            via_proxy = make_url(database.url).set(host="127.0.0.1", port=proxy.port)
            url = via_proxy.render_as_string(hide_password=False)
            async with Stack(tmp_path_factory.mktemp("pg"), database_url=url) as stack:
                stack.oa.script_chat(echo_reply)
                bot = stack.fleet.spawn("pg")
                deployment = _deployment(stack, bot, database.url)
                deployment.proxy = proxy
                yield deployment
    finally:
        await database.drop()


# ------------------------------------------------------------------ per test


@pytest_asyncio.fixture(loop_scope="session")
async def main(_main: Deployment) -> AsyncIterator[Deployment]:
    """The shared bot, ready, with no OpenAI fault or delay left over from another test."""
    await _main.bot.ready()
    yield _main
    _main.oa.recover()
    _main.oa.delay = {}
    assert _main.proxy is not None
    await _main.proxy.restore()


@pytest_asyncio.fixture(loop_scope="session")
async def outage(_outage: Deployment) -> Deployment:
    await _outage.bot.ready()
    return _outage


@pytest_asyncio.fixture(loop_scope="session")
async def pg(_pg: Deployment) -> AsyncIterator[Deployment]:
    await _pg.bot.ready()
    yield _pg
    assert _pg.proxy is not None
    await _pg.proxy.restore()
