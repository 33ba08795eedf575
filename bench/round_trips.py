"""Redis round trips and SQL statements per update, on a warm cache.

    python -m bench.round_trips

The real dispatcher (bot.app.build_dispatcher) against the machine's Redis (database 12), a
temporary SQLite file and the in-process OpenAI stand-in. Every `execute_command` of the bot's
Redis client and every pipeline `execute` is one round trip; every `before_cursor_execute` is
one SQL statement; every `asyncio.to_thread` is one thread hop (aiogram runs synchronous
filters and handlers that way). Updates are fed one at a time, so each count belongs to one
update.

Targets (from the issue): the learner context costs 1 Redis round trip and 0 SQL on a warm
cache; a warm /stats runs 0 SQL.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiogram.types import Update

from bench._common import (
    RedisCounter,
    SqlCounter,
    SqlStatement,
    Stack,
    banner,
    redis_db12,
    reply_per_request,
    run,
    stack,
    table,
    verdict,
)
from bot.handlers.keyboards import ResetCb
from tests.standins.openai import FakeOpenAI
from tests.support import updates

OPENER = "Ahoj, jak se máš?"


@dataclass
class Measured:
    label: str
    warm: bool
    trips: list[str]
    statements: list[SqlStatement]
    openai: Counter[str]
    telegram: list[str]

    context_trips: int
    context_sql: int
    hops: list[str]


class Probe:
    def __init__(self, s: Stack, oa: FakeOpenAI) -> None:
        self.s = s
        self.oa = oa
        assert s.resources.cache.redis is not None
        self.redis = RedisCounter(s.resources.cache.redis)
        self.sql = SqlCounter(s.resources.engine)
        self.rows: list[Measured] = []
        self.context = (0, 0)
        # The middleware calls `self.users.context(...)`: wrapping the method on the shared
        # instance attributes exactly the round trips and statements of the learner context.
        users = s.dp["users"]
        original = users.context

        async def context(*args: Any, **kwargs: Any) -> Any:
            trips, statements = len(self.redis.trips), len(self.sql.statements)
            try:
                return await original(*args, **kwargs)
            finally:
                self.context = (
                    len(self.redis.trips) - trips,
                    len(self.sql.statements) - statements,
                )

        users.context = context

        # aiogram runs a synchronous filter or handler with asyncio.to_thread (one thread hop
        # each); the chart is drawn in a thread on purpose, and the OpenAI client probes the
        # platform in a thread before its first request. Count them per update.
        self.hops: list[str] = []
        to_thread = asyncio.to_thread
        known = {
            "render": "chart render",
            "get_platform": "OpenAI client's platform probe (first request only)",
        }

        async def counting_to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
            name = getattr(func, "__name__", "")
            self.hops.append(known.get(name, "sync filter or handler (aiogram)"))
            return await to_thread(func, *args, **kwargs)

        asyncio.to_thread = counting_to_thread  # type: ignore[assignment]

    async def feed(self, label: str, update: Update, *, warm: bool, show: bool = True) -> Measured:
        self.redis.take()
        self.sql.take()
        self.s.session.clear()
        self.context = (0, 0)
        self.hops = []
        before = Counter(call.endpoint for call in self.oa.history)
        await self.s.feed(update)
        after = Counter(call.endpoint for call in self.oa.history)
        row = Measured(
            label,
            warm,
            [trip.purpose for trip in self.redis.take()],
            self.sql.take(),
            after - before,
            [type(method).__name__ for method in self.s.session.requests],
            *self.context,
            self.hops,
        )
        if show:
            self.rows.append(row)
        return row


def breakdown(row: Measured) -> str:
    lines = [f"## {row.label}", ""]
    trips = Counter(row.trips)
    lines.append(
        table(
            [(purpose, n) for purpose, n in trips.items()] + [("**total**", len(row.trips))],
            ["Redis round trip (purpose)", "count"],
        )
    )
    lines.append("")
    if row.statements:
        shapes = Counter(s.shape for s in row.statements)
        lines.append(
            table(
                [(f"`{shape}`", n) for shape, n in shapes.items()]
                + [("**total**", len(row.statements))],
                ["SQL statement", "count"],
            )
        )
    else:
        lines.append("SQL statements: **0**")
    openai = ", ".join(f"{k} {v}" for k, v in row.openai.items()) or "none"
    hops = ", ".join(f"{k} {v}" for k, v in Counter(row.hops).items()) or "none"
    lines += [
        "",
        f"OpenAI calls: {openai}. Bot API requests: {', '.join(row.telegram)}. "
        f"Thread hops: {hops}.",
        "",
    ]
    return "\n".join(lines)


async def main() -> None:
    banner("Redis round trips and SQL statements per update")
    async with redis_db12(), FakeOpenAI() as oa:
        oa.script_chat(reply_per_request)
        async with stack(openai_base_url=oa.base_url, openai_max_retries=0) as s:
            probe = Probe(s, oa)
            anna, boris, cyril = (updates.learner(uid) for uid in (7001, 7002, 7003))

            await probe.feed(
                "/help, first contact (cold)", updates.message("/help", user=anna), warm=False
            )
            for _ in range(3):
                await probe.feed("/help (warm)", updates.message("/help", user=anna), warm=True)
            await probe.feed(
                "/stats (cold: SQL, chart drawn)", updates.message("/stats", user=anna), warm=False
            )
            for _ in range(3):
                await probe.feed("/stats (warm)", updates.message("/stats", user=anna), warm=True)
            await probe.feed(
                f"text '{OPENER}', Honzík miss (first learner)",
                updates.message(OPENER, user=anna),
                warm=False,
            )
            await probe.feed(
                "/stats right after a message (version bumped: stats reload)",
                updates.message("/stats", user=anna),
                warm=False,
            )
            await probe.feed("/stats (warm again)", updates.message("/stats", user=anna), warm=True)

            # Boris: same settings, context warm, first conversation (history from the DB).
            await probe.feed(
                "boris /help", updates.message("/help", user=boris), warm=False, show=False
            )
            await probe.feed(
                f"text '{OPENER}', cached Honzík answer; history loaded from DB (2nd learner)",
                updates.message(OPENER, user=boris),
                warm=True,
            )
            # Cyril: same settings, context warm, after /reset -> "new conversation" the
            # history entry is cached as empty, so the whole turn is served from Redis.
            await probe.feed(
                "cyril /help", updates.message("/help", user=cyril), warm=False, show=False
            )
            await probe.feed(
                "cyril reset",
                updates.callback(ResetCb(action="conversation").pack(), user=cyril),
                warm=False,
                show=False,
            )
            await probe.feed(
                f"text '{OPENER}', cached Honzík answer and cached history (3rd learner)",
                updates.message(OPENER, user=cyril),
                warm=True,
            )
            report(probe.rows)


def report(rows: list[Measured]) -> None:
    summary: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    for row in rows:
        if row.label in seen:
            continue
        seen.add(row.label)
        same = [r for r in rows if r.label == row.label]
        stable = all(
            (len(r.trips), len(r.statements), len(r.hops))
            == (len(row.trips), len(row.statements), len(row.hops))
            for r in same
        )
        summary.append(
            (
                row.label,
                "warm" if row.warm else "cold",
                len(row.trips),
                len(row.statements),
                row.context_trips,
                row.context_sql,
                len(row.hops),
                f"{len(same)}x" + ("" if stable else " (varied!)"),
            )
        )
    print(
        table(
            summary,
            [
                "update",
                "cache",
                "Redis RTs",
                "SQL",
                "context RTs",
                "context SQL",
                "thread hops",
                "runs",
            ],
        )
    )
    print()
    for row in rows:
        if row.label in seen:
            seen.discard(row.label)
            print(breakdown(row))

    warm = [r for r in rows if r.warm]
    context_ok = all(r.context_trips == 1 and r.context_sql == 0 for r in warm)
    stats_ok = all(len(r.statements) == 0 for r in warm if r.label.startswith("/stats"))
    print("## Targets\n")
    print(
        table(
            [
                (
                    "learner context on a warm cache: 1 Redis round trip, 0 SQL",
                    ", ".join(sorted({f"{r.context_trips} RT/{r.context_sql} SQL" for r in warm})),
                    verdict(context_ok),
                ),
                (
                    "warm /stats: 0 SQL",
                    ", ".join(
                        sorted(
                            {str(len(r.statements)) for r in warm if r.label.startswith("/stats")}
                        )
                    ),
                    verdict(stats_ok),
                ),
            ],
            ["target", "measured", "verdict"],
        )
    )


if __name__ == "__main__":
    run(main)
