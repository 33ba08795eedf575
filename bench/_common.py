"""Shared machinery for the benchmarks: services, the dispatcher, and what we count.

Every benchmark uses the machine's real Redis on database 12 only (flushed before and after)
and either a throwaway SQLite file or a throwaway PostgreSQL database (created and dropped).
Nothing under bot/ or tests/ is modified: the bot's objects are built exactly as the
composition root builds them (`bot.app.build_dispatcher`), and we only observe them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Message, PhotoSize
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import Resources, build_dispatcher
from bot.cache import create_cache
from bot.config import Config
from bot.db import migrate
from bot.db.engine import create_engine
from tests.conftest import TEST_TOKEN, make_config, make_resources
from tests.support.recording import RecordingSession

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PG_ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


# ---------------------------------------------------------------- services


async def flush_redis() -> None:
    """Empty the benchmarks' Redis database (12), and only that one."""
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def redis_db12() -> AsyncIterator[None]:
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
    """The tests' configuration, pointed at Redis database 12."""
    values: dict[str, Any] = {"redis_url": REDIS_URL}
    values.update(overrides)
    return make_config(workdir, **values)


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

    async def close(self) -> None:
        await self.resources.close()


@contextlib.asynccontextmanager
async def stack(
    database_url: str | None = None,
    session: TimedSession | None = None,
    engine_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    """Migrated database (a temporary SQLite file unless given), real Redis db 12, dispatcher.

    `engine_kwargs` go to `bot.db.engine.create_engine` (diagnostics only: the bot passes none).
    """
    with tempfile.TemporaryDirectory(prefix="mluv-bench-") as tmp:
        if database_url is not None:
            overrides["database_url"] = database_url
        config = bench_config(Path(tmp), **overrides)
        engine = create_engine(config.database_url, **(engine_kwargs or {}))
        await migrate.upgrade(engine)
        cache = create_cache(config)
        resources = make_resources(config, engine, cache)
        dp = build_dispatcher(resources)
        recorder = session or TimedSession()
        bot = Bot(TEST_TOKEN, session=recorder)
        made = Stack(config, resources, dp, bot, recorder)
        try:
            yield made
        finally:
            await made.close()


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

    def _message(self, method: TelegramMethod[Any]) -> Message:
        """As Telegram does, a sent photo comes back with its sizes (and so a file id), so
        the bot can remember the /stats chart and send it by file id next time."""
        message = super()._message(method)
        if type(method).__name__ == "SendPhoto":
            file_id = f"photo-{next(self._ids)}"
            size = PhotoSize(file_id=file_id, file_unique_id=file_id, width=800, height=400)
            message = message.model_copy(update={"photo": [size]})
        return message


# ---------------------------------------------------------------- counting Redis and SQL

_HASH = re.compile(r"[0-9a-f]{16,}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"(?<=:)\d+(?=:|$)")


def key_shape(key: Any) -> str:
    text = key.decode() if isinstance(key, bytes) else str(key)
    text = _HASH.sub("{hash}", text)
    text = _DATE.sub("{date}", text)
    return _NUMBER.sub("{n}", text)


# What each Redis round trip is for, by command and key shape.
PURPOSES: list[tuple[str, str]] = [
    (r"^SET update:", "update claim (SET NX)"),
    (r"^EVAL\[join\] .*chat:.*:queue", "chat turn: join the queue, take the lock if first (EVAL)"),
    (r"^EVAL\[leave\] .*chat:.*:queue", "chat turn: leave the queue, release the lock (EVAL)"),
    (r"^EVAL .*chat:.*:queue", "chat turn: queue script (EVAL)"),
    (r"^EVAL\[extend\] [^ ]*chat:[^ ]*:lock$", "chat lock renewal (EVAL: PEXPIRE if owned)"),
    (r"^ZREM .*chat:.*:queue", "chat queue: drop a vanished head (ZREM)"),
    (r"^MGET user:\{n\}:profile", "learner context (MGET profile+settings)"),
    (r"ratelimit:", "rate limit (MULTI INCR EXPIRE EXEC)"),
    (r"budget:", "daily AI budget"),
    (r"^MGET user:\{n\}:history", "conversation history read"),
    (r"^SET user:\{n\}:history", "conversation history write"),
    (r"^PIPELINE\[SET user:.*:history", "conversation history write"),
    (r"^PIPELINE\[SET user:\{n\}:profile", "learner context fill / write"),
    (r"^MGET honzik:", "Honzík answer read"),
    (r"^SET honzik:.*:lock", "Honzík single-flight lock"),
    (r"^EVAL .*honzik:", "Honzík single-flight unlock"),
    (r"^PIPELINE\[SET honzik:", "Honzík answer fill"),
    (r"^MGET whisper:", "Whisper transcript read"),
    (r"^SET whisper:.*:lock", "Whisper single-flight lock"),
    (r"^EVAL .*whisper:", "Whisper single-flight unlock"),
    (r"^PIPELINE\[SET whisper:", "Whisper transcript fill"),
    (r"^MGET tts:", "TTS read"),
    (r"^SET tts:.*:lock", "TTS single-flight lock"),
    (r"^EVAL .*tts:", "TTS single-flight unlock"),
    (r"^PIPELINE\[SET tts:", "TTS fill / remember file_id"),
    (r"^MGET stats:.*:chart", "stats chart file_id read"),
    (r"^MGET stats:", "stats read (MGET daily+progress+version)"),
    (r"^PIPELINE\[SET stats:.*:chart", "stats chart file_id write"),
    (r"^PIPELINE\[SET stats:", "stats fill"),
    (r"^PIPELINE\[INCR(BY)? stats:", "stats/words version bump (after commit)"),
]


def purpose_of(shape: str) -> str:
    for pattern, label in PURPOSES:
        if re.search(pattern, shape):
            return label
    return shape


@dataclass
class RedisTrip:
    shape: str
    purpose: str


class RedisCounter:
    """Counts round trips on one client: each execute_command, and each pipeline execute."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.trips: list[RedisTrip] = []
        self.active = True
        original = redis.execute_command

        async def execute_command(*args: Any, **options: Any) -> Any:
            if self.active:
                self._note(_command_shape(args))
            return await original(*args, **options)

        redis.execute_command = execute_command  # type: ignore[method-assign]
        _PIPELINE_OWNERS[id(redis.connection_pool)] = self

    def _note(self, shape: str) -> None:
        self.trips.append(RedisTrip(shape, purpose_of(shape)))

    def take(self) -> list[RedisTrip]:
        trips, self.trips = self.trips, []
        return trips


_PIPELINE_OWNERS: dict[int, RedisCounter] = {}
_original_pipeline_execute = Pipeline.execute


async def _counting_execute(self: Pipeline, raise_on_error: bool = True) -> Any:
    owner = _PIPELINE_OWNERS.get(id(self.connection_pool))
    if owner is not None and owner.active and self.command_stack:
        inner = ", ".join(_command_shape(args) for args, _ in self.command_stack)
        prefix = "MULTI " if self.is_transaction else ""
        owner._note(f"PIPELINE[{prefix}{inner}]")
    return await _original_pipeline_execute(self, raise_on_error)


Pipeline.execute = _counting_execute  # type: ignore[method-assign]


def _eval_kind(script: str, keys: Sequence[str]) -> str:
    """Which script an EVAL runs, told by the keys it touches (and, for the chat queue, by
    whether it adds to or removes from the queue).

    - a `:queue` key: the chat turn. Joining (ZADD, PEXPIRE of the queue, SET NX PX of the
      lock) and leaving (ZREM, DEL of the lock if owned); the join script also contains
      'pexpire', so the script text alone would not tell it from a renewal.
    - only a `:lock` key and 'pexpire': the cache's compare-and-pexpire (lock renewal).
    - anything else (compare-and-delete of a single-flight lock): no tag.
    """
    text = script.lower()
    if any(key.endswith(":queue") for key in keys):
        if "zadd" in text:
            return "[join]"
        if "zrem" in text:
            return "[leave]"
        return ""
    if keys and all(key.endswith(":lock") for key in keys) and "pexpire" in text:
        return "[extend]"
    return ""


def _command_shape(args: Sequence[Any]) -> str:
    name = str(args[0]).upper()
    rest = list(args[1:])
    if name in ("EVAL", "EVALSHA") and len(rest) >= 3:
        keys = [key_shape(k) for k in rest[2 : 2 + int(rest[1])]]
        return f"{name}{_eval_kind(str(rest[0]), keys)} {' '.join(keys)}"
    if name == "MGET":
        return "MGET " + ",".join(key_shape(k) for k in rest)
    if not rest:
        return name
    options = [str(a).upper() for a in rest[2:] if isinstance(a, str)]
    extra = " " + " ".join(o for o in options if o in ("NX", "PX", "EX")) if options else ""
    return f"{name} {key_shape(rest[0])}{extra}"


_SQL_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)


@dataclass
class SqlStatement:
    statement: str
    parameters: Any

    @property
    def shape(self) -> str:
        verb = self.statement.split(None, 1)[0].upper()
        tables = list(dict.fromkeys(_SQL_TABLE.findall(self.statement)))
        where = ""
        found = re.search(r"\bWHERE\b", self.statement, re.IGNORECASE)
        if found:
            clause = " ".join(self.statement[found.end() :].split())
            clause = re.sub(r"\$\d+(::\w+)?|%\(\w+\)s", "?", clause)
            where = " WHERE " + (clause if len(clause) <= 60 else clause[:57] + "...")
        return f"{verb} {','.join(tables)}{where}"


class SqlCounter:
    """Every statement the engine sends (before_cursor_execute)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[SqlStatement] = []
        self.active = True

        def before(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if self.active:
                self.statements.append(SqlStatement(statement, params))

        event.listen(engine.sync_engine, "before_cursor_execute", before)

    def take(self) -> list[SqlStatement]:
        statements, self.statements = self.statements, []
        return statements


# ---------------------------------------------------------------- OpenAI stand-in scripts


def last_user_text(body: dict[str, Any]) -> str:
    return str(next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user"))


def honzik_body(reply: str, text: str, words: Iterable[str] = ("tramvaj",)) -> dict[str, Any]:
    """A completion in the exact shape of `HonzikReply`: one correction, some new words."""
    return {
        "reply": reply,
        "corrected_text": text,
        "mistakes": [{"original": "jak se mas", "corrected": "jak se máš", "explanation": "háček"}],
        "score": 80,
        "tip": None,
        "new_words": [
            {"word": w, "translation": f"{w} (en)", "example": f"Mám rád {w}."} for w in words
        ],
    }


def reply_per_request(body: dict[str, Any]) -> dict[str, Any]:
    """Like a real model: a different request gets a different reply (so TTS differs too)."""
    digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
    text = last_user_text(body)
    return honzik_body(f"Super! Slyšel jsem: {text[:60]} ({digest[:8]})", text)


# ---------------------------------------------------------------- numbers


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table (pasted as is into docs/benchmarks.md)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def banner(title: str) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {title}\n")
    print(f"{now}; {platform.python_implementation()} {platform.python_version()}; ", end="")
    print(f"{os.cpu_count()} CPUs\n")


def counts(items: Iterable[str]) -> list[tuple[str, int]]:
    return sorted(Counter(items).items(), key=lambda item: (-item[1], item[0]))


def run(main: Any) -> None:
    """asyncio.run with a hard deadline so a stuck benchmark fails instead of hanging."""

    async def bounded() -> None:
        async with asyncio.timeout(600):
            await main()

    asyncio.run(bounded())
