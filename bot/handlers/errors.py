"""The learner never sees a traceback: a failed update gets a short, kind message."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot import texts

log = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, DBAPIError, PoolTimeout, ConnectionError, OSError)


async def on_error(event: ErrorEvent, bot: Bot) -> None:
    update = event.update
    log.error(
        "update %s failed: %s",
        update.update_id,
        type(event.exception).__name__,
        exc_info=event.exception,
    )
    if isinstance(event.exception, TelegramAPIError):
        return
    text = (
        texts.TEMPORARILY_UNAVAILABLE
        if isinstance(event.exception, DATABASE_DOWN)
        else texts.SOMETHING_WENT_WRONG
    )
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
        return
    message = update.message or update.edited_message
    if message is not None and message.chat.type == "private":
        await bot.send_message(message.chat.id, text)


def create_router() -> Router:
    router = Router(name="errors")
    router.errors.register(on_error)
    return router
