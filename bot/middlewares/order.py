"""One learner's updates are handled one at a time, in update-id order, on every replica.

Each update joins its chat's queue in Redis (a sorted set scored by update id) and waits
until it is first in line and can take the chat's lock. Telegram numbers updates in the
order they happened, so a later message never overtakes an earlier one, whichever replica
got it. The lock is short and renewed while the update runs; an entry whose owner vanished
(first in line, lock free, for STALE_SECONDS) is dropped so the chat moves on. When Redis is
unreachable each replica falls back to a local lock per chat.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import TelegramObject, Update
from redis.asyncio import Redis

from bot.cache import Cache
from bot.middlewares.base import Handler

LOCK_SECONDS = 15.0  # renewed every third of it while the update runs
WAIT_SECONDS = 60.0  # then handle the update anyway rather than keep the learner waiting
STALE_SECONDS = 3.0
POLL_SECONDS = 0.02

# Join the queue; take the lock if first in line. 1: go; 0: wait; -1 (+head): nobody holds
# the lock although someone else is first.
_TURN = """
redis.call('zadd', KEYS[1], ARGV[1], ARGV[1])
redis.call('pexpire', KEYS[1], ARGV[4])
local head = redis.call('zrange', KEYS[1], 0, 0)[1]
if head == ARGV[1] then
  if redis.call('set', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {1, head} end
  return {0, head}
end
if redis.call('exists', KEYS[2]) == 1 then return {0, head} end
return {-1, head}
"""
# Leave the queue and release the lock if it is still ours.
_LEAVE = """
redis.call('zrem', KEYS[1], ARGV[1])
if redis.call('get', KEYS[2]) == ARGV[2] then redis.call('del', KEYS[2]) end
return 1
"""


def chat_of(update: Update) -> int | None:
    """The chat whose order an update belongs to (the user's own chat when there is none)."""
    context = UserContextMiddleware.resolve_event_context(update)
    if context.chat is not None:
        return context.chat.id
    return context.user.id if context.user is not None else None


class ChatQueue:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.local = SimpleEventIsolation()
        # Turns whose end could not reach Redis; ended before the next turn starts.
        self._unfinished: set[tuple[str, str, str]] = set()

    @asynccontextmanager
    async def turn(self, bot_id: int, chat_id: int, update_id: int) -> AsyncIterator[None]:
        if not self.cache.available:
            async with self.local.lock(StorageKey(bot_id, chat_id, chat_id)):
                yield
            return
        for unfinished in list(self._unfinished):
            await self._leave(*unfinished)
        queue = self._queue(bot_id, chat_id)
        lock = self.cache.full(f"chat:{bot_id}:{chat_id}:lock")
        me = str(update_id)
        held = await self._wait(queue, lock, me)
        keeper = asyncio.create_task(self._keep(lock, me)) if held else None
        try:
            yield
        finally:
            if keeper is not None:
                keeper.cancel()
            await self._leave(queue, lock, me)

    def _queue(self, bot_id: int, chat_id: int) -> str:
        return self.cache.full(f"chat:{bot_id}:{chat_id}:queue")

    async def admit(self, bot_id: int, chat_id: int, update_id: int) -> None:
        """Take the update's place in line as soon as it arrives, before it is acknowledged."""
        queue, me = self._queue(bot_id, chat_id), str(update_id)
        queue_ms = int((WAIT_SECONDS + LOCK_SECONDS) * 1000)

        async def join(redis: Redis) -> None:
            pipe = redis.pipeline(transaction=False)
            pipe.zadd(queue, {me: update_id})
            pipe.pexpire(queue, queue_ms)
            await pipe.execute()

        await self.cache.run(join)

    async def withdraw(self, bot_id: int, chat_id: int, update_id: int) -> None:
        """Leave the line without a turn: the update is a duplicate handled elsewhere.

        If another replica is still waiting with the same update, its next poll puts it back.
        """
        queue = self._queue(bot_id, chat_id)
        await self.cache.run(lambda redis: redis.zrem(queue, str(update_id)))

    async def _leave(self, queue: str, lock: str, me: str) -> None:
        left = await self.cache.run(lambda redis: redis.eval(_LEAVE, 2, queue, lock, me, me))
        if left is None:
            self._unfinished.add((queue, lock, me))
        else:
            self._unfinished.discard((queue, lock, me))

    async def _wait(self, queue: str, lock: str, me: str) -> bool:
        """Wait for our turn; False means go ahead without the lock (Redis failed or too long)."""
        ttl_ms, queue_ms = int(LOCK_SECONDS * 1000), int((WAIT_SECONDS + LOCK_SECONDS) * 1000)
        deadline = time.monotonic() + WAIT_SECONDS
        stalled: tuple[str, float] | None = None

        async def turn(redis: Redis) -> Any:
            return await redis.eval(_TURN, 2, queue, lock, me, me, ttl_ms, queue_ms)

        while time.monotonic() < deadline:
            answer = await self.cache.run(turn)
            if answer is None:
                return False
            state, head = int(answer[0]), _text(answer[1])
            if state == 1:
                return True
            if state == -1:
                if stalled is None or stalled[0] != head:
                    stalled = (head, time.monotonic())
                elif time.monotonic() - stalled[1] > STALE_SECONDS:
                    await self.cache.run(partial(_drop, queue, head))
            else:
                stalled = None
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _keep(self, lock: str, me: str) -> None:
        while True:
            await asyncio.sleep(LOCK_SECONDS / 3)
            await self.cache.extend_lock(lock, me, LOCK_SECONDS)


class ChatOrderMiddleware(BaseMiddleware):
    """Holds the chat's turn around the rest of the chain."""

    def __init__(self, queue: ChatQueue) -> None:
        self.queue = queue

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        chat_id = chat_of(event)
        if chat_id is None:
            return await handler(event, data)
        async with self.queue.turn(data["bot"].id, chat_id, event.update_id):
            return await handler(event, data)


async def _drop(queue: str, member: str, redis: Redis) -> None:
    await redis.zrem(queue, member)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
