"""Dispatcher throughput for /help: the bot's full middleware chain versus bare aiogram.

    python -m bench.throughput

Full: `bot.app.build_dispatcher` (in-flight, update claim SET NX, per-chat Redis lock, DB
session, learner context MGET, rate limit, handler timing, every router) with the real Redis
(database 12), a temporary SQLite file and a warm cache. Bare: `aiogram.Dispatcher()` with one
router and one /help handler answering the same text. Both answer through the same offline
`RecordingSession`, so no network is involved on the Telegram side.

Two ways to feed, each in several interleaved rounds (bare and full alternate, and which goes
first alternates too), reporting medians:
- sequential: one update at a time (latency of one update through the chain);
- concurrent: a batch of 100 updates (one getUpdates page) from different learners fed at
  once with asyncio.gather, as polling does with `handle_as_tasks` (throughput when Redis
  round trips can overlap). Redis errors (pool exhaustion, timeouts) are counted: each one
  makes the bot fail open for a second, so a run with errors is not a fair run.

RATE_LIMIT_PER_MINUTE is raised so the limiter still runs (its INCR pipeline costs what it
costs) but never refuses: the same learners send many /help within a minute here.

Target (from the issue): at most 2x bare aiogram per update.

A third part takes the chain apart: dispatchers built here layer by layer, in the order of
`build_dispatcher` (same classes, same arguments), fed the same way, so the cost of each layer
shows as a difference. The last layer is checked to match the real dispatcher's time.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence
from typing import Any

from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import Command
from aiogram.fsm.storage.memory import DisabledEventIsolation
from aiogram.methods import SendMessage
from aiogram.types import Message, Update

from bench._common import Stack, banner, median, redis_db12, run, stack, table, us, verdict
from bot import handlers, texts
from bot.app import Resources, build_dispatcher
from bot.handlers.filters import PRIVATE
from bot.middlewares import DbSessionMiddleware, InFlightMiddleware, UserContextMiddleware
from bot.middlewares.limits import RateLimitMiddleware
from bot.middlewares.once import HandleOnceMiddleware
from bot.middlewares.order import ChatOrderMiddleware, ChatQueue
from bot.middlewares.timing import HandlerTimingMiddleware
from tests.support import updates

LEARNERS = 200
SEQUENTIAL = 400  # updates per sequential run
PAGE = (
    100  # concurrent batch: one getUpdates page (aiogram's default limit), all different learners
)
BATCHES = 4  # concurrent batches per run
ROUNDS = 9
ANATOMY_ROUNDS = 5
TARGET = 2.0


LAYERS = [
    "bare aiogram",
    "+ the bot's 10 routers and workflow data",
    "+ in-flight, DB session, handler timing",
    "+ learner context (MGET)",
    "+ rate limit (INCR pipeline)",
    "+ update claim (SET NX)",
    "+ chat turn (EVAL queue+lock, renewal task, EVAL leave)",
]


def layered_dispatcher(resources: Resources, depth: int) -> Dispatcher:
    """`build_dispatcher`, with only the first `depth` layers of LAYERS (1 = bare aiogram)."""
    if depth <= 1:
        return bare_dispatcher()
    full = build_dispatcher(resources)  # for its workflow data (services) only
    cache = resources.cache
    dp = Dispatcher(events_isolation=DisabledEventIsolation())
    dp.workflow_data.update(full.workflow_data)
    if depth >= 3:
        dp.update.outer_middleware(InFlightMiddleware(resources.inflight))
    if depth >= 6:
        dp.update.outer_middleware(HandleOnceMiddleware(cache))
    if depth >= 7:
        dp.update.outer_middleware(ChatOrderMiddleware(ChatQueue(cache)))
    if depth >= 3:
        dp.update.outer_middleware(DbSessionMiddleware(resources.sessionmaker))
    if depth >= 4:
        dp.update.outer_middleware(UserContextMiddleware(full.workflow_data["users"]))
    if depth >= 5:
        dp.message.outer_middleware(
            RateLimitMiddleware(cache, resources.config.rate_limit_per_minute)
        )
    if depth >= 3:
        timing = HandlerTimingMiddleware(resources.metrics)
        for observer in (dp.message, dp.edited_message, dp.callback_query):
            observer.middleware(timing)
    dp.include_routers(*handlers.routers())
    return dp


async def anatomy(s: Stack) -> list[list[Timing]]:
    """Per-update time of each layer (concurrent feeding), in interleaved rounds."""
    dispatchers = [layered_dispatcher(s.resources, depth) for depth in range(1, len(LAYERS) + 1)]
    dispatchers.append(s.dp)
    first = 50_000
    for dp in dispatchers:
        await concurrent(dp, s.bot, [helps(s.bot, PAGE, first)])
    s.session.clear()
    times: list[list[Timing]] = [[] for _ in dispatchers]
    for round_ in range(ANATOMY_ROUNDS):
        order = list(range(len(dispatchers)))
        if round_ % 2:
            order.reverse()
        for index in order:
            batches = [helps(s.bot, PAGE, first, PAGE * i) for i in range(BATCHES)]
            gc.collect()
            times[index].append(await concurrent(dispatchers[index], s.bot, batches))
            assert len(s.session.of(SendMessage)) == PAGE * BATCHES
            s.session.clear()
    return times


def bare_dispatcher(routers_before: int = 0, chat_filter: Any = None) -> Dispatcher:
    """One /help handler; optionally behind `routers_before` routers that do not match it,
    each filtered (like every router of the bot) by `chat_filter`."""

    async def help_(message: Message) -> None:
        await message.answer(texts.HELP)

    async def never(message: Message) -> None:  # pragma: no cover
        raise AssertionError

    dp = Dispatcher()
    for index in range(routers_before):
        other = Router(name=f"other{index}")
        other.message.filter(chat_filter)
        other.message.register(never, Command(f"other{index}"))
        dp.include_router(other)
    router = Router(name="help")
    if chat_filter is not None:
        router.message.filter(chat_filter)
    router.message.register(help_, Command("help"))
    dp.include_router(router)
    return dp


FILTER_VARIANTS = [
    ("bare aiogram (1 router, Command filter)", 0, None),
    (
        '+ plain F.chat.type == "private" on it, 4 such routers before it (sync filter)',
        4,
        "magic",
    ),
    ("the same 5 routers with the bot's PRIVATE filter (When: async)", 4, "when"),
]


async def filter_costs(s: Stack) -> list[list[Timing]]:
    """What aiogram charges for a plain magic filter (it runs it with asyncio.to_thread),
    against the bot's own `When` wrapper, which checks the same thing on the event loop."""
    filters = {None: None, "magic": F.chat.type == "private", "when": PRIVATE}
    dispatchers = [bare_dispatcher(n, filters[kind]) for _, n, kind in FILTER_VARIANTS]
    first = 50_000
    for dp in dispatchers:
        await concurrent(dp, s.bot, [helps(s.bot, PAGE, first)])
    s.session.clear()
    times: list[list[Timing]] = [[] for _ in dispatchers]
    for round_ in range(ANATOMY_ROUNDS):
        order = list(range(len(dispatchers)))
        if round_ % 2:
            order.reverse()
        for index in order:
            batches = [helps(s.bot, PAGE, first, PAGE * i) for i in range(BATCHES)]
            gc.collect()
            times[index].append(await concurrent(dispatchers[index], s.bot, batches))
            assert len(s.session.of(SendMessage)) == PAGE * BATCHES
            s.session.clear()
    return times


