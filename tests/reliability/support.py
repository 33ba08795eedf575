"""What the reliability tests share: a deployment (bot + stand-ins + Redis + database),
the learner's side of a conversation, direct database reads, and process CPU time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import texts
from tests.e2e.harness import BotProcess, RedisServer, same_text
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import FakeTelegram, TelegramCall

from .proxy import TcpProxy

AUDIO_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
SCORE = 90
ERROR_TEXTS = (
    texts.TRY_AGAIN,
    texts.TEMPORARILY_UNAVAILABLE,
    texts.SOMETHING_WENT_WRONG,
    texts.RATE_LIMITED,
)


@dataclass
class Deployment:
    """One bot with its own stand-ins and Redis, and a way to read its database directly."""

    bot: BotProcess
    tg: FakeTelegram
    oa: FakeOpenAI
    redis: RedisServer
    db_url: str
    """The database as the tests reach it (SQLite file, or PostgreSQL on its real port)."""
    proxy: TcpProxy | None = None
    """The proxy between the bot and its database (`pg`) or its Redis (`main`), if any."""

    @property
    def user_ttl(self) -> int:
        return int(self.bot.env["REDIS_CACHE_TTL_USER"])

    @property
    def stats_ttl(self) -> int:
        return int(self.bot.env["REDIS_CACHE_TTL_STATS"])

    @property
    def openai_ttl(self) -> int:
        return int(self.bot.env["REDIS_CACHE_TTL_OPENAI"])

    @property
    def timezone(self) -> str:
        return self.bot.env["TIMEZONE"]


# ------------------------------------------------------------------ Honzík, scripted


def echo_reply(request: dict[str, Any]) -> dict[str, Any]:
    """Honzík repeats what he heard: every message gets its own reply (and speech) text."""
    said = request["messages"][-1]["content"]
    return {
        "reply": f"Rozumím, říkáš: {said}",
        "corrected_text": said,
        "mistakes": [],
        "score": SCORE,
        "tip": None,
        "new_words": [],
    }


def answer_to(said: str, heard: str | None = None) -> str:
    """The text a learner gets for `said` when everything works."""
    reply = echo_reply({"messages": [{"content": said}]})["reply"]
    return texts.reply_text(reply, SCORE, [], None, [], heard=heard)


def is_answer_to(text: str, said: str, heard: str | None = None) -> bool:
    return same_text(text, answer_to(said, heard))


def audio(name: str) -> bytes:
    return (AUDIO_DIR / name).read_bytes()


def unique_ogg(name: str, tag: str) -> bytes:
    """A fixture with bytes appended after its last Ogg page: same sound, its own SHA-256."""
    return audio(name) + f"\0{tag}".encode()


# ------------------------------------------------------------------ the learner's side


def sent_since(tg: FakeTelegram, method: str, chat_id: int, since: int) -> list[TelegramCall]:
    """Successful `method` calls to the chat from `since` on (what the learner received)."""
    return [
        c
        for c in tg.calls[since:]
        if c.ok and c.method == method and str(c.params.get("chat_id")) == str(chat_id)
    ]


def texts_since(tg: FakeTelegram, chat_id: int, since: int) -> list[str]:
    return [c.result["text"] for c in sent_since(tg, "sendMessage", chat_id, since)]


async def barrier(
    tg: FakeTelegram,
    user: int,
    timeout: float = 20.0,  # noqa: ASYNC109
    expect: str | None = None,
) -> None:
    """Wait until everything the learner sent before has been handled completely.

    A learner's updates are handled one at a time and in order, so once /help (sent now) is
    answered (with `expect`, else `texts.HELP` read now, in the test's locale), every earlier
    update of the chat has finished, follow-ups (voice) included.
    """
    mark = tg.mark()
    tg.send_command(user, "help")
    calls = await tg.wait_for_method("sendMessage", since=mark, chat_id=user, timeout=timeout)
    assert same_text(calls[0].result["text"], expect or texts.HELP), calls[0].result["text"]


async def wait_texts(
    tg: FakeTelegram,
    chat_id: int,
    since: int,
    count: int,
    timeout: float = 20.0,  # noqa: ASYNC109
) -> list[str]:
    calls = await tg.wait_for_method("sendMessage", count, timeout, since=since, chat_id=chat_id)
    return [c.result["text"] for c in calls]


# ------------------------------------------------------------------ the database, directly


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


async def query(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` (no parameters; callers format integers only) on SQLite or PostgreSQL."""
    if db_url.startswith("sqlite"):

        def run() -> list[tuple[Any, ...]]:
            with contextlib.closing(sqlite3.connect(_sqlite_path(db_url), timeout=15)) as conn:
                return [tuple(row) for row in conn.execute(sql).fetchall()]

        return await asyncio.to_thread(run)
    import asyncpg

    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return [tuple(record) for record in await conn.fetch(sql)]
    finally:
        await conn.close()


async def learner_rows(db_url: str, telegram_id: int) -> list[tuple[str, str, bool]]:
    """(kind, text, answered) of the learner's stored messages, oldest first."""
    sql = (
        "SELECT m.kind, m.text, m.answered FROM messages m JOIN users u ON u.id = m.user_id "
        f"WHERE u.telegram_id = {int(telegram_id)} AND m.role = 'learner' ORDER BY m.id"
    )
    return [(kind, text, bool(answered)) for kind, text, answered in await query(db_url, sql)]


async def learner_totals(db_url: str) -> list[tuple[int, int, int]]:
    """Per learner: (telegram_id, daily_stats.messages summed over days, learner messages)."""
    sql = (
        "SELECT u.telegram_id,"
        " COALESCE((SELECT SUM(d.messages) FROM daily_stats d WHERE d.user_id = u.id), 0),"
        " (SELECT COUNT(*) FROM messages m WHERE m.user_id = u.id AND m.role = 'learner')"
        " FROM users u ORDER BY u.telegram_id"
    )
    return [(int(t), int(s), int(m)) for t, s, m in await query(db_url, sql)]


# ------------------------------------------------------------------ the process


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # After "pid (comm) ": state is field 3, utime field 14, stime field 15 (1-based).
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS
