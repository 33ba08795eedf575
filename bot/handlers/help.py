"""/help."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import texts


async def help_(message: Message) -> None:
    await message.answer(texts.HELP)


def create_router() -> Router:
    router = Router(name="help")
    router.message.filter(F.chat.type == "private")
    router.message.register(help_, Command("help"))
    return router
