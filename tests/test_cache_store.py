"""`bot.cache.Cache` against fakeredis: get-or-set, single-flight, NX fill, fail-open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fakeredis import FakeAsyncRedis, FakeServer
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.cache import gateway
from bot.cache.keys import CacheTTLs, Family, Key, Keys
from bot.cache.store import Cache
from bot.domain import Level, NativeLanguage, Profile

KEYS = Keys(CacheTTLs())
DEADLINE = 5.0


def holding(key: Key[Any], kind: Any) -> Key[Any]:
    """The same entry, holding values of another type."""
    return Key(key.name, key.family, key.ttl, kind)


class CountingRedis(FakeAsyncRedis):
    """A fakeredis client that records every command it sends (pipelines count as one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[tuple[Any, ...]] = []
        self.on_command: Callable[[tuple[Any, ...], Any], None] | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(args)
        result = await super().execute_command(*args, **options)
        if self.on_command is not None:
            self.on_command(args, result)
        return result

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        self.commands.append(("PIPELINE",))
        return super().pipeline(*args, **kwargs)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll an in-process condition with a deadline (no fixed sleeps as synchronisation)."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def counting_loader(value: Any) -> tuple[Callable[[], Awaitable[Any]], list[int]]:
    calls: list[int] = []

    async def load() -> Any:
        calls.append(1)
        return value

    return load, calls


async def must_not_load() -> Any:
    raise AssertionError("the loader ran although the value was cached")


def profile(telegram_id: int = 1, username: str | None = "anna") -> Profile:
    return Profile(
        id=telegram_id,
        telegram_id=telegram_id,
        username=username,
        first_name="Anna",
        native_language=NativeLanguage.UK,
        level=Level.BEGINNER,
        onboarded=True,
    )


# --- get-or-set basics ---------------------------------------------------------------------


async def test_miss_then_hit_is_counted_per_family(cache: Cache) -> None:
    user_key = holding(KEYS.profile(1), dict[str, int])
    stats_key = KEYS.progress(1, 86400, dict[str, int])
    load, calls = counting_loader({"a": 1})

    assert await cache.fetch(user_key, load) == {"a": 1}
    assert await cache.fetch(user_key, load) == {"a": 1}
    assert await cache.fetch(stats_key, load) == {"a": 1}

    assert len(calls) == 2  # one load per key, the second user fetch was a hit
    assert cache.counters.hits[Family.USER] == 1
    assert cache.counters.misses[Family.USER] == 1
    assert cache.counters.hits[Family.STATS] == 0
    assert cache.counters.misses[Family.STATS] == 1
    assert cache.counters.errors == 0


async def test_read_counts_and_does_not_load(cache: Cache) -> None:
    key = KEYS.words_all(3, list[str])
    assert await cache.read(key) is None
    await cache.put(key, ["pes"])
    assert await cache.read(key) == ["pes"]
    assert cache.counters.misses[Family.WORDS] == 1
    assert cache.counters.hits[Family.WORDS] == 1


async def test_fetch_many_partial_hit_loads_once_and_counts_each_key(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    a, b = holding(KEYS.profile(5), str), holding(KEYS.settings(5), str)
    await cache.put(a, "cached-a")
    calls: list[int] = []

    async def load() -> tuple[str, str]:
        calls.append(1)
        return "loaded-a", "loaded-b"

    assert await cache.fetch_many((a, b), load) == ("loaded-a", "loaded-b")
    assert calls == [1]
    assert cache.counters.hits[Family.USER] == 1
    assert cache.counters.misses[Family.USER] == 1
    # The reader never overwrites: the entry that was there stays; the missing one is filled.
    assert await fake_redis.get("user:5:profile") == b'"cached-a"'
    assert await fake_redis.get("user:5:settings") == b'"loaded-b"'
    assert await cache.fetch_many((a, b), must_not_load) == ("cached-a", "loaded-b")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (Profile, profile(7)),
        (dict[str, int], {"messages": 3, "words": 12}),
        (list[dict[str, str]], [{"wrong": "jsem", "right": "jsme"}]),
        (list[int], [1, 2, 3]),
        (str, "Ahoj, jak se máš?"),
    ],
)
async def test_values_round_trip_through_json(cache: Cache, kind: Any, value: Any) -> None:
    key = KEYS.honzik("digest", kind)
    load, _ = counting_loader(value)
    assert await cache.fetch(key, load) == value

    again = await cache.fetch(key, must_not_load)
    assert again == value
    assert type(again) is type(value)
    if isinstance(value, Profile):
        assert again.native_language is NativeLanguage.UK
        assert again.level is Level.BEGINNER


