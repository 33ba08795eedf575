"""One learner's updates are handled one at a time, in order, on every replica."""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from aiogram.types import Chat, TelegramObject, User

from bot.middlewares.base import Handler


class ChatOrderMiddleware(BaseMiddleware):
    """Holds the chat's isolation lock around the rest of the chain."""

    def __init__(self, isolation: BaseEventIsolation) -> None:
        self.isolation = isolation

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        user: User | None = data.get("event_from_user")
        chat: Chat | None = data.get("event_chat")
        if user is None and chat is None:
            return await handler(event, data)
        key = StorageKey(
            bot_id=data["bot"].id,
            chat_id=chat.id if chat else user.id,  # type: ignore[union-attr]
            user_id=user.id if user else chat.id,  # type: ignore[union-attr]
        )
        async with self.isolation.lock(key):
            return await handler(event, data)
