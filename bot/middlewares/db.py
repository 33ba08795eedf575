"""One database session per update, closed when the update is done."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.middlewares.base import Handler


class DbSessionMiddleware(BaseMiddleware):
    """Injects `session`. Opening it is cheap: no connection is taken until the first query.

    Closing one that never began a transaction holds nothing to release, so it is skipped:
    most updates (a cached learner, a command) never touch the database.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        session = self.sessionmaker()
        data["session"] = session
        try:
            return await handler(event, data)
        finally:
            if session.in_transaction() or session.identity_map:
                await session.close()
