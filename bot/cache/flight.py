"""Single-flight loading: a value that is missing is loaded once, not once per caller.

In-process, concurrent callers for the same entries share one future. Across replicas, an
expensive load (OpenAI costs money) is run under redis-py's own `Lock` (owner token, TTL):
the other replicas wait for it, bounded by the lock's lifetime, and then read what it filled.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError

from bot.cache.gateway import Gateway, Repairs

T = TypeVar("T")


class Flight:
    def __init__(
        self, gateway: Gateway, *, lock_ttl: float = 30.0, poll_interval: float = 0.05
    ) -> None:
        self.gateway = gateway
        self.lock_ttl = lock_ttl
        self.poll_interval = poll_interval
        self._inflight: dict[tuple[str, ...], asyncio.Future[Any]] = {}

    async def once(self, names: tuple[str, ...], load: Callable[[], Awaitable[T]]) -> T:
        """Run `load` unless a call for the same names is running here; then share its outcome."""
        while True:
            pending = self._inflight.get(names)
            if pending is None:
                return await self._lead(names, load)
            try:
                shared: T = await asyncio.shield(pending)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                # The leader was cancelled, not us: try again, perhaps as the new leader.
            else:
                return shared

    @asynccontextmanager
    async def across(self, name: str) -> AsyncIterator[None]:
        """Hold the replicas' lock `name` for the body, waiting while another replica holds it.

        Callers re-read before loading: the previous holder has usually filled the value.
        Fails open: without Redis, or after waiting the lock's whole lifetime, the body runs
        unlocked.
        """
        if self.gateway.redis is None:
            yield
            return
        token = secrets.token_hex(16).encode()
        lock = Lock(
            self.gateway.redis,
            self.gateway.full(name),
            timeout=self.lock_ttl,
            sleep=self.poll_interval,
            blocking_timeout=self.lock_ttl,
            thread_local=False,
        )
        taken = await self.gateway.run(lambda _: lock.acquire(token=token))
        try:
            yield
        finally:
            if taken and await self.gateway.run(lambda _: _release(lock)) is None:
                await self.gateway.repair(Repairs(release={self.gateway.full(name): token}))

    async def _lead(self, names: tuple[str, ...], load: Callable[[], Awaitable[T]]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._inflight[names] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[names]


async def _release(lock: Lock) -> bool:
    """True once the lock is not ours any more: released, or expired (perhaps taken over)."""
    with suppress(LockNotOwnedError):
        await lock.release()
    return True
