"""Typed get-or-set over the gateway: the one cache helper every key family goes through.

`Cache.fetch_many` is one MGET and, on a miss, one load shared by every caller waiting for the
same keys (see `flight`), then a SET NX EX fill. Write rules that keep readers from re-caching
stale data:
- readers fill with SET NX, so they never overwrite a value;
- writers `put` (overwrite) only after their transaction has committed;
- versioned entries are stamped with their version counter, which writers `bump` after they
  commit; an entry whose stamp is not the counter's current value, or whose counter is gone,
  is a miss.

Entries made from what a learner said (CONTENT_FAMILIES) that an update reads or writes are
listed in that learner's content index, so deleting their data can delete them: the names are
collected in a context variable and added to the index in a pipeline sent anyway (the turn's
`put_many(content=...)`, the read of Honzík's voice, a fill, an upload's `put`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.cache.flight import Flight, Hold
from bot.cache.gateway import CacheCounters, Gateway, Repairs, fresh_version, version_step
from bot.cache.keys import CONTENT_FAMILIES, Family, Key

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


@dataclass(slots=True)
class _Content:
    """The content entries this update used that are not yet in their learner's index."""

    pending: set[str] = field(default_factory=set)
    index: Key[str] | None = None  # the learner's index, once their turn is stored


# Whisper and Honzík entries are made from a turn's input, before the turn is stored and its
# learner named; the TTS entry of Honzík's reply comes after, and goes to that learner at once.
_TURN_INPUT = frozenset({Family.WHISPER, Family.HONZIK})


