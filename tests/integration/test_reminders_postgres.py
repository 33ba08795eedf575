"""Two schedulers on one PostgreSQL, as two replicas run them: each learner gets one reminder.

Each scheduler has its own engine (its own connection pool) and its own Bot; they claim at
the same moment, with row locks and SKIP LOCKED sharing the learners out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiogram import Bot
from aiogram.methods import SendMessage, TelegramMethod
from fakeredis import FakeAsyncRedis
from openai import AsyncOpenAI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ai.speech import Voice
from bot.cache import Cache, CacheTTLs, Keys
from bot.db import migrate
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Reminder
from bot.domain import Character
from bot.metrics import Metrics
from bot.runtime.reminders import ReminderScheduler
from bot.services.reminders import ReminderService
from bot.services.users import UserService
from tests.conftest import TEST_TOKEN
from tests.support.recording import RecordingSession
from tests.support.updates import learner

pytestmark = pytest.mark.integration

PRAGUE = ZoneInfo("Europe/Prague")
KEYS = Keys(CacheTTLs())
LEARNERS = range(5000, 5040)


class SlowTelegram(RecordingSession):
    """Telegram takes a moment per request, so the two schedulers' work overlaps."""

    async def before(self, method: TelegramMethod[Any]) -> None:
        await asyncio.sleep(0.002)


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[list[AsyncEngine]]:
    engines = [create_engine(postgres_url), create_engine(postgres_url)]
    await migrate.upgrade(engines[0])
    yield engines
    for engine in engines:
        await engine.dispose()


async def test_two_schedulers_send_exactly_one_reminder_per_learner(
    replicas: list[AsyncEngine],
) -> None:
    redis = FakeAsyncRedis()
    cache = Cache(redis)
    users = UserService(cache, KEYS)
    reminders = ReminderService(cache, KEYS, users, PRAGUE)
    sessions = create_sessionmaker(replicas[0])
    with time_machine.travel(dt.datetime(2026, 5, 12, 12, 0, tzinfo=PRAGUE), tick=False) as clock:
        for tid in LEARNERS:
            async with sessions() as session:
                profile, settings = await users.context(session, learner(tid))
                profile, settings = await users.update(
                    session, profile, {"voice_replies": False}, on_profile=False
                )
                await reminders.remind_at(session, profile, settings, dt.time(19, 0))
        openai = AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
        metrics = Metrics(cache.counters, lambda: 0)
        voice = Voice(openai, cache, KEYS, metrics, "tts-1", {c: "onyx" for c in Character})
        telegrams = [SlowTelegram(), SlowTelegram()]
        schedulers = [
            ReminderScheduler(
                Bot(TEST_TOKEN, session=telegram),
                create_sessionmaker(engine),
                reminders,
                voice,
                metrics,
                per_second=1000,
                interval=1,
                batch=4,  # many small claims, so the replicas' claims meet
            )
            for engine, telegram in zip(replicas, telegrams, strict=True)
        ]
        clock.move_to(dt.datetime(2026, 5, 12, 19, 0, tzinfo=PRAGUE))
        counts = await asyncio.gather(*(scheduler.tick() for scheduler in schedulers))
        again = await asyncio.gather(*(scheduler.tick() for scheduler in schedulers))
    await openai.close()
    await redis.aclose()

    assert sum(counts) == len(LEARNERS) and again == [0, 0]
    assert all(counts), f"both replicas should have sent some: {counts}"
    chats = Counter(m.chat_id for t in telegrams for m in t.of(SendMessage))
    assert set(chats) == set(LEARNERS) and set(chats.values()) == {1}
    async with sessions() as session:
        sent = await session.scalar(
            select(func.count()).select_from(Reminder).where(Reminder.sent_at.is_not(None))
        )
    assert sent == len(LEARNERS)
