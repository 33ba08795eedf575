"""A warm /help when Redis is far away: every Redis reply arrives 0.45 s late.

    python -m bench.slow_redis [--quick]

The dispatcher of `bot.app.build_dispatcher` talks to the machine's Redis through a TCP
proxy that holds back everything Redis sends by 0.45 s (`bench/_proxy.py`), so each round
trip costs 0.45 s more whatever it carries. The learner's context is cached first, with Redis
still near; then Redis moves away and the time from feeding a /help to the bot's SendMessage
request is measured for several /help in a row (the first meets the slow Redis unprepared),
and the slowest one judged.

Target: a warm /help answered in at most 1 s.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

from aiogram.methods import SendMessage

from bench._common import REDIS_URL, RedisWire, Result, clean_redis, cli, describe_trips, ms, stack
from bench._proxy import LatencyProxy
from tests.support import updates

DELAY = 0.45
TARGET = 1.0
LEARNER = 7201


def through(proxy: LatencyProxy) -> str:
    parts = urlsplit(REDIS_URL)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))


async def measure(quick: bool) -> list[Result]:
    repeats = 2 if quick else 5
    target = urlsplit(REDIS_URL).port or 6379
    times: list[float] = []
    trips: list[str] = []
    async with (
        clean_redis(),
        LatencyProxy(target, 0.0) as proxy,
        stack(redis_url=through(proxy)) as s,
    ):
        learner = updates.learner(LEARNER)
        for _ in range(2):
            await s.feed(updates.message("/help", user=learner))
        proxy.delay = DELAY
        with RedisWire() as wire:
            for _ in range(repeats):
                s.session.clear()
                started = time.perf_counter()
                await s.feed(updates.message("/help", user=learner))
                answered = s.session.first(SendMessage, LEARNER, started)
                if answered is None:
                    raise RuntimeError("the warm /help was not answered")
                times.append(answered - started)
                trips.append(describe_trips(wire.take()))
    worst = max(times)
    return [
        Result(
            f"warm /help with Redis +{DELAY:g} s per reply: answered ≤ {TARGET:g} s",
            f"{worst:.2f} s (slowest of {repeats})",
            worst <= TARGET,
            "each (Redis round trips in brackets): "
            + ", ".join(f"{ms(t)} ({t_trips})" for t, t_trips in zip(times, trips, strict=True)),
        )
    ]


if __name__ == "__main__":
    cli(measure)
