"""Cold /stats on PostgreSQL with a million messages.

    python -m bench.cold_stats [--quick]

A throwaway PostgreSQL database, migrated with `bot.db.migrate.upgrade`, then filled with
generate_series: 5,000 learners, 1,000,000 rows in `messages` (the measured learner has 2,920
of them over the year), `daily_stats` for everyone (the measured learner: all 365 days, so a
365-day streak; the others: about one day in seven), and `saved_words` (the measured learner:
300, the others 20 each); with --quick 500 learners and 50,000 messages. ANALYZE, then
`StatsService.report` with the cache disabled (`Cache(None)`), so every call runs its SQL, in
a fresh session per call, as one update would: 200 calls after 20 warm-up calls (20 after 5
with --quick), median and p95.

Target: cold median under 20 ms.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

import asyncpg

from bench._common import (
    Result,
    SqlCounter,
    bench_config,
    cli,
    median,
    ms,
    percentile,
    postgres_database,
)
from bot.cache import Cache, keys_for
from bot.db import migrate
from bot.db.engine import create_engine, create_sessionmaker
from bot.domain import LearnerSettings, Level, NativeLanguage, Profile
from bot.services import days
from bot.services.stats import StatsService

MEASURED_MESSAGES = 2_920  # 8 a day, as its daily_stats say
MEASURED_WORDS = 300
TARGET = 0.020
MEASURED = 1  # users.id of the measured learner


async def fill(dsn: str, today: dt.date, learners: int, messages: int) -> dict[str, int]:
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
            learners,
        )
        await conn.execute("SELECT setval('users_id_seq', $1)", learners)
        await conn.execute(
            """
            INSERT INTO user_settings (user_id, conversation_style, corrections_level,
                                       voice_speed, character, voice_replies,
                                       created_at, updated_at)
            SELECT g, 'friendly', 'balanced', 'normal', 'honzik', true, now(), now()
            FROM generate_series(1, $1::int) g
            """,
            learners,
        )
        # Messages: the measured learner's 2,920 over the year, the rest spread over the others.
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
            learners,
            messages,
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
            learners,
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
            learners,
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


async def measure(quick: bool) -> list[Result]:
    if quick:
        learners, messages, calls, warmup = 500, 50_000, 20, 5
    else:
        learners, messages, calls, warmup = 5_000, 1_000_000, 200, 20
    async with postgres_database("bench_stats") as url:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        with tempfile.TemporaryDirectory() as tmp:
            config = bench_config(Path(tmp), database_url=url)
        engine = create_engine(config.database_url)
        try:
            await migrate.upgrade(engine)
            settings = LearnerSettings()
            today, _ = days.learner_today(settings, config.zone)
            sizes = await fill(dsn, today, learners, messages)
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
            service = StatsService(Cache(None), keys_for(config), config.zone)
            sql = SqlCounter(engine)
            times = []
            for call in range(warmup + calls):
                started = time.perf_counter()
                async with sessionmaker() as session:
                    report = await service.report(session, profile, settings)
                if call >= warmup:
                    times.append(time.perf_counter() - started)
            statements = len(sql.take()) / (warmup + calls)
        finally:
            await engine.dispose()
    if report.progress.totals.messages != MEASURED_MESSAGES:
        raise RuntimeError(f"the report counts {report.progress.totals.messages} messages")
    return [
        Result(
            f"cold /stats, {messages:,} messages on PostgreSQL: median < {TARGET * 1000:g} ms",
            f"{ms(median(times))} median, {ms(percentile(times, 95))} p95",
            median(times) < TARGET,
            f"{calls} calls, cache disabled, {statements:g} SQL statements each; rows: "
            + ", ".join(f"{name} {count:,}" for name, count in sizes.items()),
        )
    ]


if __name__ == "__main__":
    cli(measure)
