"""Honour Telegram's flood control on every request the bot makes."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType

if TYPE_CHECKING:
    from aiogram import Bot

log = logging.getLogger(__name__)


class RetryAfterMiddleware(BaseRequestMiddleware):
    """On a 429, wait the `retry_after` Telegram asked for and try again, a bounded number of times.

    aiogram raises `TelegramRetryAfter` and leaves the waiting to the bot; a learner's reply
    must not be dropped because of a short flood limit.
    """

    def __init__(self, attempts: int = 3, longest_wait: float = 30.0) -> None:
        self.attempts = attempts
        self.longest_wait = longest_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt >= self.attempts or exc.retry_after > self.longest_wait:
                    raise
                attempt += 1
                name = type(method).__name__
                log.warning("telegram flood control on %s: waiting %ss", name, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
