"""Per-learner limits: messages per minute, and optionally AI answers per day.

Counters are atomic in Redis (INCR, then EXPIRE on the first hit), so every replica shares
them. Without Redis the limits are not enforced rather than refusing learners.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject
from redis.asyncio import Redis

from bot import texts
from bot.cache import Cache
from bot.middlewares.base import Handler


async def count_in_window(cache: Cache, name: str, seconds: int) -> int | None:
    """Increment a counter that lives `seconds`; its new value, or None without Redis."""

    async def incr(redis: Redis) -> int:
        pipe = redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, seconds, nx=True)
        value, _ = await pipe.execute()
        return int(value)

    return await cache.run(incr)


class RateLimitMiddleware(BaseMiddleware):
    """RATE_LIMIT_PER_MINUTE messages per learner; the first message over it gets one notice."""

    def __init__(self, cache: Cache, per_minute: int) -> None:
        self.cache = cache
        self.per_minute = per_minute

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Message) or event.from_user is None or not self.per_minute:
            return await handler(event, data)
        window = int(time.time() // 60)
        name = self.cache.full(f"ratelimit:{event.from_user.id}:{window}")
        count = await count_in_window(self.cache, name, 60)
        if count is None or count <= self.per_minute:
            return await handler(event, data)
        if count == self.per_minute + 1:
            await event.answer(texts.RATE_LIMITED)
        return None


async def within_daily_budget(cache: Cache, telegram_id: int, day: dt.date, limit: int) -> bool:
    """Count one AI answer against DAILY_AI_MESSAGES (0 means unlimited)."""
    if not limit:
        return True
    name = cache.full(f"budget:{telegram_id}:{day.isoformat()}")
    count = await count_in_window(cache, name, 2 * 86400)
    return count is None or count <= limit