async def test_fill_and_put_use_the_keys_ttl(cache: Cache, fake_redis: FakeAsyncRedis) -> None:
    filled = Key("stats:1:daily:2026-01-01", Family.STATS, 123, int)
    written = Key("tts:abc:onyx", Family.TTS, 4567, str)
    load, _ = counting_loader(1)

    await cache.fetch(filled, load)
    await cache.put(written, "x")

    assert 120 <= await fake_redis.ttl("stats:1:daily:2026-01-01") <= 123
    assert 4560 <= await fake_redis.ttl("tts:abc:onyx") <= 4567


async def test_zero_ttl_still_expires(cache: Cache, fake_redis: FakeAsyncRedis) -> None:
    # A daily-stats key built at midnight has 0 seconds left: it must not live forever.
    key = Key("stats:1:daily:2026-01-01", Family.STATS, 0, int)
    load, _ = counting_loader(1)
    await cache.fetch(key, load)
    assert 0 < await fake_redis.ttl(key.name) <= 1


# --- write rules: NX fill, overwriting put -------------------------------------------------


async def test_fill_does_not_overwrite_a_value_put_by_a_writer_meanwhile(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    key = KEYS.profile(11)
    fresh = profile(11, username="after-commit")
    stale = profile(11, username="read-before-commit")

    async def load() -> Profile:
        # A writer commits and puts the new value between this reader's miss and its fill.
        await cache.put(key, fresh)
        return stale

    assert await cache.fetch(key, load) == stale
    assert await cache.fetch(key, must_not_load) == fresh
    assert Profile.model_validate_json(await fake_redis.get("user:11:profile")) == fresh


async def test_put_overwrites_and_delete_removes(cache: Cache, fake_redis: FakeAsyncRedis) -> None:
    key = holding(KEYS.settings(12), dict[str, str])
    load, _ = counting_loader({"style": "friendly"})
    await cache.fetch(key, load)

    await cache.put(key, {"style": "tutor"})
    assert await cache.fetch(key, must_not_load) == {"style": "tutor"}

    await cache.put_many([(key, {"style": "casual"})])
    assert await cache.read(key) == {"style": "casual"}

    await cache.delete(key)
    assert await fake_redis.exists("user:12:settings") == 0


async def test_none_from_the_loader_is_not_cached(cache: Cache, fake_redis: FakeAsyncRedis) -> None:
    key = KEYS.progress(13, 86400, dict[str, int] | None)  # type: ignore[arg-type]
    load, calls = counting_loader(None)
    assert await cache.fetch(key, load) is None
    assert await cache.fetch(key, load) is None
    assert len(calls) == 2
    assert await fake_redis.exists("stats:13:progress") == 0


# --- single-flight -------------------------------------------------------------------------


async def test_concurrent_misses_share_one_load(cache: Cache) -> None:
    key = KEYS.whisper("audio", str)
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        await release.wait()
        return "dobrý den"

    tasks = [asyncio.create_task(cache.fetch(key, load)) for _ in range(5)]
    # Every caller has missed (and so is either loading or waiting) before the load finishes.
    await until(lambda: cache.counters.misses[Family.WHISPER] == 5, "five misses")
    assert calls == [1]
    release.set()

    results = await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
    assert results == ["dobrý den"] * 5
    assert calls == [1]
    assert await cache.fetch(key, must_not_load) == "dobrý den"


async def test_a_load_error_reaches_every_waiter_and_the_next_call_retries(cache: Cache) -> None:
    key = KEYS.tts("text", "onyx", str)
    release = asyncio.Event()
    calls: list[int] = []

    async def failing() -> str:
        calls.append(1)
        await release.wait()
        raise RuntimeError("openai is down")

    tasks = [asyncio.create_task(cache.fetch(key, failing)) for _ in range(5)]
    await until(lambda: cache.counters.misses[Family.TTS] == 5, "five misses")
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), DEADLINE)

    assert calls == [1]
    assert all(isinstance(r, RuntimeError) and str(r) == "openai is down" for r in results)

    load, retry_calls = counting_loader("audio")
    assert await cache.fetch(key, load) == "audio"
    assert retry_calls == [1]
    assert await cache.fetch(key, must_not_load) == "audio"


