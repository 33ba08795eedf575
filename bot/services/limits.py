"""Per-learner counters every replica shares: messages per minute, AI answers per day.

Counters are atomic in Redis (INCR, then EXPIRE on the first hit). Without Redis the limits
are not enforced rather than refusing learners.
"""

from __future__ import annotations

import datetime as dt

from redis.asyncio.client import Pipeline

from bot.cache import Cache, Keys
from bot.cache.keys import BUDGET_TTL


def count_into(pipe: Pipeline, name: str, seconds: int) -> None:
    """Queue one increment of the counter at the full name `name` that lives `seconds`, for a
    caller's own round trip; its new value is the first of the two results."""
    pipe.incr(name)
    pipe.expire(name, seconds, nx=True)


async def uncount(cache: Cache, name: str) -> None:
    """Take back one increment of the counter at the full name `name` (fail-open)."""
    await cache.batch(lambda pipe: pipe.decr(name))


async def count_in_window(cache: Cache, name: str, seconds: int) -> int | None:
    """Increment the counter at the full name `name` that lives `seconds`; its new value, or
    None without Redis."""
    results = await cache.batch(lambda pipe: count_into(pipe, name, seconds))
    return int(results[0]) if results is not None else None


async def within_daily_budget(cache: Cache, telegram_id: int, day: dt.date, limit: int) -> bool:
    """Count one AI answer against DAILY_AI_MESSAGES (0 means unlimited)."""
    if not limit:
        return True
    count = await count_in_window(cache, cache.full(Keys.budget(telegram_id, day)), BUDGET_TTL)
    return count is None or count <= limit
