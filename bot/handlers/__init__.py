"""The router tree, built fresh for each dispatcher.

Every feature that talks to a learner sits under one `private` router, so the private-chat
filter runs once per update and the command is parsed once (`ParseCommand`), not once per
feature router. Errors come first; the fallback router comes last.
"""

from __future__ import annotations

from aiogram import Router

from bot.handlers import (
    admin,
    answer_buttons,
    conversation,
    errors,
    fallback,
    help,
    progress,
    reminders,
    reset,
    scenario,
    settings,
    start,
    words,
)
from bot.handlers.filters import PRIVATE, ParseCommand


def routers() -> list[Router]:
    private = Router(name="private")
    private.message.filter(PRIVATE)
    private.edited_message.filter(PRIVATE)
    private.message.outer_middleware(ParseCommand())
    private.include_routers(
        start.create_router(),
        admin.create_router(),
        settings.create_router(),
        help.create_router(),
        progress.create_router(),
        words.create_router(),
        reset.create_router(),
        scenario.create_router(),
        reminders.create_router(),
        answer_buttons.create_router(),
        conversation.create_router(),
    )
    return [errors.create_router(), private, fallback.create_router()]
