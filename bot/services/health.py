"""What `/health` reports: the database decides liveness, Redis and Telegram are informative."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import SERVICE_NAME, __version__
from bot.cache import Cache

DB_CHECK_TIMEOUT = 3.0


class HealthService:
    def __init__(self, engine: AsyncEngine, cache: Cache, environment: str) -> None:
        self.engine = engine
        self.cache = cache
        self.environment = environment
        # Set by start-up while its first Bot API call cannot reach Telegram.
        self.telegram_reachable = True

    async def database(self) -> str:
        try:
            async with asyncio.timeout(DB_CHECK_TIMEOUT), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return "unavailable"
        return "healthy"

    async def report(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and body; 503 only when the database does not answer.

        `"telegram": "unreachable"` is added while start-up cannot reach Telegram: the process
        is alive and will start taking updates by itself, so it is not a failure.
        """
        database, redis = await asyncio.gather(self.database(), self.cache.health())
        healthy = database == "healthy"
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "service": SERVICE_NAME,
            "version": __version__,
            "environment": self.environment,
            "redis": redis,
            "database": database,
        }
        if not self.telegram_reachable:
            body["telegram"] = "unreachable"
        return (200 if healthy else 503), body
