"""Injects the learner's typed `profile` and `settings` into every handler."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from bot.middlewares.base import Handler
from bot.services.users import UserService, is_learner


class UserContextMiddleware(BaseMiddleware):
    """Cache-first: one Redis round trip and no SQL when the learner is cached.

    Updates from bots and Telegram's service accounts are dropped here: nobody to teach.
    """

    def __init__(self, users: UserService) -> None:
        self.users = users

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        if not is_learner(user):
            return None
        data["profile"], data["settings"] = await self.users.context(data["session"], user)
        return await handler(event, data)
