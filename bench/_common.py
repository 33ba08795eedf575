"""Shared machinery for the benchmarks: results, services, the bot, and what we count.

Every benchmark uses the machine's real Redis on one database of its own (12 unless
BENCH_REDIS_URL says otherwise; flushed before and after) and either a throwaway SQLite file
or a throwaway PostgreSQL database (created and dropped). The bot is built only through its
composition root (`bot.app.Resources.create`, `bot.app.build_dispatcher`); nothing under bot/
is patched. Redis traffic is counted on the wire of redis-py's connections, SQL with
SQLAlchemy's engine events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Resources, build_dispatcher
from bot.config import Config
from bot.db import migrate
from tests.support.recording import RecordingSession

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PG_ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TOKEN = "123456:BENCH-token-for-benchmarks"
DEADLINE = 600.0


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Result:
    """One target and what a run measured against it.

    `met` is None when the measurement could not be taken (the verdict is "not available");
    `detail` says what the number is made of, and for a missed target, why.
    """

    target: str
    measured: str
    met: bool | None
    detail: str = ""

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "not available"
        return "met" if self.met else "missed"


Measure = Callable[[bool], Awaitable[list[Result]]]


def results_table(results: Sequence[Result]) -> str:
    return table(
        [(r.target, r.measured, r.verdict) for r in results], ["target", "measured", "verdict"]
    )


def cli(measure: Measure) -> None:
    """The command line of one benchmark: `--quick` (a few seconds, for CI) and `--json FILE`
    (the results as data, for bench.report). Exits non-zero only if the benchmark broke."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a few seconds; checks it runs")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    async def bounded() -> list[Result]:
        async with asyncio.timeout(DEADLINE):
            return await measure(args.quick)

    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    results = asyncio.run(bounded())
    if errors.first is not None:
        raise RuntimeError(f"the bot logged an error while measured: {errors.first}")
    print(results_table(results))
    for result in results:
        if result.detail:
            print(f"\n- {result.target}: {result.detail}")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], ensure_ascii=False))
    sys.exit(0)


class ErrorLog(logging.Handler):
    """Notes the first error anything logs: a bot that fails an update is not measured."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.first is None:
            self.first = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                self.first += f" ({record.exc_info[1]!r})"


# ---------------------------------------------------------------- services


async def flush_redis(url: str = REDIS_URL) -> None:
    """Empty the benchmarks' Redis database, and only that one."""
    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def clean_redis() -> AsyncIterator[None]:
    await flush_redis()
    try:
        yield
    finally:
        await flush_redis()


