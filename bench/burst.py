"""A burst: 50 different learners send different voice messages at the same moment.

    python -m bench.burst

Upstream delays as in bench.voice_latency (transcription 1.0 s, completion 1.5 s, speech
1.0 s); every learner's recording and transcript differ, so every learner costs one call to
each endpoint (150 calls). The real dispatcher in-process with the recording Bot session and
the real Redis (database 12); the OpenAI stand-in runs in a process of its own so that its CPU
is not charged to the bot (the real OpenAI is on other machines too).

Measured: wall time from feeding all 50 updates at once (asyncio.gather, as polling's
`handle_as_tasks` does with one page of updates) to the last voice reply, against one learner
alone (median of 3, same run, same state). Four cases:
- returning learners (context and conversation history cached, as for anyone who wrote
  within the hour), on the SQLite file and on PostgreSQL;
- first contact (nobody seen before: learner created, history loaded from the database),
  on both databases.

Target (from the issue): the burst's last reply within 1.5x of one learner's time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiogram.methods import SendVoice
from aiogram.types import Update, Voice
from sqlalchemy import event

from bench._common import (
    Stack,
    banner,
    flush_redis,
    median,
    ms,
    percentile,
    postgres_database,
    redis_db12,
    run,
    stack,
    table,
    verdict,
)
from bench._openai_server import openai_process, recording
from bot.metrics import Metrics
from tests.support import updates

DELAYS = {"transcriptions": 1.0, "chat": 1.5, "speech": 1.0}
LEARNERS = 50
SINGLES = 3
TARGET = 1.5

_file_ids = itertools.count(1)
_recordings = itertools.count(0)


def voice_update(s: Stack, uid: int) -> Update:
    audio = recording(next(_recordings))
    file_id = f"learner-voice-{next(_file_ids)}"
    s.session.files[file_id] = audio
    voice = Voice(
        file_id=file_id,
        file_unique_id=f"u-{file_id}",
        duration=3,
        mime_type="audio/ogg",
        file_size=len(audio),
    )
    return updates.message(None, user=updates.learner(uid), voice=voice)


def openai_calls(metrics: Metrics) -> dict[str, int]:
    calls: dict[str, int] = {}
    for metric in metrics.openai_calls.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                endpoint = sample.labels["endpoint"]
                calls[endpoint] = calls.get(endpoint, 0) + int(sample.value)
    return calls


async def make_returning(s: Stack, uids: list[int]) -> None:
    """Learners who wrote within the hour: context and recent history are in Redis."""
    users, conversation = s.dp["users"], s.dp["conversation"]
    for uid in uids:
        async with s.resources.sessionmaker() as session:
            profile, _ = await users.context(session, updates.learner(uid))
            await conversation.history(session, profile)


class Diagnostics:
    """How long each pooled DB connection stays checked out, and how long each turn's store
    (`ConversationService._store`: the inserts and the commit) takes."""

    def __init__(self, s: Stack) -> None:
        self.holds: list[float] = []
        self.stores: list[float] = []
        self._out: dict[int, float] = {}

        def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            self._out[id(record)] = time.perf_counter()

        def checkin(dbapi_connection: Any, record: Any) -> None:
            started = self._out.pop(id(record), None)
            if started is not None:
                self.holds.append(time.perf_counter() - started)

        event.listen(s.resources.engine.sync_engine, "checkout", checkout)
        event.listen(s.resources.engine.sync_engine, "checkin", checkin)
        conversation = s.dp["conversation"]
        store = conversation._store

        async def timed_store(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await store(*args, **kwargs)
            finally:
                self.stores.append(time.perf_counter() - started)

        conversation._store = timed_store

    def take(self) -> tuple[list[float], list[float]]:
        holds, stores = self.holds, self.stores
        self.holds, self.stores = [], []
        return holds, stores


@dataclass
class Burst:
    wall_to_last: float
    replies: list[float]
    calls: dict[str, int]
    errors: int
    pool: str
    holds: list[float]
    stores: list[float]


async def voice_round(s: Stack, diagnostics: Diagnostics, uids: list[int]) -> Burst:
    batch = [voice_update(s, uid) for uid in uids]
    s.session.clear()
    diagnostics.take()
    before = openai_calls(s.resources.metrics)
    errors = s.resources.cache.counters.errors
    started = time.perf_counter()
    await asyncio.gather(*(s.feed(update) for update in batch))
    replies = []
    for uid in uids:
        at = s.session.first(SendVoice, uid, started)
        assert at is not None, f"learner {uid} got no voice reply"
        replies.append(at - started)
    after = openai_calls(s.resources.metrics)
    return Burst(
        max(replies),
        replies,
        {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)},
        s.resources.cache.counters.errors - errors,
        s.resources.engine.pool.status(),
        *diagnostics.take(),
    )


async def case(
    s: Stack, diagnostics: Diagnostics, first_uid: int, returning: bool
) -> tuple[float, Burst]:
    singles = [first_uid + i for i in range(SINGLES)]
    crowd = [first_uid + 100 + i for i in range(LEARNERS)]
    if returning:
        await make_returning(s, singles + crowd)
    alone = [(await voice_round(s, diagnostics, [uid])).wall_to_last for uid in singles]
    return median(alone), await voice_round(s, diagnostics, crowd)


GROUPS: list[tuple[str, dict[str, Any] | None, str, list[tuple[bool, int]]]] = [
    # (database, engine kwargs, label suffix, [(returning, first telegram id), ...])
    ("SQLite file", None, "", [(True, 10_000), (False, 20_000)]),
    ("PostgreSQL", None, "", [(True, 10_000), (False, 20_000)]),
    # Diagnostic, not the bot's setting: enough connections for everyone at once.
    ("PostgreSQL", {"pool_size": 60}, " (diagnostic: pool_size=60)", [(False, 30_000)]),
]


async def main() -> None:
    banner(f"Burst: {LEARNERS} learners send voice messages at once")
    results: list[tuple[str, str, float, Burst]] = []
    async with redis_db12(), openai_process(DELAYS, 10_000) as url:
        settings: dict[str, Any] = {"openai_base_url": url, "openai_max_retries": 0}
        for database, engine_kwargs, suffix, cases in GROUPS:
            await flush_redis()  # another database's learners are cached under the same ids
            async with AsyncExitStack() as stack_:
                db_url = None
                if database == "PostgreSQL":
                    db_url = await stack_.enter_async_context(postgres_database("bench_burst"))
                s = await stack_.enter_async_context(
                    stack(db_url, engine_kwargs=engine_kwargs, **settings)
                )
                diagnostics = Diagnostics(s)
                for returning, first_uid in cases:
                    who = ("returning learners" if returning else "first contact") + suffix
                    alone, burst = await case(s, diagnostics, first_uid, returning)
                    print(f"- {who}, {database}: done", flush=True)
                    results.append((database, who, alone, burst))

    rows = []
    for database, who, alone, burst in results:
        ratio = burst.wall_to_last / alone
        rows.append(
            (
                f"{who}, {database}",
                ms(alone),
                ms(burst.wall_to_last),
                f"**{ratio:.2f}x**",
                f"{ms(median(burst.replies))} / {ms(percentile(burst.replies, 95))}",
                ", ".join(f"{k} {v}" for k, v in sorted(burst.calls.items())),
                burst.errors,
                verdict(ratio <= TARGET),
            )
        )
    print(
        table(
            rows,
            [
                "case",
                "one learner alone (median of 3)",
                f"{LEARNERS} at once: last voice reply",
                "ratio",
                "burst replies median / p95",
                "OpenAI calls in the burst",
                "Redis errors",
                f"target <= {TARGET:g}x",
            ],
        )
    )
    print()
    for database, who, _, burst in results:
        spread = sorted(burst.replies)
        waves = ", ".join(f"{ms(t)}" for t in spread[:: max(1, len(spread) // 8)])
        print(f"- {who}, {database}: voice replies at (sorted, every 6th): {waves}")
        print(
            f"  DB connection held: median {ms(median(burst.holds))}, longest "
            f"{ms(max(burst.holds))} ({len(burst.holds)} checkouts); store+commit per turn: "
            f"median {ms(median(burst.stores))}, longest {ms(max(burst.stores))}"
        )


if __name__ == "__main__":
    run(main)
