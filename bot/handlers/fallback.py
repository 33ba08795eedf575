"""Last router: anything nobody else took gets a short hint instead of silence."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from bot import texts
from bot.handlers.filters import COMMAND, GROUP, PRIVATE


async def group(message: Message) -> None:
    await message.reply(texts.GROUP_CHAT)


async def unknown_command(message: Message) -> None:
    await message.answer(texts.UNKNOWN_COMMAND)


async def unsupported(message: Message) -> None:
    await message.answer(texts.UNSUPPORTED_MEDIA)


async def stale_button(query: CallbackQuery) -> None:
    await query.answer(texts.STALE_BUTTON, show_alert=True)


def create_router() -> Router:
    router = Router(name="fallback")
    router.message.register(group, GROUP, COMMAND)
    router.message.register(unknown_command, PRIVATE, COMMAND)
    router.message.register(unsupported, PRIVATE)
    router.callback_query.register(stale_button)
    return router