@contextlib.asynccontextmanager
async def postgres_database(prefix: str = "bench") -> AsyncIterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy asyncpg URL), dropped afterwards."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def bench_config(workdir: Path, **overrides: Any) -> Config:
    """A configuration for an offline bot: SQLite in `workdir`, the benchmarks' Redis."""
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "database_url": f"sqlite+aiosqlite:///{workdir / 'mluv.db'}",
        "redis_url": REDIS_URL,
        "admin_ids": "999",
        "openai_api_key": "test-key",
    }
    values.update(overrides)
    return Config(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Stack:
    """A dispatcher built by the composition root, with its resources and a recording bot."""

    config: Config
    resources: Resources
    dp: Dispatcher
    bot: Bot
    session: TimedSession

    async def feed(self, update: Any) -> Any:
        return await self.dp.feed_update(self.bot, update)

    async def feed_all(self, batch: Iterable[Any]) -> None:
        """Feed a batch at once, as the bot hands a fetched page to concurrent tasks."""
        await asyncio.gather(*(self.feed(update) for update in batch))


@contextlib.asynccontextmanager
async def stack(**overrides: Any) -> AsyncIterator[Stack]:
    """Migrated database (a temporary SQLite file unless `database_url` is given), the
    benchmarks' Redis, and the dispatcher `bot.app.build_dispatcher` makes of them."""
    with tempfile.TemporaryDirectory(prefix="mluv-bench-") as tmp:
        config = bench_config(Path(tmp), **overrides)
        resources = Resources.create(config)
        try:
            await migrate.upgrade(resources.engine)
            session = TimedSession()
            bot = Bot(TOKEN, session=session)
            yield Stack(config, resources, build_dispatcher(resources), bot, session)
        finally:
            await resources.close()


# ---------------------------------------------------------------- Telegram side


class TimedSession(RecordingSession):
    """RecordingSession that also notes when each request was made (perf_counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[tuple[float, TelegramMethod[Any]]] = []

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> TelegramType:
        self.times.append((time.perf_counter(), method))
        return await super().make_request(bot, method, timeout)

    def first(self, kind: type, chat_id: int, since: float = 0.0) -> float | None:
        for moment, method in self.times:
            if moment >= since and isinstance(method, kind) and method.chat_id == chat_id:  # type: ignore[attr-defined]
                return moment
        return None

    def clear(self) -> None:
        self.requests.clear()
        self.times.clear()


# ---------------------------------------------------------------- counting Redis and SQL


def _command_names(packed: bytes | str | Iterable[bytes]) -> list[str]:
    """The command names in one packed write (RESP arrays of bulk strings)."""
    if isinstance(packed, str):
        data = packed.encode()
    elif isinstance(packed, bytes):
        data = packed
    else:
        data = b"".join(bytes(chunk) for chunk in packed)
    names: list[str] = []
    at = 0
    while at < len(data):
        end = data.index(b"\r\n", at)
        parts = int(data[at + 1 : end])
        at = end + 2
        for index in range(parts):
            end = data.index(b"\r\n", at)
            length = int(data[at + 1 : end])
            at = end + 2
            if index == 0:
                names.append(data[at : at + length].decode().upper())
            at += length + 2
    return names


class RedisWire:
    """Counts what this process writes to Redis while active.

    Every `send_packed_command` of a redis-py connection is one round trip (a pipeline or
    MULTI/EXEC block is written at once, so it is one); the commands in it are counted one by
    one as they go on the wire (MULTI and EXEC included, a script's EVAL/EVALSHA as one).
    """

    def __init__(self) -> None:
        self.trips: list[list[str]] = []
        self._original = AbstractConnection.send_packed_command

    def __enter__(self) -> RedisWire:
        original, trips = self._original, self.trips

        async def send_packed_command(
            connection: AbstractConnection, command: Any, check_health: bool = True
        ) -> None:
            trips.append(_command_names(command))
            await original(connection, command, check_health)

        AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc_info: object) -> None:
        AbstractConnection.send_packed_command = self._original  # type: ignore[method-assign]

    def take(self) -> list[list[str]]:
        trips = list(self.trips)
        self.trips.clear()
        return trips


def round_trips(trips: Sequence[object]) -> str:
    return f"{len(trips)} round trip" + ("" if len(trips) == 1 else "s")


def describe_trips(trips: Sequence[Sequence[str]]) -> str:
    """`SET, EVALSHA, MULTI+INCR+EXPIRE+EXEC` for three round trips."""
    return ", ".join("+".join(names) for names in trips) or "none"


class SqlCounter:
    """Every statement the engine sends (before_cursor_execute)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[str] = []

        def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            self.statements.append(" ".join(statement.split()))

        event.listen(engine.sync_engine, "before_cursor_execute", before)

    def take(self) -> list[str]:
        statements = list(self.statements)
        self.statements.clear()
        return statements


# ---------------------------------------------------------------- OpenAI stand-in scripts


def last_user_text(body: dict[str, Any]) -> str:
    return str(next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user"))


def reply_per_request(body: dict[str, Any]) -> dict[str, Any]:
    """Like a real model: a different request gets a different reply (so TTS differs too).

    The reply quotes the learner's words, so a benchmark can tell which message it answers.
    """
    digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
    text = last_user_text(body)
    return {
        "reply": f"{HEARD}{text[:60]} ({digest[:8]})",
        "corrected_text": text,
        "mistakes": [
            {
                "original": "jak se mas",
                "corrected": "jak se máš",
                "explanation": "háček",
                "category": "spelling",
            }
        ],
        "score": 80,
        "tip": None,
        "new_words": [{"word": "tramvaj", "translation": "tram", "example": "Jedu tramvají."}],
    }


HEARD = "Super! Slyšel jsem: "


# ---------------------------------------------------------------- numbers


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


def table(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
