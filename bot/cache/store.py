"""The one cache helper every key family goes through.

`Cache.fetch_many` is get-or-set: one MGET, and on a miss one load shared by every caller
waiting for the same keys (single-flight, in-process always and across replicas with a short
Redis lock when asked), then a SET NX EX fill. Redis is never allowed to fail a request: any
error is counted, turns the call into a miss, and opens a short cool-down so a dead Redis costs
nothing per update; the pool reconnects by itself when Redis returns.

Write rules that keep readers from re-caching stale data:
- readers fill with SET NX, so they never overwrite a value;
- writers `put` (overwrite) only after their transaction has committed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.cache.keys import Family, Key

log = logging.getLogger(__name__)

T = TypeVar("T")
RedisHealth = Literal["healthy", "unavailable", "disabled"]

REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

# Release, or extend, a lock only if we still own it.
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_EXTEND = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


@lru_cache(maxsize=64)
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


class _Versioned(BaseModel, Generic[T]):
    """A cached value stamped with the version counter it was loaded under."""

    v: int
    data: T


class _Outdated(Exception):
    pass


@dataclass(slots=True)
class _Read:
    values: list[Any]
    stamp: int | None
    overwrite: set[str]

    @property
    def complete(self) -> bool:
        return all(value is not None for value in self.values)


@dataclass(slots=True)
class _Repairs:
    """Writes that could not reach Redis, redone on the first successful call after it returns.

    Without this, a value written over (or a version bumped) while Redis was unreachable would
    leave the old entry valid in Redis for the rest of its TTL once Redis came back with its data.
    """

    unlink: set[str] = field(default_factory=set)
    bump: dict[str, int] = field(default_factory=dict)
    release: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.unlink or self.bump or self.release)

    def merge(self, other: _Repairs) -> None:
        self.unlink |= other.unlink
        self.bump.update(other.bump)
        self.release.update(other.release)


class CacheCounters:
    """In-process hit/miss/error counts per key family."""

    def __init__(self) -> None:
        self.hits: Counter[Family] = Counter()
        self.misses: Counter[Family] = Counter()
        self.errors = 0


class Cache:
    """Fail-open JSON cache over one pooled `redis.asyncio` client (or none when disabled)."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        prefix: str = "",
        counters: CacheCounters | None = None,
        cooldown: float = 1.0,
        lock_ttl: float = 30.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.counters = counters or CacheCounters()
        self._cooldown = cooldown
        self._lock_ttl = lock_ttl
        self._poll = poll_interval
        self._down_until = 0.0
        self._repairs = _Repairs()
        self._inflight: dict[tuple[str, ...], asyncio.Future[list[Any]]] = {}

    @property
    def enabled(self) -> bool:
        return self.redis is not None

    @property
    def available(self) -> bool:
        """Enabled and not in a cool-down after an error."""
        return self._usable()

    async def run(self, call: Callable[[Redis], Awaitable[T]]) -> T | None:
        """One raw Redis operation under the same fail-open rules; None if it could not run."""
        if not self._usable():
            return None
        return await self._guard(call(self._client()))

    def full(self, key: Key | str) -> str:
        return self.prefix + (key.name if isinstance(key, Key) else key)

    async def fetch(
        self,
        key: Key,
        kind: type[T] | Any,
        load: Callable[[], Awaitable[T]],
        *,
        shared: bool = False,
        version: Key | None = None,
    ) -> T:
        """Get one value, or load it once and cache it."""

        async def load_one() -> list[Any]:
            return [await load()]

        values = await self.fetch_many([key], [kind], load_one, shared=shared, version=version)
        return values[0]  # type: ignore[no-any-return]

    async def fetch_many(
        self,
        keys: Sequence[Key],
        kinds: Sequence[Any],
        load: Callable[[], Awaitable[list[Any]]],
        *,
        shared: bool = False,
        version: Key | None = None,
    ) -> list[Any]:
        """Get several values in one round trip; on any miss, load all of them once.

        `shared=True` also serialises the load across replicas with a Redis lock, for
        upstream calls that cost money (OpenAI): the other replicas wait for the value.

        `version` names a counter that writers `bump` after they commit. It is read in the
        same MGET; an entry filled under an older version is a miss. This closes the race
        where a reader loads just before a writer commits and would otherwise cache the old
        value for the entry's whole lifetime (stats live until midnight).
        """
        while True:
            read = await self._read(keys, kinds, version)
            if read.complete:
                for key in keys:
                    self.counters.hits[key.family] += 1
                return read.values
            for key, value in zip(keys, read.values, strict=True):
                counter = self.counters.misses if value is None else self.counters.hits
                counter[key.family] += 1

            flight = tuple(key.name for key in keys)
            pending = self._inflight.get(flight)
            if pending is None:
                return await self._lead(flight, keys, kinds, load, shared, read)
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                # The leader was cancelled, not us: try again, perhaps as the new leader.

    async def _lead(
        self,
        flight: tuple[str, ...],
        keys: Sequence[Key],
        kinds: Sequence[Any],
        load: Callable[[], Awaitable[list[Any]]],
        shared: bool,
        read: _Read,
    ) -> list[Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        try:
            values = await self._load_and_fill(keys, kinds, load, shared, read)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(values)
            return values
        finally:
            del self._inflight[flight]

    async def _load_and_fill(
        self,
        keys: Sequence[Key],
        kinds: Sequence[Any],
        load: Callable[[], Awaitable[list[Any]]],
        shared: bool,
        read: _Read,
    ) -> list[Any]:
        lock_name = self.full(keys[0]) + ":lock"
        token = secrets.token_hex(8)
        locked = False
        if shared and self._usable():
            locked = await self.acquire_lock(lock_name, token, self._lock_ttl) is True
            if locked:
                # The previous owner may have filled the value just before we took the lock.
                again = await self._read(keys, kinds, None)
                if again.complete:
                    await self.release_lock(lock_name, token)
                    return again.values
            elif self._usable():
                waited = await self._wait_for_owner(keys, kinds, lock_name)
                if waited is not None:
                    return waited
        try:
            values = await load()
            await self._fill(keys, kinds, values, read)
            return values
        finally:
            if locked:
                await self.release_lock(lock_name, token)

    async def _wait_for_owner(
        self, keys: Sequence[Key], kinds: Sequence[Any], lock_name: str
    ) -> list[Any] | None:
        """Another replica holds the lock: poll until its value lands or the lock is gone."""
        deadline = time.monotonic() + self._lock_ttl
        while time.monotonic() < deadline and self._usable():
            await asyncio.sleep(self._poll)
            read = await self._read(keys, kinds, None)
            if read.complete:
                return read.values
            if not await self._guard(self._client().exists(lock_name)):
                read = await self._read(keys, kinds, None)
                return read.values if read.complete else None
        return None

    async def read(self, key: Key, kind: type[T] | Any) -> T | None:
        """Get one value without loading; counts a hit or a miss."""
        (value,) = (await self._read([key], [kind], None)).values
        if value is None:
            self.counters.misses[key.family] += 1
        else:
            self.counters.hits[key.family] += 1
        return value  # type: ignore[no-any-return]

    async def put(self, key: Key, value: Any, kind: type[Any] | Any) -> None:
        """Overwrite one value: writers call this after their transaction commits."""
        await self.put_many([(key, value, kind)])

    async def put_many(self, entries: Sequence[tuple[Key, Any, Any]]) -> None:
        if self.redis is None or not entries:
            return
        if self._usable():
            pipe = self._client().pipeline(transaction=False)
            for key, value, kind in entries:
                pipe.set(self.full(key), _adapter(kind).dump_json(value), ex=max(1, key.ttl))
            if await self._guard(pipe.execute()) is not None:
                return
        self._repairs.unlink.update(self.full(key) for key, _, _ in entries)

    async def delete(self, *keys: Key | str) -> None:
        if self.redis is None or not keys:
            return
        names = [self.full(key) for key in keys]
        if self._usable() and await self._guard(self._client().unlink(*names)) is not None:
            return
        self._repairs.unlink.update(names)

    async def acquire_lock(self, name: str, token: str, ttl: float) -> bool | None:
        """SET NX PX: True if taken, False if someone holds it, None if Redis failed."""

        async def take(redis: Redis) -> bool:
            return bool(await redis.set(name, token, nx=True, px=int(ttl * 1000)))

        return await self.run(take)

    async def extend_lock(self, name: str, token: str, ttl: float) -> None:
        await self.run(lambda redis: redis.eval(_EXTEND, 1, name, token, int(ttl * 1000)))

    async def release_lock(self, name: str, token: str) -> None:
        """Release a lock we own; if Redis cannot be reached, release it once it returns."""
        if self.redis is None:
            return
        if await self.run(lambda redis: redis.eval(_RELEASE, 1, name, token)) is None:
            self._repairs.release[name] = token

    async def health(self) -> RedisHealth:
        """Ping Redis directly, ignoring the cool-down, and close it when Redis answers."""
        if self.redis is None:
            return "disabled"
        try:
            await self.redis.ping()
        except REDIS_FAILURES:
            return "unavailable"
        self._down_until = 0.0
        await self._repair()
        return "healthy"

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    async def bump(self, versions: Sequence[Key], stale: Sequence[Key] = ()) -> None:
        """After a commit: move the version counters on and drop entries known to be stale."""
        if self.redis is None or not (versions or stale):
            return
        repairs = _Repairs(
            unlink={self.full(key) for key in stale},
            bump={self.full(key): max(1, key.ttl) for key in versions},
        )
        if not (self._usable() and await self._apply(repairs)):
            self._repairs.merge(repairs)

    async def _apply(self, repairs: _Repairs) -> bool:
        pipe = self._client().pipeline(transaction=False)
        for name, ttl in repairs.bump.items():
            pipe.incr(name)
            pipe.expire(name, ttl)
        if repairs.unlink:
            pipe.unlink(*repairs.unlink)
        for name, token in repairs.release.items():
            pipe.eval(_RELEASE, 1, name, token)
        return await self._guard(pipe.execute()) is not None

    async def _repair(self) -> None:
        """Redo the writes that failed while Redis was away, before anything is read."""
        if not self._repairs or not self._usable():
            return
        pending, self._repairs = self._repairs, _Repairs()
        if not await self._apply(pending):
            self._repairs.merge(pending)

    async def _read(self, keys: Sequence[Key], kinds: Sequence[Any], version: Key | None) -> _Read:
        empty = _Read([None] * len(keys), 0, set())
        if not self._usable():
            return empty
        if self._repairs:
            await self._repair()
        names = [self.full(key) for key in keys]
        if version is not None:
            names.append(self.full(version))
        raw = await self._guard(self._client().mget(names))
        if raw is None:
            return empty
        blobs: list[Any] = list(raw)
        stamp: int | None = None
        if version is not None:
            counter = blobs.pop()
            stamp = int(counter) if counter is not None else 0
        read = _Read([], stamp, set())
        for key, kind, blob in zip(keys, kinds, blobs, strict=True):
            value = None
            if blob is not None:
                try:
                    value = self._decode(kind, blob, read.stamp)
                except ValidationError:
                    log.warning("replacing unreadable cache entry %s", key.name)
                    read.overwrite.add(key.name)
                except _Outdated:
                    read.overwrite.add(key.name)
            read.values.append(value)
        return read

    @staticmethod
    def _decode(kind: Any, blob: bytes, stamp: int | None) -> Any:
        if stamp is None:
            return _adapter(kind).validate_json(blob)
        envelope = _adapter(_Versioned[kind]).validate_json(blob)
        if envelope.v != stamp:
            raise _Outdated
        return envelope.data

    async def _fill(
        self, keys: Sequence[Key], kinds: Sequence[Any], values: list[Any], read: _Read
    ) -> None:
        """Readers never overwrite a good value; only unreadable or outdated ones."""
        if not self._usable():
            return
        pipe = self._client().pipeline(transaction=False)
        for key, kind, value in zip(keys, kinds, values, strict=True):
            if value is None:
                continue
            if read.stamp is None:
                blob = _adapter(kind).dump_json(value)
            else:
                envelope = _Versioned[kind](v=read.stamp, data=value)  # type: ignore[valid-type]
                blob = envelope.model_dump_json().encode()
            nx = key.name not in read.overwrite
            pipe.set(self.full(key), blob, ex=max(1, key.ttl), nx=nx)
        await self._guard(pipe.execute())

    def _usable(self) -> bool:
        return self.redis is not None and time.monotonic() >= self._down_until

    def _client(self) -> Redis:
        assert self.redis is not None
        return self.redis

    async def _guard(self, call: Awaitable[T]) -> T | None:
        """Await one Redis call; on failure count it, start the cool-down and return None."""
        try:
            return await call
        except REDIS_FAILURES as exc:
            self.counters.errors += 1
            if time.monotonic() >= self._down_until:
                log.warning("redis unavailable, serving from the database: %s", exc)
            self._down_until = time.monotonic() + self._cooldown
            return None
