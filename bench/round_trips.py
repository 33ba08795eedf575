"""Redis round trips and SQL statements per update, on a warm cache.

    python -m bench.round_trips [--quick]

The dispatcher of `bot.app.build_dispatcher` against the machine's Redis, a temporary SQLite
file and the in-process OpenAI stand-in. Updates are fed one at a time, so each count belongs
to one update. Anna and Boris have the same settings: Anna's messages miss Honzík's cache,
Boris sends the same words right after her and gets her cached answers; his second message
finds both the answer and his conversation history in Redis.

A pooled connection's handshake (HELLO, CLIENT, SELECT...) is once per connection, not per
update: it is reported beside the counts, not in them.

Targets: a warm /help costs 1 Redis round trip in polling mode and at most 2 in webhook mode,
and runs no SQL; text with a cached Honzík answer and cached history at most 4 round trips,
a Honzík miss at most 8.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiogram.methods import SendMessage
from aiogram.types import Update

from bench._common import (
    HEARD,
    RedisWire,
    Result,
    SqlCounter,
    Stack,
    clean_redis,
    cli,
    describe_trips,
    reply_per_request,
    round_trips,
    stack,
)
from bench._webhook import help_trips
from tests.standins.openai import FakeOpenAI
from tests.support import updates

FIRST, SECOND = "Ahoj, jak se máš?", "Dneska jdu do kina s kamarádem."
# What redis-py sends when it opens a pooled connection: once per connection, not per update.
# A streamed miss synthesises the voice while the answer is still stored, so the first one
# after start-up opens a second connection.
HANDSHAKE = frozenset({"HELLO", "PING", "CLIENT", "SELECT", "AUTH"})


def connecting(trip: list[str]) -> bool:
    return all(command.split()[0].upper() in HANDSHAKE for command in trip)


@dataclass
class Counted:
    trips: list[list[str]]
    statements: list[str]
    chat_calls: int
    connecting: int = 0  # round trips that opened a pooled connection


class Probe:
    def __init__(self, s: Stack, oa: FakeOpenAI, wire: RedisWire) -> None:
        self.s, self.oa, self.wire = s, oa, wire
        self.sql = SqlCounter(s.resources.engine)

    async def feed(self, update: Update, answer: str = "") -> Counted:
        """Feed one update; it must be answered with a message containing `answer`. A new
        pooled connection's handshake is counted apart (`Counted.connecting`)."""
        self.wire.take()
        self.sql.take()
        self.s.session.clear()
        calls = len(self.oa.calls("chat"))
        await self.s.feed(update)
        trips = self.wire.take()
        counted = Counted(
            [trip for trip in trips if not connecting(trip)],
            self.sql.take(),
            len(self.oa.calls("chat")) - calls,
            sum(connecting(trip) for trip in trips),
        )
        texts = [m.text for m in self.s.session.requests if isinstance(m, SendMessage)]
        if not any(answer in text for text in texts):
            raise RuntimeError(f"update {update.update_id} was not answered: sent {texts}")
        return counted


def worst(samples: list[Counted]) -> Counted:
    return max(samples, key=lambda c: len(c.trips))


async def measure(quick: bool) -> list[Result]:
    repeats = 1 if quick else 5
    async with clean_redis(), FakeOpenAI() as oa:
        oa.script_chat(reply_per_request)
        async with stack(openai_base_url=oa.base_url, openai_max_retries=0) as s:
            with RedisWire() as wire:
                probe = Probe(s, oa, wire)
                anna, boris = updates.learner(7001), updates.learner(7002)
                await probe.feed(updates.message("/help", user=anna))
                await probe.feed(updates.message("/help", user=boris))
                helps = [
                    await probe.feed(updates.message("/help", user=anna)) for _ in range(repeats)
                ]
                misses = [await probe.feed(updates.message(FIRST, user=anna), HEARD)]
                await probe.feed(updates.message(FIRST, user=boris), HEARD)
                misses.append(await probe.feed(updates.message(SECOND, user=anna), HEARD))
                hit = await probe.feed(updates.message(SECOND, user=boris), HEARD)

    hooked = await help_trips(repeats)
    polling = worst(helps)
    miss = worst(misses)
    sql = max(len(c.statements) for c in helps)
    results = [
        Result(
            "warm /help, polling: 1 Redis round trip",
            round_trips(polling.trips),
            len(polling.trips) <= 1,
            "round trips in order: " + describe_trips(polling.trips),
        ),
        hooked,
        Result(
            "warm /help: 0 SQL statements",
            f"{sql} statements",
            sql == 0,
            "; ".join(worst(helps).statements[:5]),
        ),
        Result(
            "text, cached Honzík answer and cached history: ≤ 4 Redis round trips",
            round_trips(hit.trips)
            + ("" if hit.chat_calls == 0 else " (not a cache hit: Honzík was asked)"),
            len(hit.trips) <= 4 and hit.chat_calls == 0,
            "round trips in order: " + describe_trips(hit.trips),
        ),
        Result(
            "text, Honzík miss: ≤ 8 Redis round trips",
            f"{round_trips(miss.trips)} (worst of {len(misses)} misses: "
            + ", ".join(str(len(m.trips)) for m in misses)
            + ")",
            len(miss.trips) <= 8 and all(m.chat_calls == 1 for m in misses),
            "round trips in order: "
            + describe_trips(miss.trips)
            + f"; besides, {sum(m.connecting for m in misses)} round trips opened a pooled "
            "connection (once per connection)",
        ),
    ]
    return results


if __name__ == "__main__":
    cli(measure)
