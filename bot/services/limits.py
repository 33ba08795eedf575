"""Per-learner counters every replica shares: messages per minute, AI answers per day.

Counters are atomic in Redis (INCR, then EXPIRE on the first hit). Without Redis the limits
are not enforced rather than refusing learners.
"""

from __future__ import annotations

import datetime as dt

from redis.asyncio import Redis

from bot.cache import Cache, Keys
from bot.cache.keys import BUDGET_TTL


async def count_in_window(cache: Cache, name: str, seconds: int) -> int | None:
    """Increment the counter at the full name `name` that lives `seconds`; its new value, or
    None without Redis."""

    async def incr(redis: Redis) -> int:
        pipe = redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, seconds, nx=True)
        value, _ = await pipe.execute()
        return int(value)

    return await cache.run(incr)


async def within_daily_budget(cache: Cache, telegram_id: int, day: dt.date, limit: int) -> bool:
    """Count one AI answer against DAILY_AI_MESSAGES (0 means unlimited)."""
    if not limit:
        return True
    count = await count_in_window(cache, cache.full(Keys.budget(telegram_id, day)), BUDGET_TTL)
    return count is None or count <= limit