@dataclass(slots=True)
class _IndexAdd:
    """Names owed to a content index, queued in some pipeline; handed back if it failed."""

    state: _Content
    index: str
    ttl: int
    names: set[str]

    def queue(self, pipe: Pipeline) -> None:
        pipe.sadd(self.index, *self.names)
        pipe.expire(self.index, self.ttl)

    def undo(self) -> None:
        self.state.pending |= self.names


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

    def prefetch(self, names: Sequence[str], blobs: Sequence[bytes | None]) -> None:
        """Hand in what this update's own first round trip read (`names` from `names()`).

        Request-scoped (a context variable, so each update task sees its own): the next fetch
        of exactly those names uses the blobs instead of an MGET, once; a write to a name
        forgets it, so nothing read before a write is served after it.
        """
        _PREFETCHED.set(dict(zip(names, blobs, strict=True)))

    def _take_prefetched(self, names: Sequence[str]) -> list[bytes | None] | None:
        seen = _PREFETCHED.get(None)
        if not seen or any(name not in seen for name in names):
            return None
        return [seen.pop(name) for name in names]

    @staticmethod
    def _forget_prefetched(names: Collection[str]) -> None:
        seen = _PREFETCHED.get(None)
        if seen:
            for name in names:
                seen.pop(name, None)

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
        self._note_content(keys)
        values = await self._fetch_many(keys, load, prefetched, shared, version)
        if (owed := self._index_add()) is not None:  # a follower of another caller's read
            await self._send_index_add(owed)
        return values

    async def _fetch_many(
        self,
        keys: Sequence[Key[Any]],
        load: Callable[[], Awaitable[Sequence[Any]]],
        prefetched: Sequence[bytes | None] | None,
        shared: bool,
        version: Key[int] | None,
    ) -> tuple[Any, ...]:
        if shared:
            names = tuple(key.name for key in keys)
            return await self.flight.once(names, lambda: self._fetch_shared(keys, load, version))
        if prefetched is None:
            prefetched = self._take_prefetched(self.names(keys, version=version))
        if prefetched is None:
            read = await self._read(keys, version)
        else:
            read = self._decode(keys, version, list(prefetched))
        self._count(keys, read)
        if read.complete:
            return tuple(read.values)
        return await self.flight.once(
            tuple(key.name for key in keys),
            lambda: self._load_and_fill(keys, load, version, read, None),
        )

    async def _fetch_shared(
        self,
        keys: Sequence[Key[Any]],
        load: Callable[[], Awaitable[Sequence[Any]]],
        version: Key[int] | None,
    ) -> tuple[Any, ...]:
        """Read, and on a miss claim the replicas' lock, in one round trip; then load once.

        Callers in this process share it through `Flight.once` before anything is read.
        """
        hold = self.flight.hold(keys[0].lock)
        owed = self._index_add()  # Honzík's voice, read after the turn named its learner
        names = self.names(keys, version=version)
        blobs = await self.flight.read_or_claim(names, hold, owed.queue if owed else None)
        if blobs is None and owed is not None:
            owed.undo()
        read = (
            self._decode(keys, version, blobs)
            if blobs is not None
            else _Read([None] * len(keys), None, set())
        )
        self._count(keys, read)
        if read.complete:
            return tuple(read.values)
        async with self.flight.across(hold):
            if hold.waited:
                read = await self._read(keys, version)
                if read.complete:
                    return tuple(read.values)
            return await self._load_and_fill(keys, load, version, read, hold)

    def _count(self, keys: Sequence[Key[Any]], read: _Read) -> None:
        for key, value in zip(keys, read.values, strict=True):
            counter = self.counters.misses if value is None else self.counters.hits
            counter[key.family] += 1

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

    async def put_many(
        self,
        entries: Sequence[tuple[Key[Any], object]],
        *,
        bump: Sequence[Key[int]] = (),
        content: Key[str] | None = None,
    ) -> None:
        """After a commit: overwrite values and move version counters on, in one round trip.

        A bypassed family's entries are dropped instead; what cannot reach Redis now is redone
        (as a deletion and a bump) once it is back.

        `content` is the index of the learner whose turn was just stored: the content entries
        this update has used go into it in the same round trip, and those it uses later
        (Honzík's voice) as they are used.
        """
        if self.redis is None:
            return
        self._note_content(key for key, _ in entries)
        owed = self._index_add(content)
        if not (entries or bump or owed):
            return
        written = [(key, value) for key, value in entries if key.family not in self.bypass]
        stale = {self.full(key) for key, _ in entries if key.family in self.bypass}
        counters = {self.full(key): max(1, key.ttl) for key in bump}
        self._forget_prefetched([self.full(key) for key, _ in entries] + list(counters))

        def build(pipe: Pipeline) -> None:
            for key, value in written:
                pipe.set(self.full(key), _dump(key.kind, value, None), ex=max(1, key.ttl))
            for name, ttl in counters.items():
                pipe.incrby(name, version_step())
                pipe.expire(name, ttl)
            if owed is not None:
                owed.queue(pipe)

        if (written or counters or owed) and await self.batch(build) is None:
            if owed is not None:
                owed.undo()
            stale.update(self.full(key) for key, _ in written)
            await self.repair(Repairs(unlink=stale, bump=counters))
            return
        await self.repair(Repairs(unlink=stale))

    async def content_of(self, index: Key[str]) -> list[str]:
        """The names in a learner's content index, to delete with it (none without Redis)."""
        members = await self.run(lambda redis: redis.smembers(self.full(index)))
        return sorted(_text(name) for name in members or ())

    def _note_content(self, keys: Iterable[Key[Any]]) -> None:
        """Remember the content entries among `keys` for their learner's index."""
        state: _Content | None = _CONTENT.get(None)
        for key in keys:
            if key.family not in CONTENT_FAMILIES or key.family in self.bypass:
                continue
            if state is None:
                state = _Content()
                _CONTENT.set(state)
            if key.family in _TURN_INPUT:
                state.index = None  # a new turn: its learner is named when it is stored
            state.pending.add(key.name)

    def _index_add(self, index: Key[str] | None = None) -> _IndexAdd | None:
        """Take the names owed to the index now known (`index`, or the one named before)."""
        state: _Content | None = _CONTENT.get(None)
        if state is None:
            if index is None:
                return None
            state = _Content(index=index)
            _CONTENT.set(state)
        if index is not None:
            state.index = index
        if state.index is None or not state.pending:
            return None
        names, state.pending = state.pending, set()
        return _IndexAdd(state, self.full(state.index), max(1, state.index.ttl), names)

    async def _send_index_add(self, owed: _IndexAdd) -> None:
        if await self.batch(owed.queue) is None:
            owed.undo()

    async def delete(self, *keys: Key[Any] | str) -> None:
        names = {self.full(key) for key in keys}
        self._forget_prefetched(names)
        await self.repair(Repairs(unlink=names))

    async def bump(
        self, versions: Sequence[Key[int]], stale: Sequence[Key[Any] | str] = ()
    ) -> None:
        """After a commit: move the version counters on and drop entries known to be stale."""
        repairs = Repairs(
            unlink={self.full(key) for key in stale},
            bump={self.full(key): max(1, key.ttl) for key in versions},
        )
        self._forget_prefetched(repairs.unlink | set(repairs.bump))
        await self.repair(repairs)

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
        hold: Hold | None,
    ) -> tuple[Any, ...]:
        if version is not None and read.stamp is None:
            read.stamp = await self._start_version(version)
        values = tuple(await load())
        await self._fill(keys, values, version, read, hold)
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
        hold: Hold | None,
    ) -> None:
        """Readers never overwrite a good value; only unreadable or outdated ones.

        The replicas' lock, if held, is released in the same round trip as the fill.
        """
        if version is not None and read.stamp is None:
            return  # nothing to stamp the entries with
        filled = [
            (key, value) for key, value in zip(keys, values, strict=True) if value is not None
        ]
        if not filled:
            return
        owed = self._index_add()

        def build(pipe: Pipeline) -> None:
            for key, value in filled:
                blob = _dump(key.kind, value, read.stamp if version is not None else None)
                nx = key.name not in read.overwrite
                pipe.set(self.full(key), blob, ex=max(1, key.ttl), nx=nx)
            if owed is not None:
                owed.queue(pipe)
            if hold is not None:
                hold.release_in(pipe)

        if await self.batch(build) is None:
            if owed is not None:
                owed.undo()
            if hold is not None:
                hold.released = False


# What the current update's first round trip read, by full name (see `Cache.prefetch`).
_PREFETCHED: ContextVar[dict[str, bytes | None]] = ContextVar("mluv_prefetched")
# The content entries the current update used (see `Cache.put_many`'s `content`).
_CONTENT: ContextVar[_Content] = ContextVar("mluv_content")


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name


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
