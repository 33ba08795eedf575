"""The webhook endpoint: aiogram's handler, plus a place in line before the 200.

Telegram sends a chat's next update once the current one is acknowledged. If the first one
were still waiting for a busy replica's event loop when the next reached an idle replica,
the later message could get in line first; joining the chat's queue before answering keeps
Telegram's order.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from bot.middlewares.order import ChatQueue, chat_of

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class AdmittingRequestHandler(SimpleRequestHandler):
    def __init__(self, dispatcher: Dispatcher, bot: Bot, queue: ChatQueue, **kwargs: Any) -> None:
        super().__init__(dispatcher, bot, **kwargs)
        self.queue = queue

    async def handle(self, request: web.Request) -> web.Response:
        if self.verify_secret(request.headers.get(SECRET_HEADER, ""), self.bot):
            try:
                update = Update.model_validate(await request.json(), context={"bot": self.bot})
            except (ValueError, ValidationError):
                return web.Response(status=400, text="not an update")
            chat_id = chat_of(update)
            if chat_id is not None:
                await self.queue.admit(self.bot.id, chat_id, update.update_id)
        return await super().handle(request)
