"""Daily statistics, streaks, words and /reset on the machine's PostgreSQL (a throwaway database).

The same services as in production, with the cache on fakeredis: concurrent writers on one
(learner, day) must never lose an increment, and every query must behave as on SQLite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from fakeredis import FakeAsyncRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.ai.schema import HonzikReply, NewWord
from bot.cache import Cache, CacheTTLs, Keys
from bot.db import migrate
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import DailyStats, SavedWord, User
from bot.db.models import Message as MessageRow
from bot.domain import LearnerSettings, Profile
from bot.services.activity import Activity, record_activity, save_words
from bot.services.conversation import ConversationService, HistoryItem, Said
from bot.services.reset import ResetService
from bot.services.stats import StatsService
from bot.services.users import UserService
from bot.services.words import Grade, WordsService
from tests.support.updates import learner

pytestmark = pytest.mark.integration

PRAGUE = ZoneInfo("Europe/Prague")
KEYS = Keys(CacheTTLs())
NOON = dt.datetime(2026, 5, 12, 12, 0, tzinfo=PRAGUE)
TODAY = NOON.date()


class StubHonzik:
    def __init__(self, reply: HonzikReply) -> None:
        self.reply = reply
        self.histories: list[list[Any]] = []

    async def answer(self, text: str, **kwargs: Any) -> HonzikReply:
        self.histories.append(list(kwargs["history"]))
        return self.reply


def reply(score: int = 80, words: tuple[tuple[str, str, str], ...] = ()) -> HonzikReply:
    return HonzikReply(
        reply="Super!",
        corrected_text="",
        mistakes=[],
        score=score,
        tip=None,
        new_words=[NewWord(word=w, translation=t, example=e) for w, t, e in words],
    )


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(pg: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(pg)


@pytest.fixture
async def cache() -> AsyncIterator[Cache]:
    redis = FakeAsyncRedis()
    yield Cache(redis)
    await redis.aclose()


async def join(
    sessions: async_sessionmaker[AsyncSession], cache: Cache, tid: int
) -> tuple[Profile, LearnerSettings]:
    async with sessions() as session:
        return await UserService(cache, KEYS).context(session, learner(tid))


def conversation(cache: Cache, honzik: StubHonzik) -> ConversationService:
    return ConversationService(
        cache,
        KEYS,
        honzik,  # type: ignore[arg-type]
        window_minutes=30,
        history_limit=6,
        default_zone=PRAGUE,
    )


async def test_concurrent_writers_on_one_day_never_lose_an_increment(
    pg: AsyncEngine, sessions: async_sessionmaker[AsyncSession], cache: Cache
) -> None:
    assert pg.dialect.name == "postgresql"
    anna, _ = await join(sessions, cache, 9001)
    bob, _ = await join(sessions, cache, 9002)
    scores = [40, 45, 50, 55, 60, 65, 70, 75, 80, 85]

    async def write(user_id: int, score: int, start: asyncio.Barrier) -> None:
        async with sessions() as session:
            activity = Activity(messages=1, words_spoken=3, seconds_spoken=2.5, score=score)
            await start.wait()  # every writer is ready before any of them writes
            await record_activity(session, user_id, TODAY, activity)
            await session.commit()

    # First round: the writers race to create each learner's row; second: to update it.
    for _ in range(2):
        start = asyncio.Barrier(20)
        await asyncio.gather(
            *(write(anna.id, score, start) for score in scores),
            *(write(bob.id, 100, start) for _ in range(10)),
        )

    async with sessions() as session:
        rows = {
            row.user_id: row
            for row in await session.scalars(select(DailyStats).where(DailyStats.date == TODAY))
        }
        users = {u.id: u for u in await session.scalars(select(User))}
    assert (rows[anna.id].messages, rows[anna.id].words_spoken) == (20, 60)
    assert rows[anna.id].seconds_spoken == pytest.approx(50.0)
    assert (rows[anna.id].score_sum, rows[anna.id].scored_messages) == (2 * sum(scores), 20)
    assert (rows[bob.id].messages, rows[bob.id].score_sum) == (20, 2000)
    for user_id in (anna.id, bob.id):
        user = users[user_id]
        assert (user.current_streak, user.best_streak, user.last_active_date) == (1, 1, TODAY)


async def test_report_on_postgres_averages_streaks_and_totals(
    sessions: async_sessionmaker[AsyncSession], cache: Cache
) -> None:
    profile, settings = await join(sessions, cache, 9003)
    stats = StatsService(cache, KEYS, PRAGUE)
    with time_machine.travel(NOON - dt.timedelta(days=2), tick=False) as traveller:
        talk = conversation(cache, StubHonzik(reply(score=50)))
        for day in range(3):
            traveller.move_to(NOON - dt.timedelta(days=2 - day))
            async with sessions() as session:
                await talk.respond(session, profile, settings, Said(text="Ahoj jak se máš"))
        for score in (60, 90):
            async with sessions() as session:
                turn = conversation(cache, StubHonzik(reply(score=score)))
                await turn.respond(session, profile, settings, Said(text="Dobrý den"))
        async with sessions() as session:
            report = await stats.report(session, profile, settings)

    assert report.today.date == TODAY
    assert report.today.messages == 3
    assert report.today.words_spoken == 4 + 2 + 2
    assert report.today.average_score == pytest.approx(66.7)  # (50 + 60 + 90) / 3
    assert (report.progress.current_streak, report.progress.best_streak) == (3, 3)
    totals = report.progress.totals
    assert (totals.messages, totals.active_days) == (5, 3)
    assert totals.average_score == pytest.approx(60.0)  # (50 * 3 + 60 + 90) / 5
    assert [d.messages for d in report.progress.days[-4:]] == [0, 1, 1, 3]


async def test_words_on_postgres_skip_duplicates_and_reschedule(
    sessions: async_sessionmaker[AsyncSession], cache: Cache
) -> None:
    profile, settings = await join(sessions, cache, 9004)
    words = WordsService(cache, KEYS, PRAGUE)
    with time_machine.travel(NOON, tick=False):
        async with sessions() as session:
            assert await words.save(session, profile, settings, "pivo", "beer")
        async with sessions() as session:
            assert not await words.save(session, profile, settings, "pivo", "ale")
        async with sessions() as session:
            new = [NewWord(word=w, translation=w, example="") for w in ("pivo", "voda", "voda")]
            assert await save_words(session, profile.id, new, TODAY) == ["voda"]
            await session.commit()
        await cache.bump([KEYS.words_version(profile.id)])

        async with sessions() as session:
            assert [c.word for c in await words.all(session, profile)] == ["voda", "pivo"]
            due = (await words.queue(session, profile, settings)).cards
        assert [c.word for c in due] == ["pivo", "voda"]  # new cards: the oldest saved first
        async with sessions() as session:
            assert await words.grade(session, profile, settings, due[0].id, due[0].mark, Grade.GOOD)
        async with sessions() as session:
            queue = await words.queue(session, profile, settings)
        # Good on a new card is its second learning step: back after the other card.
        assert [c.word for c in queue.cards] == ["voda", "pivo"]


async def test_reset_on_postgres_deletes_one_learner_and_bounds_the_history(
    sessions: async_sessionmaker[AsyncSession], cache: Cache
) -> None:
    anna, anna_settings = await join(sessions, cache, 9005)
    bob, bob_settings = await join(sessions, cache, 9006)
    reset = ResetService(cache, KEYS, 6, PRAGUE)
    with time_machine.travel(NOON, tick=False) as traveller:
        talk = conversation(cache, StubHonzik(reply(words=(("pivo", "beer", "Pivo."),))))
        for profile, settings in ((anna, anna_settings), (bob, bob_settings)):
            saving = settings.model_copy(update={"autosave": True})  # the word is kept at once
            async with sessions() as session:
                await talk.respond(session, profile, saving, Said(text="Ahoj"))

        # A new conversation: even loaded from the database, the old turns are not history.
        traveller.shift(dt.timedelta(minutes=1))
        async with sessions() as session:
            await reset.new_conversation(session, anna)
        await cache.delete(KEYS.history(anna.telegram_id, 6, list[HistoryItem]))
        traveller.shift(dt.timedelta(minutes=1))
        listener = StubHonzik(reply())
        async with sessions() as session:
            await conversation(cache, listener).respond(
                session, anna, anna_settings, Said(text="Znovu")
            )
        assert listener.histories == [[]]

        async with sessions() as session:
            await reset.delete_all(session, anna, anna_settings)

    async def counts(user_id: int) -> list[int]:
        async with sessions() as session:
            return [
                await session.scalar(
                    select(func.count()).select_from(table).where(table.user_id == user_id)
                )
                or 0
                for table in (MessageRow, DailyStats, SavedWord)
            ]

    assert await counts(anna.id) == [0, 0, 0]
    assert await counts(bob.id) == [2, 1, 1]