async def test_cancelling_the_loading_caller_does_not_cancel_the_waiters(cache: Cache) -> None:
    key = KEYS.honzik("cancel", str)
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[int] = []

    async def load() -> str:
        calls.append(1)
        if len(calls) == 1:
            started.set()
            await asyncio.Event().wait()  # the owner hangs until it is cancelled
        await release.wait()
        return "value"

    owner = asyncio.create_task(cache.fetch(key, load))
    await asyncio.wait_for(started.wait(), DEADLINE)
    waiter = asyncio.create_task(cache.fetch(key, load))
    await until(lambda: cache.counters.misses[Family.HONZIK] == 2, "the waiter's miss")

    owner.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await owner
    # The waiter was never cancelled itself: it should get the value (by loading it again).
    assert await asyncio.wait_for(waiter, DEADLINE) == "value"


# --- shared=True: single-flight across replicas --------------------------------------------


async def test_shared_load_runs_on_one_replica_while_the_other_waits() -> None:
    server = FakeServer()
    redis_a = CountingRedis(server=server)
    redis_b = CountingRedis(server=server)
    replica_a = Cache(redis_a, prefix="mluv:", poll_interval=0.005, lock_ttl=10)
    replica_b = Cache(redis_b, prefix="mluv:", poll_interval=0.005, lock_ttl=10)
    key = KEYS.honzik("expensive", str)
    lock_name = "mluv:honzik:response:expensive:lock"

    b_waiting = asyncio.Event()

    def watch_b(args: tuple[Any, ...], result: Any) -> None:
        if args[0] == "SET" and args[1] == lock_name and result is None:
            b_waiting.set()  # B found A's lock and is about to wait for A's value

    redis_b.on_command = watch_b
    a_started = asyncio.Event()
    a_calls: list[int] = []

    async def load_a() -> str:
        a_calls.append(1)
        a_started.set()
        await b_waiting.wait()
        # While A loads, the lock is held with a bounded lifetime.
        assert await redis_a.exists(lock_name) == 1
        assert 0 < await redis_a.pttl(lock_name) <= 10_000
        return "answer from A"

    try:
        task_a = asyncio.create_task(replica_a.fetch(key, load_a, shared=True))
        await asyncio.wait_for(a_started.wait(), DEADLINE)
        result_b = await asyncio.wait_for(
            replica_b.fetch(key, must_not_load, shared=True), DEADLINE
        )
        result_a = await asyncio.wait_for(task_a, DEADLINE)

        assert (result_a, result_b) == ("answer from A", "answer from A")
        assert a_calls == [1]
        assert replica_b.counters.misses[Family.HONZIK] == 1
        assert await redis_a.exists(lock_name) == 0
        assert await redis_a.get("mluv:honzik:response:expensive") == b'"answer from A"'
    finally:
        await redis_a.aclose()
        await redis_b.aclose()


