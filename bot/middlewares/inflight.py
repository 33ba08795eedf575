"""Counts updates being handled, so shutdown can wait for them to finish."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot import logs
from bot.middlewares.base import Handler


class InFlight:
    """Updates in progress, so shutdown can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def idle(self) -> None:
        """Return once no update is in progress."""
        await self._idle.wait()


class InFlightMiddleware(BaseMiddleware):
    def __init__(self, inflight: InFlight) -> None:
        self.inflight = inflight

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        user = data.get("event_from_user")
        logs.update_id.set(event.update_id)
        logs.telegram_id.set(user.id if user else None)
        self.inflight.enter()
        try:
            return await handler(event, data)
        finally:
            self.inflight.leave()
