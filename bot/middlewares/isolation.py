"""Per-chat event isolation shared by all replicas, that never blocks learners on Redis.

Updates of one chat run one at a time across every replica, under a Redis lock taken inside
a local lock that already orders them within this process. The Redis lock is short and kept
alive while the update runs, so a crashed replica frees the chat within LOCK_SECONDS; a
release that fails is redone once Redis returns. When Redis fails, only the local lock holds.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation

from bot.cache import Cache

LOCK_SECONDS = 15.0  # renewed every third of it while the update runs
WAIT_SECONDS = 60.0  # then handle the update anyway rather than keep the learner waiting
POLL_SECONDS = 0.02


class SharedEventIsolation(BaseEventIsolation):
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.local = SimpleEventIsolation()
        self.keys = DefaultKeyBuilder(prefix=f"{cache.prefix}chat")

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        async with self.local.lock(key):
            name = self.keys.build(key, "lock")
            token = secrets.token_hex(8)
            held = await self._acquire(name, token)
            keeper = asyncio.create_task(self._keep(name, token)) if held else None
            try:
                yield
            finally:
                if keeper is not None:
                    keeper.cancel()
                if held:
                    await self.cache.release_lock(name, token)

    async def _acquire(self, name: str, token: str) -> bool:
        deadline = time.monotonic() + WAIT_SECONDS
        while self.cache.available:
            taken = await self.cache.acquire_lock(name, token, LOCK_SECONDS)
            if taken is not False or time.monotonic() >= deadline:
                return bool(taken)
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _keep(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(LOCK_SECONDS / 3)
            await self.cache.extend_lock(name, token, LOCK_SECONDS)

    async def close(self) -> None:
        await self.local.close()