async def test_shared_waiter_loads_itself_when_the_lock_owner_fails() -> None:
    server = FakeServer()
    redis_a, redis_b = CountingRedis(server=server), CountingRedis(server=server)
    replica_a = Cache(redis_a, poll_interval=0.005)
    replica_b = Cache(redis_b, poll_interval=0.005)
    key = KEYS.whisper("owner-fails", str)
    lock_name = "whisper:owner-fails:lock"

    b_waiting = asyncio.Event()
    redis_b.on_command = lambda args, result: (
        b_waiting.set() if args[:2] == ("SET", lock_name) and result is None else None
    )
    a_started = asyncio.Event()

    async def load_a() -> str:
        a_started.set()
        await b_waiting.wait()
        raise RuntimeError("upstream failed")

    load_b, b_calls = counting_loader("B loaded it")
    try:
        task_a = asyncio.create_task(replica_a.fetch(key, load_a, shared=True))
        await asyncio.wait_for(a_started.wait(), DEADLINE)
        result_b = await asyncio.wait_for(replica_b.fetch(key, load_b, shared=True), DEADLINE)
        with pytest.raises(RuntimeError, match="upstream failed"):
            await task_a

        assert result_b == "B loaded it"
        assert b_calls == [1]
        assert await redis_a.exists(lock_name) == 0
    finally:
        await redis_a.aclose()
        await redis_b.aclose()


async def test_lock_is_not_released_by_a_replica_that_no_longer_owns_it() -> None:
    redis = CountingRedis()
    cache = Cache(redis, lock_ttl=10)
    key = KEYS.tts("digest", "nova", str)
    lock_name = "tts:digest:nova:lock"

    async def load() -> str:
        # Our lock expired and another replica took it over while we were loading.
        await redis.set(lock_name, "someone-else")
        return "x"

    try:
        assert await cache.fetch(key, load, shared=True) == "x"
        assert await redis.get(lock_name) == b"someone-else"
        assert cache.counters.errors == 0  # a lock that expired is no Redis failure
    finally:
        await redis.aclose()


# --- fail-open -----------------------------------------------------------------------------


async def test_redis_down_fails_open_with_a_cool_down_then_recovers() -> None:
    server = FakeServer()
    redis = CountingRedis(server=server)
    cache = Cache(redis, cooldown=60.0)
    key = holding(KEYS.profile(21), str)
    load, calls = counting_loader("from the database")
    try:
        server.connected = False

        assert await cache.fetch(key, load) == "from the database"
        assert cache.counters.errors == 1
        assert [c[0] for c in redis.commands] == ["MGET"]  # no fill attempted once it failed

        # Inside the cool-down nothing touches Redis at all, and nothing raises.
        redis.commands.clear()
        assert await cache.fetch(key, load) == "from the database"
        pair = (key, holding(KEYS.settings(21), str))
        assert await cache.fetch_many(pair, _pair) == ("p", "s")
        await cache.put(key, "x")
        await cache.delete(key)
        assert redis.commands == []
        assert cache.counters.errors == 1
        assert len(calls) == 2

        assert await cache.health() == "unavailable"

        server.connected = True
        assert await cache.health() == "healthy"
        redis.commands.clear()
        assert await cache.fetch(key, load) == "from the database"
        assert len(calls) == 3
        assert {c[0] for c in redis.commands} == {"MGET", "PIPELINE"}
        assert await redis.get("user:21:profile") == b'"from the database"'
        assert await cache.fetch(key, must_not_load) == "from the database"
        assert cache.counters.errors == 1
    finally:
        server.connected = True
        await redis.aclose()


async def _pair() -> tuple[str, str]:
    return "p", "s"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_cool_down_expires_and_redis_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(gateway, "time", clock)
    server = FakeServer()
    redis = CountingRedis(server=server)
    cache = Cache(redis, cooldown=1.0)
    key = KEYS.progress(22, 86400, int)
    load, _ = counting_loader(7)
    try:
        server.connected = False
        await cache.fetch(key, load)
        assert cache.counters.errors == 1

        clock.now += 0.5
        redis.commands.clear()
        await cache.fetch(key, load)
        assert redis.commands == []

        clock.now += 0.6  # past the cool-down: Redis is tried again (and still fails)
        await cache.fetch(key, load)
        assert [c[0] for c in redis.commands] == ["MGET"]
        assert cache.counters.errors == 2

        server.connected = True
        clock.now += 1.1
        await cache.fetch(key, load)
        assert await redis.get("stats:22:progress") == b"7"
        assert await cache.fetch(key, must_not_load) == 7
    finally:
        server.connected = True
        await redis.aclose()