def helps(bot: Bot, count: int, first: int, offset: int = 0) -> list[Update]:
    """/help updates already mounted on the bot, as polling and the webhook hand them over."""
    return [
        Update.model_validate(
            updates.message(
                "/help", user=updates.learner(first + (offset + i) % LEARNERS)
            ).model_dump(),
            context={"bot": bot},
        )
        for i in range(count)
    ]


Timing = tuple[float, float]  # wall-clock and this process's CPU time, per update


async def sequential(dp: Dispatcher, bot: Bot, batch: Sequence[Update]) -> Timing:
    started, cpu = time.perf_counter(), time.process_time()
    for update in batch:
        await dp.feed_update(bot, update)
    n = len(batch)
    return (time.perf_counter() - started) / n, (time.process_time() - cpu) / n


async def concurrent(dp: Dispatcher, bot: Bot, batches: Sequence[Sequence[Update]]) -> Timing:
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        await asyncio.gather(*(dp.feed_update(bot, update) for update in batch))
    n = sum(len(batch) for batch in batches)
    return (time.perf_counter() - started) / n, (time.process_time() - cpu) / n


async def measure(s: Stack, bare: Dispatcher, mode: str) -> tuple[list[Timing], list[Timing]]:
    first = 50_000
    # Warm: every learner is created and cached, and each path has run a few times.
    for dp in (s.dp, bare, s.dp, bare):
        await sequential(dp, s.bot, helps(s.bot, LEARNERS, first))
    s.session.clear()
    full_times: list[Timing] = []
    bare_times: list[Timing] = []
    for round_ in range(ROUNDS):
        order = [("full", s.dp), ("bare", bare)]
        if round_ % 2:
            order.reverse()
        for name, dp in order:
            if mode == "sequential":
                work = helps(s.bot, SEQUENTIAL, first)
                gc.collect()
                per_update = await sequential(dp, s.bot, work)
            else:
                batches = [helps(s.bot, PAGE, first, PAGE * i) for i in range(BATCHES)]
                gc.collect()
                per_update = await concurrent(dp, s.bot, batches)
            answered = len(s.session.of(SendMessage))
            expected = SEQUENTIAL if mode == "sequential" else PAGE * BATCHES
            assert answered == expected, f"{name}: {answered} answers for {expected} updates"
            s.session.clear()
            (full_times if name == "full" else bare_times).append(per_update)
    return full_times, bare_times


