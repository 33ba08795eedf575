"""One router per feature, built fresh for each dispatcher; the fallback router comes last."""

from __future__ import annotations

from aiogram import Router

from bot.handlers import (
    admin,
    conversation,
    errors,
    fallback,
    help,
    progress,
    reset,
    settings,
    start,
    words,
)


def routers() -> list[Router]:
    return [
        errors.create_router(),
        start.create_router(),
        admin.create_router(),
        settings.create_router(),
        help.create_router(),
        progress.create_router(),
        words.create_router(),
        reset.create_router(),
        conversation.create_router(),
        fallback.create_router(),
    ]
