"""The learner never sees a traceback: a failed update gets a short, kind message."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent, User
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot import texts
from bot.domain import LearnerSettings, Profile
from bot.i18n import locale_of_app, speaking, speaking_to

log = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, DBAPIError, PoolTimeout, ConnectionError, OSError)


async def on_error(
    event: ErrorEvent,
    bot: Bot,
    profile: Profile | None = None,
    settings: LearnerSettings | None = None,
    event_from_user: User | None = None,
) -> None:
    """aiogram runs this outside every middleware, so the language is chosen here: the
    learner's, else (the learner could not be loaded) their Telegram app's."""
    if profile is not None and settings is not None:
        language = speaking_to(profile, settings)
    else:
        language_code = event_from_user.language_code if event_from_user else None
        language = speaking(locale_of_app(language_code))
    with language:
        await _tell(event, bot)


async def _tell(event: ErrorEvent, bot: Bot) -> None:
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
