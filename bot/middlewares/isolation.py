"""Per-chat event isolation shared by all replicas, that never blocks learners on Redis.

Updates of one chat run one at a time across every replica (a Redis lock, as aiogram's
RedisEventIsolation takes), inside a local lock that already orders them within this
process. When Redis fails, only the local lock holds: order within one replica stays.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation
from redis.exceptions import LockError

from bot.cache import Cache
from bot.cache.store import REDIS_FAILURES

LOCK_SECONDS = 120  # longer than any update takes; a crashed holder frees the chat after it
WAIT_SECONDS = 60


class SharedEventIsolation(BaseEventIsolation):
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.local = SimpleEventIsolation()
        self.keys = DefaultKeyBuilder(prefix=f"{cache.prefix}chat")

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        async with self.local.lock(key):
            if self.cache.redis is None or not self.cache.available:
                yield
                return
            shared = self.cache.redis.lock(
                self.keys.build(key, "lock"),
                timeout=LOCK_SECONDS,
                blocking_timeout=WAIT_SECONDS,
                sleep=0.02,
            )
            held = await self.cache.run(lambda _: shared.acquire())
            try:
                yield
            finally:
                if held:
                    with contextlib.suppress(LockError, *REDIS_FAILURES):
                        await shared.release()

    async def close(self) -> None:
        await self.local.close()
