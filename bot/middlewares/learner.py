"""The update's one Redis round trip, then the learner's typed `profile` and `settings`.

Everything an update needs from Redis before its handler goes out together in one
pipeline: the webhook lease, the rate-limit counter and one MGET of the learner's context
(and, for a message to Honzík, the conversation history). The rate limit is decided before
the learner is loaded, so a flood costs no SQL, and it covers button presses as well as
messages.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update, User
from redis.asyncio.client import Pipeline

from bot import texts
from bot.cache import Cache, Keys
from bot.cache.keys import RATE_LIMIT_TTL
from bot.middlewares.base import Handler
from bot.middlewares.lease import UpdateLease
from bot.services.conversation import ConversationService
from bot.services.limits import count_into, uncount
from bot.services.users import UserService, is_learner

LIMITED_EVENTS = frozenset({"message", "edited_message", "callback_query"})


class LearnerContextMiddleware(BaseMiddleware):
    """Cache-first: one Redis round trip and no SQL when the learner is cached.

    Updates from bots and Telegram's service accounts are dropped here: nobody to teach.
    """

    def __init__(
        self,
        cache: Cache,
        keys: Keys,
        users: UserService,
        conversation: ConversationService,
        per_minute: int,
    ) -> None:
        self.cache = cache
        self.keys = keys
        self.users = users
        self.conversation = conversation
        self.per_minute = per_minute

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        lease: UpdateLease | None = data.get("lease")
        learner = user if user is not None and is_learner(user) else None
        counted, rate, names = False, "", []
        if learner is not None:
            names = self.users.context_names(learner.id)
            if event.message is not None and _for_honzik(event.message):
                names += self.conversation.history_names(learner.id)
            if self.per_minute > 0 and event.event_type in LIMITED_EVENTS:
                counted = True
                rate = self.cache.full(self.keys.rate_limit(learner.id, _window()))

        def build(pipe: Pipeline) -> None:
            if lease is not None:
                lease.take(pipe)
            if counted:
                count_into(pipe, rate, RATE_LIMIT_TTL)
            if names:
                pipe.mget(names)

        results = await self.cache.batch(build) if lease or counted or names else None
        if lease is not None:
            if not lease.accept(results[:2] if results is not None else None):
                if counted and results is not None:  # a redelivery is not another message
                    await uncount(self.cache, rate)
                return None
            results = results[2:] if results is not None else None
        guard: AbstractAsyncContextManager[None] = lease.kept() if lease else nullcontext()
        async with guard:
            if user is None:
                return await handler(event, data)
            if learner is None:
                return None
            if counted and results is not None:
                count, results = int(results[0]), results[2:]
                if count > self.per_minute:
                    if count == self.per_minute + 1:
                        await _tell_limited(event)
                    return None
            if results is not None:
                self.cache.prefetch(names, results[0])
            data["profile"], data["settings"] = await self.users.context(data["session"], learner)
            return await handler(event, data)


def _for_honzik(message: Message) -> bool:
    """A private message the conversation will answer, so its history will be read."""
    if message.chat.type != "private":
        return False
    if message.voice or message.audio or message.video_note:
        return True
    return bool(message.text) and not (message.text or "").startswith("/")


def _window() -> int:
    return int(time.time() // RATE_LIMIT_TTL)


async def _tell_limited(update: Update) -> None:
    """One notice when a learner goes over the limit; silence for the rest of the minute."""
    if update.callback_query is not None:
        await update.callback_query.answer(texts.RATE_LIMITED, show_alert=True)
    elif update.message is not None:
        await update.message.answer(texts.RATE_LIMITED)
    elif update.edited_message is not None:
        await update.edited_message.answer(texts.RATE_LIMITED)
