"""/help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import texts
from bot.handlers.filters import PRIVATE


async def help_(message: Message) -> None:
    await message.answer(texts.HELP)


def create_router() -> Router:
    router = Router(name="help")
    router.message.filter(PRIVATE)
    router.message.register(help_, Command("help"))
    return router
