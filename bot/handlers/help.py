"""/help."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from bot import texts
from bot.handlers.filters import CommandIs


async def help_(message: Message) -> None:
    await message.answer(texts.HELP)


def create_router() -> Router:
    router = Router(name="help")
    router.message.register(help_, CommandIs("help"))
    return router
