"""Typed get-or-set over the gateway: the one cache helper every key family goes through.

`Cache.fetch_many` is one MGET and, on a miss, one load shared by every caller waiting for the
same keys (see `flight`), then a SET NX EX fill. Write rules that keep readers from re-caching
stale data:
- readers fill with SET NX, so they never overwrite a value;
- writers `put` (overwrite) only after their transaction has committed;
- versioned entries are stamped with their version counter, which writers `bump` after they
  commit; an entry whose stamp is not the counter's current value, or whose counter is gone,
  is a miss.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.cache.flight import Flight
from bot.cache.gateway import CacheCounters, Gateway, Repairs, fresh_version
from bot.cache.keys import Family, Key

log = logging.getLogger(__name__)

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")


@lru_cache(maxsize=64)
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


class _Versioned(BaseModel, Generic[T]):
    """A cached value stamped with the version counter it was loaded under."""

    v: int
    data: T


@dataclass(slots=True)
class _Read:
    values: list[Any]
    stamp: int | None  # the version counter's value; None when it is missing or not read
    overwrite: set[str]  # entries that are there but unreadable or outdated

    @property
    def complete(self) -> bool:
        return all(value is not None for value in self.values)


class Cache(Gateway):
    """Fail-open JSON cache: the gateway plus typed get-or-set, versions and single-flight.

    Families in `bypass` are neither read nor filled: every call loads from the source and
    counts a miss. Their invalidations still run, so no stale entry is left behind for the
    day the bypass is lifted.
    """

    def __init__(
        self,
        redis: Redis | None,
        *,
        prefix: str = "",
        counters: CacheCounters | None = None,
        cooldown: float = 1.0,
        lock_ttl: float = 30.0,
        poll_interval: float = 0.05,
        bypass: Collection[Family] = (),
    ) -> None:
        super().__init__(redis, prefix=prefix, counters=counters, cooldown=cooldown)
        self.flight = Flight(self, lock_ttl=lock_ttl, poll_interval=poll_interval)
        self.bypass = frozenset(bypass)

    def names(self, keys: Sequence[Key[Any]], *, version: Key[int] | None = None) -> list[str]:
        """The full names `fetch_many` reads, in order: for callers that MGET them in their
        own `batch` and hand the blobs in as `prefetched`."""
        names = [self.full(key) for key in keys]
        if version is not None:
            names.append(self.full(version))
        return names

    async def fetch(
        self,
        key: Key[T],
        load: Callable[[], Awaitable[T]],
        *,
        shared: bool = False,
        version: Key[int] | None = None,
    ) -> T:
        """Get one value, or load it once and cache it."""

        async def load_one() -> tuple[T]:
            return (await load(),)

        (value,) = await self.fetch_many((key,), load_one, shared=shared, version=version)
        return value

    @overload
    async def fetch_many(
        self,
        keys: tuple[Key[A]],
        load: Callable[[], Awaitable[tuple[A]]],
        *,
        prefetched: Sequence[bytes | None] | None = None,
        shared: bool = False,
        version: Key[int] | None = None,
    ) -> tuple[A]: ...

    @overload
    async def fetch_many(
        self,
        keys: tuple[Key[A], Key[B]],
        load: Callable[[], Awaitable[tuple[A, B]]],
        *,
        prefetched: Sequence[bytes | None] | None = None,
        shared: bool = False,
        version: Key[int] | None = None,
    ) -> tuple[A, B]: ...

    @overload
    async def fetch_many(
        self,
        keys: Sequence[Key[T]],
        load: Callable[[], Awaitable[Sequence[T]]],
        *,
        prefetched: Sequence[bytes | None] | None = None,
        shared: bool = False,
        version: Key[int] | None = None,
    ) -> tuple[T, ...]: ...

    async def fetch_many(
        self,
        keys: Sequence[Key[Any]],
        load: Callable[[], Awaitable[Sequence[Any]]],
        *,
        prefetched: Sequence[bytes | None] | None = None,
        shared: bool = False,
        version: Key[int] | None = None,
    ) -> tuple[Any, ...]:
        """Get several values in one round trip; on any miss, load all of them once.

        `prefetched` are the raw values of `names(keys, version=version)`, already read by the
        caller; then this makes no read of its own.

        `shared=True` also serialises the load across replicas with a Redis lock, for
        upstream calls that cost money (OpenAI): the other replicas wait for the value.

        `version` names a counter that writers `bump` after they commit. It is read in the
        same MGET; an entry filled under another version, or whose counter is gone, is a miss.
        This closes the race where a reader loads just before a writer commits and would
        otherwise cache the old value for the entry's whole lifetime (stats live until midnight).
        """
        if any(key.family in self.bypass for key in keys):
            for key in keys:
                self.counters.misses[key.family] += 1
            return tuple(await load())
        if prefetched is None:
            read = await self._read(keys, version)
        else:
            read = self._decode(keys, version, list(prefetched))
        for key, value in zip(keys, read.values, strict=True):
            counter = self.counters.misses if value is None else self.counters.hits
            counter[key.family] += 1
        if read.complete:
            return tuple(read.values)

        async def lead() -> tuple[Any, ...]:
            if not shared:
                return await self._load_and_fill(keys, load, version, read)
            async with self.flight.across(keys[0].lock):
                again = await self._read(keys, version)
                if again.complete:
                    return tuple(again.values)
                return await self._load_and_fill(keys, load, version, again)

        return await self.flight.once(tuple(key.name for key in keys), lead)

    async def read(self, key: Key[T]) -> T | None:
        """Get one value without loading; counts a hit or a miss."""
        value: T | None = None
        if key.family not in self.bypass:
            (value,) = (await self._read((key,), None)).values
        counter = self.counters.misses if value is None else self.counters.hits
        counter[key.family] += 1
        return value

    async def put(self, key: Key[T], value: T) -> None:
        """Overwrite one value: writers call this after their transaction commits."""
        await self.put_many([(key, value)])

    async def put_many(self, entries: Sequence[tuple[Key[Any], object]]) -> None:
        """Overwrite values in one round trip; a bypassed family's entries are dropped instead."""
        if self.redis is None or not entries:
            return
        written = [(key, value) for key, value in entries if key.family not in self.bypass]
        stale = {self.full(key) for key, _ in entries if key.family in self.bypass}

        def build(pipe: Pipeline) -> None:
            for key, value in written:
                pipe.set(self.full(key), _dump(key.kind, value, None), ex=max(1, key.ttl))

        if written and await self.batch(build) is None:
            stale.update(self.full(key) for key, _ in written)
        await self.repair(Repairs(unlink=stale))

    async def delete(self, *keys: Key[Any] | str) -> None:
        await self.repair(Repairs(unlink={self.full(key) for key in keys}))

    async def bump(self, versions: Sequence[Key[int]], stale: Sequence[Key[Any]] = ()) -> None:
        """After a commit: move the version counters on and drop entries known to be stale."""
        await self.repair(
            Repairs(
                unlink={self.full(key) for key in stale},
                bump={self.full(key): max(1, key.ttl) for key in versions},
            )
        )

    async def _read(self, keys: Sequence[Key[Any]], version: Key[int] | None) -> _Read:
        names = self.names(keys, version=version)
        blobs = await self.run(lambda redis: redis.mget(names))
        if blobs is None:
            return _Read([None] * len(keys), None, set())
        return self._decode(keys, version, list(blobs))

    @staticmethod
    def _decode(keys: Sequence[Key[Any]], version: Key[int] | None, blobs: list[Any]) -> _Read:
        counter = blobs.pop() if version is not None else None
        read = _Read([], int(counter) if counter is not None else None, set())
        for key, blob in zip(keys, blobs, strict=True):
            value = None
            if blob is not None:
                try:
                    value = _parse(key.kind, blob, version is not None, read.stamp)
                except ValidationError:
                    log.warning("replacing unreadable cache entry %s", key.name)
                if value is None:
                    read.overwrite.add(key.name)
            read.values.append(value)
        return read

    async def _load_and_fill(
        self,
        keys: Sequence[Key[Any]],
        load: Callable[[], Awaitable[Sequence[Any]]],
        version: Key[int] | None,
        read: _Read,
    ) -> tuple[Any, ...]:
        if version is not None and read.stamp is None:
            read.stamp = await self._start_version(version)
        values = tuple(await load())
        await self._fill(keys, values, version, read)
        return values

    async def _start_version(self, version: Key[int]) -> int | None:
        """Recreate a missing counter at a random value, and read whichever value it now has.

        Done before the load, like the MGET it completes: a write that commits after the load
        has read still moves the counter on, so what is filled here is then outdated.
        """
        name = self.full(version)

        def build(pipe: Pipeline) -> None:
            pipe.set(name, fresh_version(), nx=True, ex=max(1, version.ttl))
            pipe.get(name)

        results = await self.batch(build)
        if results is None or results[1] is None:
            return None
        return int(results[1])

    async def _fill(
        self,
        keys: Sequence[Key[Any]],
        values: Sequence[Any],
        version: Key[int] | None,
        read: _Read,
    ) -> None:
        """Readers never overwrite a good value; only unreadable or outdated ones."""
        if version is not None and read.stamp is None:
            return  # nothing to stamp the entries with
        filled = [
            (key, value) for key, value in zip(keys, values, strict=True) if value is not None
        ]
        if not filled:
            return

        def build(pipe: Pipeline) -> None:
            for key, value in filled:
                blob = _dump(key.kind, value, read.stamp if version is not None else None)
                nx = key.name not in read.overwrite
                pipe.set(self.full(key), blob, ex=max(1, key.ttl), nx=nx)

        await self.batch(build)


def _parse(kind: Any, blob: bytes, versioned: bool, stamp: int | None) -> Any:
    """The cached value, or None when it is outdated (or its version counter is gone)."""
    if not versioned:
        return _adapter(kind).validate_json(blob)
    envelope = _adapter(_Versioned[kind]).validate_json(blob)
    return envelope.data if stamp is not None and envelope.v == stamp else None


def _dump(kind: Any, value: Any, stamp: int | None) -> bytes:
    if stamp is None:
        return _adapter(kind).dump_json(value)
    return _adapter(_Versioned[kind]).dump_json(_Versioned[kind](v=stamp, data=value))
