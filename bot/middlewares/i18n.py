"""The learner's language and character for everything the update's handler says.

Registered before `LearnerContextMiddleware` (for its rate-limit notice: the Telegram app's
language if it has a catalog, else Czech) and again after it, where the learner's `profile`
and `settings` decide both.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, User

from bot.domain import LearnerSettings, Profile
from bot.i18n import locale_of_app, speaking, speaking_to
from bot.middlewares.base import Handler


class LearnerLanguageMiddleware(BaseMiddleware):
    """`texts.X` read while the handler runs is in the learner's locale and character's voice."""

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        with speaking_for(data):
            return await handler(event, data)


def speaking_for(data: dict[str, Any]) -> AbstractContextManager[None]:
    """The learner's language and character, else their Telegram app's language."""
    profile: Profile | None = data.get("profile")
    settings: LearnerSettings | None = data.get("settings")
    if profile is not None and settings is not None:
        return speaking_to(profile, settings)
    user: User | None = data.get("event_from_user")
    return speaking(locale_of_app(user.language_code if user else None))
