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
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio.client import Pipeline
from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError

from bot.cache.gateway import Gateway, Repairs

T = TypeVar("T")


# MGET the keys (all but the last); if any is missing, SET NX PX the lock (the last key) with
# the caller's token, as redis-py's Lock would. 2: all present; 1: lock taken; 0: held by another.
_READ_OR_CLAIM = """
local values = redis.call('MGET', unpack(KEYS, 1, #KEYS - 1))
for i = 1, #values do
  if not values[i] then
    local taken = redis.call('SET', KEYS[#KEYS], ARGV[1], 'NX', 'PX', ARGV[2])
    return {values, taken and 1 or 0}
  end
end
return {values, 2}
"""


@dataclass(slots=True)
class Hold:
    """A replicas' lock as held by one loader."""

    name: str
    token: bytes
    taken: bool = False
    contended: bool = False  # another replica held it when we looked
    waited: bool = False
    released: bool = False

    def release_in(self, pipe: Pipeline) -> None:
        """Queue the release (only if still ours) at the end of the caller's pipeline."""
        if self.taken:
            pipe.eval(Lock.LUA_RELEASE_SCRIPT, 1, self.name, self.token)
            self.released = True


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

    def hold(self, name: str) -> Hold:
        """A new, not yet taken, hold on the replicas' lock `name`."""
        return Hold(self.gateway.full(name), secrets.token_hex(16).encode())

    async def read_or_claim(
        self, names: list[str], hold: Hold, also: Callable[[Pipeline], None] | None = None
    ) -> list[bytes | None] | None:
        """One round trip: the values of `names`, and the lock taken if any of them is missing.

        A hit takes no lock, so it needs no release; a miss comes back holding the lock (or
        knowing that another replica holds it), ready to load. `also` queues the caller's own
        commands in the same pipeline. None when Redis is away.
        """
        ttl_ms = int(self.lock_ttl * 1000)

        def build(pipe: Pipeline) -> None:
            pipe.eval(_READ_OR_CLAIM, len(names) + 1, *names, hold.name, hold.token, ttl_ms)
            if also is not None:
                also(pipe)

        results = await self.gateway.batch(build)
        if results is None:
            return None
        values, state = results[0]
        hold.taken, hold.contended = state == 1, state == 0
        return list(values)

    @asynccontextmanager
    async def across(self, hold: Hold) -> AsyncIterator[Hold]:
        """Hold the replicas' lock for the body: already claimed, or waited for.

        `Hold.waited` tells the caller that another replica held it, so had perhaps filled the
        value meanwhile (re-read then). The caller may queue the release in its own fill
        pipeline (`Hold.release_in`), saving a round trip. Fails open: without Redis, or after
        waiting the lock's whole lifetime, the body runs unlocked.
        """
        if self.gateway.redis is None:
            yield hold
            return
        lock = Lock(
            self.gateway.redis,
            hold.name,
            timeout=self.lock_ttl,
            sleep=self.poll_interval,
            blocking_timeout=self.lock_ttl,
            thread_local=False,
        )
        lock.local.token = hold.token  # a lock claimed by `read_or_claim` is released as ours
        if hold.contended and self.gateway.available:
            hold.waited = True
            hold.taken = bool(await self.gateway.run(lambda _: lock.acquire(token=hold.token)))
        try:
            yield hold
        finally:
            unreleased = hold.taken and not hold.released
            if unreleased and await self.gateway.run(lambda _: _release(lock)) is None:
                await self.gateway.repair(Repairs(release={hold.name: hold.token}))

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
