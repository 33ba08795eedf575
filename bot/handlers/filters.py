"""Magic filters checked on the event loop.

aiogram calls a plain magic filter through `asyncio.to_thread`, a thread hop for what is an
attribute read; wrapped in an async `Filter` the same check costs next to nothing.
"""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Filter
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
