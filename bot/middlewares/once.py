"""Each update is handled once, even when Telegram re-delivers it or two replicas get it."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from redis.asyncio import Redis

from bot.cache import Cache
from bot.middlewares.base import Handler
from bot.middlewares.order import ChatQueue, chat_of

log = logging.getLogger(__name__)

CLAIM_SECONDS = 86400


class HandleOnceMiddleware(BaseMiddleware):
    """Claims `update:{bot_id}:{update_id}` with SET NX before handling; releases it on failure.

    Without Redis there is nothing to coordinate through, so the update is handled (fail open).
    """

    def __init__(self, cache: Cache, queue: ChatQueue) -> None:
        self.cache = cache
        self.queue = queue

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        name = self.cache.full(f"update:{data['bot'].id}:{event.update_id}")

        async def claim(redis: Redis) -> bool:
            return bool(await redis.set(name, 1, nx=True, ex=CLAIM_SECONDS))

        claimed = await self.cache.run(claim)
        if claimed is False:
            log.info("update %s is already being handled", event.update_id)
            chat_id = chat_of(event)
            if chat_id is not None:
                await self.queue.withdraw(data["bot"].id, chat_id, event.update_id)
            return None
        try:
            return await handler(event, data)
        except BaseException:
            if claimed:
                await self.cache.run(lambda redis: redis.delete(name))
            raise