async def test_unreachable_redis_server_fails_open() -> None:
    redis = Redis(
        host="127.0.0.1",
        port=1,
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), retries=1),
    )
    cache = Cache(redis, cooldown=60.0)
    load, calls = counting_loader({"a": 1})
    key = holding(KEYS.profile(23), dict[str, int])
    try:
        assert await cache.fetch(key, load) == {"a": 1}
        assert await cache.fetch(key, load) == {"a": 1}
        await cache.put(key, {"a": 2})
        assert len(calls) == 2
        assert cache.counters.errors == 1
        assert await cache.health() == "unavailable"
    finally:
        await cache.close()


async def test_shared_fetch_fails_open_when_redis_is_down() -> None:
    server = FakeServer()
    redis = CountingRedis(server=server)
    cache = Cache(redis, cooldown=60.0)
    load, calls = counting_loader("v")
    try:
        server.connected = False
        assert await cache.fetch(KEYS.honzik("down", str), load, shared=True) == "v"
        assert calls == [1]
    finally:
        server.connected = True
        await redis.aclose()


# --- unreadable entries, prefix, disabled ---------------------------------------------------


@pytest.mark.parametrize("blob", [b"{not json", b'{"id": "not a profile"}'])
async def test_unreadable_entry_is_a_miss(
    cache: Cache, fake_redis: FakeAsyncRedis, blob: bytes
) -> None:
    await fake_redis.set("user:31:profile", blob)
    load, calls = counting_loader(profile(31))
    assert await cache.fetch(KEYS.profile(31), load) == profile(31)
    assert calls == [1]
    assert cache.counters.misses[Family.USER] == 1
    assert cache.counters.errors == 0


async def test_unreadable_entry_is_replaced_by_the_fill(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    await fake_redis.set("user:32:profile", b"{not json", ex=3600)
    load, _ = counting_loader(profile(32))
    await cache.fetch(KEYS.profile(32), load)

    assert Profile.model_validate_json(await fake_redis.get("user:32:profile")) == profile(32)
    assert await cache.fetch(KEYS.profile(32), must_not_load) == profile(32)


async def test_prefix_is_applied_to_every_key() -> None:
    redis = CountingRedis()
    cache = Cache(redis, prefix="staging:")
    key = holding(KEYS.profile(41), str)
    seen_during_load: list[bytes] = []

    async def load() -> str:
        seen_during_load.extend(await redis.keys("*"))
        return "v"

    try:
        await cache.fetch(key, load, shared=True)
        await cache.fetch_many((holding(KEYS.settings(41), str), KEYS.history(41, 6, str)), _pair)
        await cache.put(KEYS.words_due(41, 86400, list[str]), ["x"])
        assert seen_during_load == [b"staging:user:41:profile:lock"]
        assert sorted(await redis.keys("*")) == [
            b"staging:user:41:history:6",
            b"staging:user:41:profile",
            b"staging:user:41:settings",
            b"staging:words:41:due",
        ]
        assert cache.full(key) == "staging:user:41:profile"
        assert cache.full("user:41:settings") == "staging:user:41:settings"

        await cache.delete(key, "words:41:due")
        assert sorted(await redis.keys("*")) == [
            b"staging:user:41:history:6",
            b"staging:user:41:settings",
        ]
        key_args = [c[1:] for c in redis.commands if c[0] in {"MGET", "UNLINK", "EXISTS"}]
        assert all(str(k).startswith("staging:") for args in key_args for k in args)
    finally:
        await redis.aclose()


async def test_disabled_cache_loads_every_time() -> None:
    cache = Cache(None)
    load, calls = counting_loader("v")

    assert cache.enabled is False
    key = holding(KEYS.profile(51), str)
    assert await cache.fetch(key, load) == "v"
    assert await cache.fetch(key, load, shared=True) == "v"
    pair = (holding(KEYS.settings(51), str), KEYS.progress(51, 86400, str))
    assert await cache.fetch_many(pair, _pair) == ("p", "s")
    await cache.put(key, "x")
    await cache.delete(key)
    assert await cache.read(key) is None
    assert len(calls) == 2
    assert await cache.health() == "disabled"
    assert cache.counters.errors == 0
    await cache.close()
