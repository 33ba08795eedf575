"""Per-chat order inside one process, for polling.

A single poller sees every update in update-id order, so order only has to survive the
hand-off to concurrent tasks: each update is chained behind the previous update of its chat
at the moment it is submitted, before anything awaits. Different chats run concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.types import Update


def chat_of(update: Update) -> int | None:
    """The chat whose order an update belongs to (the user's own chat when there is none)."""
    context = UserContextMiddleware.resolve_event_context(update)
    if context.chat is not None:
        return context.chat.id
    return context.user.id if context.user is not None else None


class ChatOrder:
    """Runs submitted work one at a time per chat, in submission order."""

    def __init__(self) -> None:
        self._tails: dict[int, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def submit(self, chat_id: int | None, work: Callable[[], Awaitable[None]]) -> None:
        previous = self._tails.get(chat_id) if chat_id is not None else None
        task = asyncio.create_task(self._after(previous, work))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        if chat_id is not None:
            self._tails[chat_id] = task
            task.add_done_callback(lambda done: self._forget(chat_id, done))

    @property
    def running(self) -> int:
        return len(self._running)

    async def idle(self) -> None:
        """Return once every submitted piece of work has finished."""
        while self._running:
            await asyncio.wait(list(self._running))

    def _forget(self, chat_id: int, task: asyncio.Task[None]) -> None:
        if self._tails.get(chat_id) is task:
            del self._tails[chat_id]

    @staticmethod
    async def _after(
        previous: asyncio.Task[None] | None, work: Callable[[], Awaitable[None]]
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await work()
