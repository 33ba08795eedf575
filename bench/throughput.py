"""/help through the bot's full chain versus bare aiogram, in CPU time per update.

    python -m bench.throughput [--quick]

Full: the dispatcher of `bot.app.build_dispatcher` with the real Redis, a temporary SQLite
file and a warm cache. Bare: `aiogram.Dispatcher()` with one router and one /help handler
answering a text of the same length. Both answer through the same offline recording session.
Updates come in batches of 100 (one getUpdates page) from different learners, fed at once
with asyncio.gather; bare and full alternate round by round, and which goes first alternates
too. The ratio is taken per round and the median reported. Process CPU time is used because
other processes on a shared 2-core machine disturb it less than wall time (it leaves out
Redis's own CPU).

RATE_LIMIT_PER_MINUTE is raised so the limiter still runs but never refuses: the same
learners send many /help within a minute here.

Target: at most 2x bare aiogram per update.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence

from aiogram import Bot, Dispatcher, Router
from aiogram.filters import Command
from aiogram.methods import SendMessage
from aiogram.types import Message, Update

from bench._common import Result, clean_redis, cli, median, stack, us
from tests.support import updates

LEARNERS = 200
PAGE = 100
TARGET = 2.0
FIRST_LEARNER = 50_000


def bare_dispatcher(answer: str) -> Dispatcher:
    async def help_(message: Message) -> None:
        await message.answer(answer)

    dp = Dispatcher()
    router = Router(name="help")
    router.message.register(help_, Command("help"))
    dp.include_router(router)
    return dp


def helps(bot: Bot, offset: int) -> list[Update]:
    """A page of /help updates from different learners, mounted on the bot as polling does."""
    return [
        Update.model_validate(
            updates.message(
                "/help", user=updates.learner(FIRST_LEARNER + (offset + i) % LEARNERS)
            ).model_dump(),
            context={"bot": bot},
        )
        for i in range(PAGE)
    ]


async def cpu_per_update(dp: Dispatcher, bot: Bot, batches: Sequence[Sequence[Update]]) -> float:
    gc.collect()
    started = time.process_time()
    for batch in batches:
        await asyncio.gather(*(dp.feed_update(bot, update) for update in batch))
    return (time.process_time() - started) / sum(len(batch) for batch in batches)


async def measure(quick: bool) -> list[Result]:
    rounds, batches_per_run = (2, 1) if quick else (9, 4)
    async with clean_redis(), stack(rate_limit_per_minute=10**9) as s:
        for offset in range(0, LEARNERS, PAGE):
            await s.feed_all(helps(s.bot, offset))
        answers = [m for m in s.session.requests if isinstance(m, SendMessage)]
        if len(answers) != LEARNERS:
            raise RuntimeError(f"{len(answers)} answers to {LEARNERS} /help")
        bare = bare_dispatcher(answers[-1].text)
        full_times: list[float] = []
        bare_times: list[float] = []
        for round_ in range(rounds):
            order = [(s.dp, full_times), (bare, bare_times)]
            if round_ % 2:
                order.reverse()
            for dp, times in order:
                s.session.clear()
                work = [helps(s.bot, PAGE * i) for i in range(batches_per_run)]
                times.append(await cpu_per_update(dp, s.bot, work))
                answered = len([m for m in s.session.requests if isinstance(m, SendMessage)])
                if answered != PAGE * batches_per_run:
                    raise RuntimeError(f"{answered} answers to {PAGE * batches_per_run} /help")
    ratios = [f / b for f, b in zip(full_times, bare_times, strict=True)]
    ratio = median(ratios)
    return [
        Result(
            f"warm /help, full chain: ≤ {TARGET:g}x bare aiogram (CPU per update)",
            f"{ratio:.2f}x ({us(median(full_times))} vs {us(median(bare_times))})",
            ratio <= TARGET,
            f"median of {rounds} interleaved rounds of {batches_per_run} x {PAGE} concurrent "
            f"updates; per-round ratios {min(ratios):.2f}x–{max(ratios):.2f}x. Bare aiogram "
            "touches no Redis; the full chain's one round trip per update (shared by the "
            "page through automatic pipelining), the decoding of the learner's context and "
            "the router tree of nine features are what is left above it",
        )
    ]


if __name__ == "__main__":
    cli(measure)
