"""Cold /stats on PostgreSQL with a million messages.

    python -m bench.cold_stats

A throwaway PostgreSQL database, migrated with `bot.db.migrate.upgrade`, then filled with
generate_series: 5,000 learners, 1,000,000 rows in `messages` (the measured learner has 2,920
of them over the year), `daily_stats` for everyone (the measured learner: all 365 days, so a
365-day streak; the others: about one day in seven), and `saved_words` (the measured learner:
300, the others 20 each). ANALYZE, then:

- cold: `StatsService.report` with the cache disabled (Cache(None)): every call runs its SQL,
  in a fresh session per call, as one update would;
- cold through Redis: the real cache (database 12) with the learner's stats entries deleted
  before each call, so each call is a MGET miss, the SQL, and the fill;
- warm, for contrast: the same cache left alone (one MGET).

Each is called ~200 times (after 20 warm-up calls); median and p95. The SQL one call runs is
captured with before_cursor_execute and shown with EXPLAIN (ANALYZE, BUFFERS).

Target (from the issue): cold median under 20 ms.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from bench._common import (
    SqlCounter,
    SqlStatement,
    banner,
    bench_config,
    median,
    ms,
    percentile,
    postgres_database,
    redis_db12,
    run,
    table,
    verdict,
)
from bot.cache import Cache, create_cache, keys_for
from bot.db import migrate
from bot.db.engine import create_engine, create_sessionmaker
from bot.domain import LearnerSettings, Level, NativeLanguage, Profile
from bot.services import days
from bot.services.stats import StatsService

LEARNERS = 5_000
MESSAGES = 1_000_000
MEASURED_MESSAGES = 2_920  # 8 a day, as its daily_stats say
MEASURED_WORDS = 300
CALLS = 200
WARMUP = 20
TARGET = 0.020
MEASURED = 1  # users.id of the measured learner


async def fill(dsn: str, today: dt.date) -> dict[str, int]:
    """Generate the data set with a handful of INSERT ... SELECT generate_series."""
    conn = await asyncpg.connect(dsn)
    try:
        first_day = today - dt.timedelta(days=364)
        await conn.execute(
            """
            INSERT INTO users (id, telegram_id, username, first_name, native_language, level,
                               onboarded, current_streak, best_streak, last_active_date,
                               created_at, updated_at)
            SELECT g, 1000000 + g, 'learner' || g, 'Learner', 'en', 'beginner', true,
                   CASE WHEN g = $1 THEN 365 ELSE (g % 9) END,
                   CASE WHEN g = $1 THEN 365 ELSE (g % 30) END,
                   $2::date - (g % 3), now() - interval '1 year', now()
            FROM generate_series(1, $3::int) g
            """,
            MEASURED,
            today,
            LEARNERS,
        )
        await conn.execute("SELECT setval('users_id_seq', $1)", LEARNERS)
        await conn.execute(
            """
            INSERT INTO user_settings (user_id, conversation_style, corrections_level,
                                       voice_speed, character, voice_replies,
                                       created_at, updated_at)
            SELECT g, 'friendly', 'balanced', 'normal', 'honzik', true, now(), now()
            FROM generate_series(1, $1::int) g
            """,
            LEARNERS,
        )
        # Messages: the measured learner's 3,000 over the year, the rest spread over the others.
        await conn.execute(
            """
            INSERT INTO messages (user_id, role, kind, text, corrected_text, score,
                                  duration_seconds, answered, created_at)
            SELECT CASE WHEN g <= $1 THEN $2 ELSE 2 + (g % ($3::int - 1)) END,
                   CASE WHEN g % 2 = 0 THEN 'learner' ELSE 'teacher' END,
                   CASE WHEN g % 3 = 0 THEN 'voice' ELSE 'text' END,
                   'Ahoj, jak se máš? Dneska je hezky a jdu do kina s kamarádem ' || g,
                   CASE WHEN g % 2 = 0 THEN 'Ahoj, jak se máš?' END,
                   CASE WHEN g % 2 = 0 THEN 50 + g % 50 END,
                   CASE WHEN g % 3 = 0 THEN 2.5 END,
                   true,
                   now() - (g % 365) * interval '1 day' - (g % 86400) * interval '1 second'
            FROM generate_series(1, $4::int) g
            """,
            MEASURED_MESSAGES,
            MEASURED,
            LEARNERS,
            MESSAGES,
        )
        await conn.execute(
            """
            INSERT INTO daily_stats (user_id, date, messages, voice_messages, words_spoken,
                                     seconds_spoken, mistakes, score_sum, scored_messages,
                                     new_words)
            SELECT $1, $2::date + d, 8, 3, 60, 7.5, 4, 600, 4, 1
            FROM generate_series(0, 364) d
            """,
            MEASURED,
            first_day,
        )
        await conn.execute(
            """
            INSERT INTO daily_stats (user_id, date, messages, voice_messages, words_spoken,
                                     seconds_spoken, mistakes, score_sum, scored_messages,
                                     new_words)
            SELECT u, $1::date + d, 1 + (u + d) % 12, (u + d) % 4, 30, 5.0, 2, 300, 3, 1
            FROM generate_series(2, $2::int) u, generate_series(0, 364) d
            WHERE (u * 7 + d * 13) % 7 = 0
            """,
            first_day,
            LEARNERS,
        )
        await conn.execute(
            """
            INSERT INTO saved_words (user_id, word, translation, example, ease_factor,
                                     interval_days, repetitions, next_review, created_at)
            SELECT u, 'slovo' || w, 'word ' || w, 'Mám rád slovo ' || w || '.', 2.5, 1, 0,
                   $1::date + (w % 10), now()
            FROM generate_series(1, $2::int) u,
                 generate_series(1, $3::int) w
            WHERE u = $4 OR w <= 20
            """,
            today,
            LEARNERS,
            MEASURED_WORDS,
            MEASURED,
        )
        await conn.execute("ANALYZE")
        sizes = {}
        for name in ("users", "messages", "daily_stats", "saved_words"):
            sizes[name] = await conn.fetchval(f"SELECT count(*) FROM {name}")
        sizes["measured learner's messages"] = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE user_id = $1", MEASURED
        )
        sizes["measured learner's daily_stats"] = await conn.fetchval(
            "SELECT count(*) FROM daily_stats WHERE user_id = $1", MEASURED
        )
        return sizes
    finally:
        await conn.close()


async def timed_calls(call: Callable[[], Awaitable[Any]], before: Callable[[], Awaitable[Any]]):
    for _ in range(WARMUP):
        await before()
        await call()
    times = []
    for _ in range(CALLS):
        await before()
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return times


async def explain(dsn: str, statements: list[SqlStatement]) -> list[tuple[str, str, float]]:
    conn = await asyncpg.connect(dsn)
    plans = []
    try:
        for s in statements:
            params = tuple(s.parameters or ())
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + s.statement, *params)
            plan = "\n".join(row[0] for row in rows)
            executed = float(plan.rsplit("Execution Time: ", 1)[1].split(" ms")[0])
            plans.append((s.statement, plan, executed))
    finally:
        await conn.close()
    return plans


async def main() -> None:
    banner("Cold /stats on PostgreSQL with 1,000,000 messages")
    async with redis_db12(), postgres_database("bench_stats") as url:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            config = bench_config(Path(tmp), database_url=url)
        engine = create_engine(config.database_url)
        try:
            await migrate.upgrade(engine)
            settings = LearnerSettings()
            today, _ = days.learner_today(settings, config.zone)
            started = time.perf_counter()
            sizes = await fill(dsn, today)
            print(f"Data generated in {time.perf_counter() - started:.1f} s:\n")
            print(table([(k, f"{v:,}") for k, v in sizes.items()], ["table", "rows"]))
            print()

            sessionmaker = create_sessionmaker(engine)
            profile = Profile(
                id=MEASURED,
                telegram_id=1_000_000 + MEASURED,
                username=f"learner{MEASURED}",
                first_name="Learner",
                native_language=NativeLanguage.EN,
                level=Level.BEGINNER,
                onboarded=True,
            )
            keys = keys_for(config)
            uncached = StatsService(Cache(None), keys, config.zone)
            cache = create_cache(config)
            cached = StatsService(cache, keys, config.zone)
            sql = SqlCounter(engine)

            def report(service: StatsService) -> Callable[[], Awaitable[Any]]:
                async def call() -> Any:
                    async with sessionmaker() as session:
                        return await service.report(session, profile, settings)

                return call

            async def nothing() -> None:
                return None

            async def forget() -> None:
                day, left = days.learner_today(settings, config.zone)
                await cache.delete(
                    keys.daily_stats(MEASURED, day, left), keys.progress(MEASURED, left)
                )

            sql.take()
            first = await report(uncached)()
            statements = sql.take()
            cold = await timed_calls(report(uncached), nothing)
            sql.take()
            through_redis = await timed_calls(report(cached), forget)
            per_call_redis = len(sql.take()) / (CALLS + WARMUP)
            warm = await timed_calls(report(cached), nothing)
            warm_sql = len(sql.take())
            plans = await explain(dsn, statements)
            await cache.close()
        finally:
            await engine.dispose()

    p = first.progress
    print(
        f"The report: {p.totals.messages:,} messages on {p.totals.active_days} active days, "
        f"streak {p.current_streak} (best {p.best_streak}), {p.totals.saved_words} saved words, "
        f"today {first.today.messages} messages.\n"
    )
    rows = [
        (
            "cold, cache disabled",
            ms(median(cold)),
            ms(percentile(cold, 95)),
            ms(min(cold)),
            len(statements),
            verdict(median(cold) < TARGET),
        ),
        (
            "cold through Redis (entries deleted first)",
            ms(median(through_redis)),
            ms(percentile(through_redis, 95)),
            ms(min(through_redis)),
            f"{per_call_redis:g}",
            verdict(median(through_redis) < TARGET),
        ),
        (
            "warm (cache hit), for contrast",
            ms(median(warm)),
            ms(percentile(warm, 95)),
            ms(min(warm)),
            warm_sql,
            "–",
        ),
    ]
    print(
        table(
            rows,
            [
                f"StatsService.report, {CALLS} calls",
                "median",
                "p95",
                "min",
                "SQL per call",
                f"target median < {TARGET * 1000:g} ms",
            ],
        )
    )
    print()
    total = sum(executed for _, _, executed in plans)
    print(
        f"## The {len(plans)} statements of one cold call (server execution time "
        f"{total:.3f} ms in all)\n"
    )
    for statement, plan, _ in plans:
        print("```sql")
        print(" ".join(statement.split()))
        print("```\n```")
        print(plan)
        print("```\n")


if __name__ == "__main__":
    run(main)