async def main() -> None:
    banner("Dispatcher throughput: /help through the full chain vs bare aiogram")
    results: dict[str, tuple[list[Timing], list[Timing]]] = {}
    errors: dict[str, int] = {}
    async with redis_db12(), stack(rate_limit_per_minute=10**9) as s:
        bare = bare_dispatcher()
        counters = s.resources.cache.counters
        for mode in ("sequential", "concurrent"):
            before = counters.errors
            results[mode] = await measure(s, bare, mode)
            errors[mode] = counters.errors - before
        before = counters.errors
        layers = await anatomy(s)
        errors["anatomy"] = counters.errors - before
        filtered = await filter_costs(s)

    rows = []
    for mode, (full_times, bare_times) in results.items():
        for clock, pick in (("wall", 0), ("CPU", 1)):
            full = [t[pick] for t in full_times]
            bare_ = [t[pick] for t in bare_times]
            ratios = [f / b for f, b in zip(full, bare_, strict=True)]
            ratio = median(ratios)
            rows.append(
                (
                    f"{mode}, {clock}",
                    us(median(bare_)),
                    us(median(full)),
                    f"**{ratio:.2f}x**",
                    f"{min(ratios):.2f}–{max(ratios):.2f}x",
                    f"{1 / median(bare_):,.0f} / {1 / median(full):,.0f}",
                    errors[mode],
                    verdict(ratio <= TARGET),
                )
            )
    print(
        f"{ROUNDS} interleaved rounds; sequential: {SEQUENTIAL} updates per run; concurrent: "
        f"{BATCHES} batches of {PAGE} updates (different learners) per run. 'wall' is "
        "elapsed time per update, 'CPU' this process's CPU time per update (steadier when "
        "other processes share the 2 cores; it leaves out Redis's own CPU).\n"
    )
    print(
        table(
            rows,
            [
                "feeding, clock",
                "bare aiogram / update",
                "full chain / update",
                "median ratio",
                "ratio range",
                "updates/s bare / full",
                "Redis errors",
                f"target <= {TARGET:g}x",
            ],
        )
    )
    print()
    print("Per-round wall times (µs per update), full / bare:")
    for mode, (full_times, bare_times) in results.items():
        pairs = ", ".join(
            f"{f[0] * 1e6:.0f}/{b[0] * 1e6:.0f}"
            for f, b in zip(full_times, bare_times, strict=True)
        )
        print(f"- {mode}: {pairs}")
    print_anatomy(layers, errors["anatomy"])
    print()
    print(
        "## The routers' filter: aiogram runs a plain magic filter such as "
        '`F.chat.type == "private"` in a thread (asyncio.to_thread); the bot wraps its '
        "filters in an async `When`\n"
    )
    base = median([t[1] for t in filtered[0]])
    print(
        table(
            [
                (
                    name,
                    us(median([t[0] for t in times])),
                    us(median([t[1] for t in times])),
                    f"{median([t[1] for t in times]) / base:.2f}x",
                )
                for (name, _, _), times in zip(FILTER_VARIANTS, filtered, strict=True)
            ],
            ["dispatcher (no bot middlewares)", "wall / update", "CPU / update", "CPU vs bare"],
        )
    )


def print_anatomy(layers: list[list[Timing]], errors: int) -> None:
    names = [*LAYERS, "the real build_dispatcher (check)"]
    base_wall = median([t[0] for t in layers[0]])
    base_cpu = median([t[1] for t in layers[0]])
    rows = []
    previous = (base_wall, base_cpu)
    for name, times in zip(names, layers, strict=True):
        wall, cpu = median([t[0] for t in times]), median([t[1] for t in times])
        rows.append(
            (
                name,
                us(wall),
                f"{(wall - previous[0]) * 1e6:+.0f} µs",
                us(cpu),
                f"{(cpu - previous[1]) * 1e6:+.0f} µs",
                f"{wall / base_wall:.2f}x / {cpu / base_cpu:.2f}x",
            )
        )
        previous = (wall, cpu)
    print()
    print(
        f"## Where the time goes: layers added one by one (concurrent feeding, "
        f"{ANATOMY_ROUNDS} interleaved rounds, Redis errors: {errors})\n"
    )
    print(
        table(
            rows,
            [
                "dispatcher",
                "wall / update",
                "added (wall)",
                "CPU / update",
                "added (CPU)",
                "vs bare (wall / CPU)",
            ],
        )
    )


if __name__ == "__main__":
    run(main)
