"""A Bot session that records every request and answers like Telegram would, offline.

Dispatcher-level tests feed updates to the real dispatcher and read the requests back first in,
first out, as aiogram's own test suite does with its mocked bot.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import (
    Chat,
    File,
    Message,
    User,
    Voice,
)

BOT_USER = User(id=42, is_bot=True, first_name="Honzík", username="mluv_me_bot")


class RecordingSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.requests: deque[TelegramMethod[Any]] = deque()
        self.files: dict[str, bytes] = {}
        self._ids = itertools.count(1000)

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (aiogram's signature)
    ) -> TelegramType:
        await self.before(method)
        self.requests.append(method)
        return self._answer(method)  # type: ignore[return-value]

    async def before(self, method: TelegramMethod[Any]) -> None:
        """What Telegram does before answering a request: a test's own session refuses some
        (by raising) or takes its time; a refused request is not recorded."""

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 (aiogram's signature)
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield self.files[url.rsplit("/", 1)[-1]]

    async def close(self) -> None:
        return None

    def next(self) -> TelegramMethod[Any]:
        return self.requests.popleft()

    def of(self, kind: type[TelegramMethod[Any]]) -> list[Any]:
        return [request for request in self.requests if isinstance(request, kind)]

    def _answer(self, method: TelegramMethod[Any]) -> Any:
        returning = method.__returning__
        if returning is bool:
            return True
        if returning is Message or returning == (Message | bool):
            return self._message(method)
        if returning is File:
            file_id = getattr(method, "file_id", "")
            return File(file_id=file_id, file_unique_id=file_id, file_path=file_id)
        if returning is User:
            return BOT_USER
        return [] if "list" in str(returning) else True

    def _message(self, method: TelegramMethod[Any]) -> Message:
        chat_id = int(getattr(method, "chat_id", 0) or 0)
        message_id = getattr(method, "message_id", None) or next(self._ids)
        voice = None
        if type(method).__name__ == "SendVoice":
            file_id = f"voice-{next(self._ids)}"
            voice = Voice(file_id=file_id, file_unique_id=file_id, duration=1)
        return Message(
            message_id=message_id,
            date=dt.datetime.now(dt.UTC),
            chat=Chat(id=chat_id, type="private"),
            from_user=BOT_USER,
            text=getattr(method, "text", None),
            voice=voice,
        )
