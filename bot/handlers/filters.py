"""Filters checked on the event loop, and commands parsed once per update.

aiogram calls a plain magic filter through `asyncio.to_thread`, a thread hop for what is an
attribute read; wrapped in an async `Filter` the same check costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, F
from aiogram.filters import CommandObject, Filter
from aiogram.types import TelegramObject
from magic_filter import MagicFilter


class When(Filter):
    def __init__(self, magic: MagicFilter) -> None:
        self.magic = magic

    async def __call__(self, event: TelegramObject) -> bool:
        return bool(self.magic.resolve(event))


PRIVATE = When(F.chat.type == "private")
GROUP = When(F.chat.type != "private")
COMMAND = When(F.text.startswith("/"))


class ParseCommand(BaseMiddleware):
    """Parses a message's command once per update, for every router below it.

    aiogram's `Command` filter parses the text again in each handler it guards; here the
    result goes into `command`, which `CommandIs` and the handlers read.
    """

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        text = getattr(event, "text", None)
        if text and text.startswith("/"):
            data["command"] = await _command(text, data["bot"])
        return await handler(event, data)


async def _command(text: str, bot: Bot) -> CommandObject | None:
    head, _, args = text.partition(" ")
    name, _, mention = head[1:].partition("@")
    if not name:
        return None
    if mention:
        me = await bot.me()
        if (me.username or "").lower() != mention.lower():
            return None
    return CommandObject(prefix="/", command=name, mention=mention or None, args=args or None)


class CommandIs(Filter):
    """True for a message whose command (parsed once by `ParseCommand`) is one of `names`."""

    def __init__(self, *names: str) -> None:
        self.names = frozenset(name.lower() for name in names)

    async def __call__(self, event: TelegramObject, command: CommandObject | None = None) -> bool:
        return command is not None and command.command.lower() in self.names
