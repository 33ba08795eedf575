"""Invariants every reliability scenario must leave intact, checked at the end of each test.

1. Stats agree with the stored conversation: for every learner, `daily_stats.messages`
   summed over all days equals the number of their `messages` rows with role 'learner'
   (both are written in one transaction, so no outage may tear them apart).
2. No cache key outlives its TTL rules (README, "The Redis cache"): every key in the bot's
   Redis expires (none is persistent), and each family stays within its bound.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from fnmatch import fnmatchcase
from zoneinfo import ZoneInfo

from .support import Deployment, learner_totals

DAY = 86400
VERSION_TTL = 2 * DAY
CHAT_LOCK_TTL = 15
CHAT_QUEUE_TTL = 75  # the longest wait for a turn plus one lock period
SHARED_COUNTERS_TTL = 30 * DAY
RATE_WINDOW = 60
MIDNIGHT_SLACK_MS = 1500
"""The bot computes seconds to midnight when it writes; allow for its rounding."""


def seconds_to_midnight(zone: str, now: dt.datetime | None = None) -> int:
    moment = now or dt.datetime.now(ZoneInfo(zone))
    tomorrow = dt.datetime.combine(
        moment.date() + dt.timedelta(days=1), dt.time(), tzinfo=ZoneInfo(zone)
    )
    return math.ceil((tomorrow - moment).total_seconds())


def ttl_rules(dep: Deployment) -> list[tuple[str, Callable[[], int]]]:
    """(key pattern, longest allowed TTL in ms), first match wins."""

    def midnight() -> int:
        return seconds_to_midnight(dep.timezone) * 1000 + MIDNIGHT_SLACK_MS

    user, stats, openai = dep.user_ttl * 1000, dep.stats_ttl * 1000, dep.openai_ttl * 1000
    return [
        ("user:*:content", lambda: openai),
        ("user:*", lambda: user),
        ("stats:*:daily:*", midnight),
        ("stats:*:chart:*", midnight),
        ("stats:*:progress", lambda: min(stats, midnight())),
        ("stats:*:version", lambda: VERSION_TTL * 1000),
        ("words:*:version", lambda: VERSION_TTL * 1000),
        ("words:*", lambda: user),
        ("honzik:*", lambda: openai),
        ("whisper:*", lambda: openai),
        ("tts:*", lambda: openai),
        ("update:*", lambda: DAY * 1000),
        ("ratelimit:*", lambda: RATE_WINDOW * 1000),
        ("budget:*", lambda: 2 * DAY * 1000),
        ("chat:*:queue", lambda: CHAT_QUEUE_TTL * 1000),
        ("chat:*", lambda: CHAT_LOCK_TTL * 1000),
        ("metrics:cache", lambda: SHARED_COUNTERS_TTL * 1000),
    ]


async def stats_problems(dep: Deployment) -> list[str]:
    return [
        f"learner {telegram_id}: daily_stats.messages = {stats}, learner messages = {stored}"
        for telegram_id, stats, stored in await learner_totals(dep.db_url)
        if stats != stored
    ]


async def cache_problems(dep: Deployment) -> list[str]:
    rules = ttl_rules(dep)
    problems: list[str] = []
    async with dep.redis.client() as redis:
        names = [key.decode() async for key in redis.scan_iter(count=500)]
        pipe = redis.pipeline(transaction=False)
        for name in names:
            pipe.pttl(name)
        ttls = await pipe.execute() if names else []
    for name, pttl in zip(names, ttls, strict=True):
        pttl = int(pttl)
        if pttl == -2:
            continue  # gone since the scan
        if pttl < 0:
            problems.append(f"{name} has no TTL (persistent)")
            continue
        limit = next((bound() for pattern, bound in rules if fnmatchcase(name, pattern)), None)
        if limit is not None and pttl > limit:
            problems.append(f"{name} lives {pttl / 1000:.1f}s, more than {limit / 1000:.1f}s")
    return problems


async def assert_invariants(dep: Deployment) -> None:
    """Fail with every violation found (stats first, then cache keys)."""
    problems = await stats_problems(dep) + await cache_problems(dep)
    assert not problems, "invariants broken:\n  " + "\n  ".join(problems)
