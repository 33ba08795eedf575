"""Progress a learner can see: local days, /stats and its cache, streaks, plurals and /reset.

Activity is created without OpenAI: either with `record_activity` directly (then a commit and
a version bump, as every writer does) or through `ConversationService` with a stub Honzík.
Time is frozen with time_machine; fakeredis follows the frozen clock, so TTLs are exact.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage, SendPhoto
from aiogram.types import BufferedInputFile, PhotoSize
from fakeredis import FakeAsyncRedis
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.ai.schema import HonzikReply, Mistake, MistakeCategory
from bot.app import Resources, build_dispatcher
from bot.cache import Cache, keys_for
from bot.db.models import DailyStats, SavedWord, User
from bot.db.models import Message as MessageRow
from bot.domain import LearnerSettings
from bot.handlers import progress as progress_handler
from bot.handlers.keyboards import ResetCb
from bot.i18n import speaking
from bot.services import days
from bot.services.activity import Activity, record_activity
from bot.services.conversation import Said
from bot.services.stats import StatsReport, StatsService, average
from tests.conftest import TEST_TOKEN, WorldMaker, make_config, make_resources
from tests.support import updates
from tests.support.recording import RecordingSession
from tests.support.world import Learner, StubHonzik, honzik_reply
from tests.support.world import World as BaseWorld

PRAGUE = ZoneInfo("Europe/Prague")
NEW_YORK = ZoneInfo("America/New_York")
PNG = b"\x89PNG\r\n\x1a\n"


def prague(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=PRAGUE)


NOON = prague(2026, 5, 12, 12, 0)
TODAY = NOON.date()


# ------------------------------------------------------------------ helpers


@dataclass
class World(BaseWorld):
    @property
    def stats(self) -> StatsService:
        return self.dp.workflow_data["stats"]  # type: ignore[no-any-return]

    async def record(self, learner: Learner, day: dt.date, activity: Activity) -> None:
        async with self.resources.sessionmaker() as session:
            await record_activity(session, learner.id, day, activity)
            await session.commit()
        await self.cache.bump([self.keys.stats_version(learner.id)])

    async def report(self, learner: Learner) -> StatsReport:
        async with self.resources.sessionmaker() as session:
            return await self.stats.report(session, learner.profile, learner.settings)

    async def stats_text(self, learner: Learner) -> str:
        await self.feed(updates.message("/stats", user=learner.tg))
        return str(self.recorder.of(SendMessage)[-1].text)

    async def daily_rows(self, learner: Learner) -> dict[dt.date, int]:
        async with self.resources.sessionmaker() as session:
            rows = await session.execute(
                select(DailyStats.date, DailyStats.messages).where(DailyStats.user_id == learner.id)
            )
            return {day: messages for day, messages in rows}

    async def ttl(self, key: str) -> int:
        return int(await self.redis.ttl(key))

    async def remember_chart(self, learner: Learner, file_id: str) -> None:
        """As if `file_id` were the chart just uploaded for the stats as they stand."""

        async def upload() -> str:
            return file_id

        await self.stats.chart_file_id(learner.profile, learner.settings, upload)


@pytest.fixture
def world(make_world: WorldMaker[World]) -> World:
    return make_world(World)


def autosaving(learner: Learner) -> Learner:
    """The learner with /autosave on: Honzík's suggested words are saved at once."""
    return replace(learner, settings=learner.settings.model_copy(update={"autosave": True}))


def near(actual: int, expected: int) -> bool:
    return abs(actual - expected) <= 2


# ------------------------------------------------------------------ 1. local days


def test_seconds_to_midnight_counts_the_last_seconds_of_the_day() -> None:
    assert days.seconds_to_midnight(prague(2026, 5, 12, 23, 59, 30), PRAGUE) == 30
    assert days.seconds_to_midnight(prague(2026, 5, 12, 12, 0), PRAGUE) == 12 * 3600
    # The same instant given in UTC counts the same.
    moment = prague(2026, 5, 12, 23, 59, 30).astimezone(dt.UTC)
    assert days.seconds_to_midnight(moment, PRAGUE) == 30


def test_seconds_to_midnight_across_the_autumn_dst_change() -> None:
    # The day before the change is an ordinary one: midnight of the 25th is still CEST.
    assert days.seconds_to_midnight(prague(2026, 10, 24, 12, 0), PRAGUE) == 12 * 3600
    # 25 October 2026 is 25 hours long in Prague (03:00 CEST becomes 02:00 CET).
    assert days.seconds_to_midnight(prague(2026, 10, 25, 0, 0, 1), PRAGUE) == 25 * 3600 - 1
    assert days.seconds_to_midnight(prague(2026, 10, 25, 1, 0), PRAGUE) == 24 * 3600
    # 02:30 happens twice; the first (CEST) is an hour further from midnight than the second.
    first = dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)  # 02:30 CEST
    second = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)  # 02:30 CET
    assert days.local_day(first, PRAGUE) == days.local_day(second, PRAGUE) == dt.date(2026, 10, 25)
    assert days.seconds_to_midnight(first, PRAGUE) == 22 * 3600 + 1800
    assert days.seconds_to_midnight(second, PRAGUE) == 21 * 3600 + 1800


def test_seconds_to_midnight_across_the_spring_dst_change() -> None:
    # 29 March 2026 is 23 hours long (02:00 CET becomes 03:00 CEST).
    assert days.seconds_to_midnight(prague(2026, 3, 29, 0, 0, 1), PRAGUE) == 23 * 3600 - 1
    assert days.seconds_to_midnight(prague(2026, 3, 29, 0, 0), PRAGUE) == 23 * 3600
    assert days.seconds_to_midnight(prague(2026, 3, 29, 3, 0), PRAGUE) == 21 * 3600
    assert days.seconds_to_midnight(prague(2026, 3, 28, 12, 0), PRAGUE) == 12 * 3600


def test_seconds_to_midnight_is_never_zero() -> None:
    midnight = prague(2026, 5, 13, 0, 0)
    assert days.seconds_to_midnight(midnight, PRAGUE) == 24 * 3600
    assert days.seconds_to_midnight(midnight - dt.timedelta(microseconds=1), PRAGUE) == 1
    for step in range(-3000, 3001, 7):
        moment = midnight + dt.timedelta(milliseconds=step)
        assert days.seconds_to_midnight(moment, PRAGUE) >= 1
    # Around both DST changes too.
    for start in (prague(2026, 10, 26, 0, 0), prague(2026, 3, 30, 0, 0)):
        for step in range(-2000, 2001, 250):
            assert days.seconds_to_midnight(start + dt.timedelta(milliseconds=step), PRAGUE) >= 1


def test_a_learner_with_their_own_timezone_gets_their_own_day() -> None:
    # 03:00 UTC: 05:00 on the 12th in Prague, still 23:00 on the 11th in New York.
    with time_machine.travel(dt.datetime(2026, 5, 12, 3, 0, tzinfo=dt.UTC), tick=False):
        own = LearnerSettings(timezone="America/New_York")
        assert days.learner_today(own, PRAGUE) == (dt.date(2026, 5, 11), 3600)
        assert days.learner_today(LearnerSettings(), PRAGUE) == (dt.date(2026, 5, 12), 19 * 3600)
        assert days.zone_of(own, PRAGUE) == NEW_YORK


# ------------------------------------------------------------------ 2. TTLs of the stats entries


async def test_stats_entries_live_until_the_learners_midnight(world: World) -> None:
    with time_machine.travel(prague(2026, 5, 12, 15, 0), tick=False):
        anna = await world.join(601)
        await world.stats_text(anna)
        left = days.seconds_to_midnight(prague(2026, 5, 12, 15, 0), PRAGUE)
        assert left == 9 * 3600
        daily = await world.ttl(f"stats:{anna.id}:daily:2026-05-12")
        assert near(daily, left), daily
        assert near(await world.ttl(f"stats:{anna.id}:progress"), 900)


async def test_just_before_midnight_both_entries_end_at_midnight(world: World) -> None:
    moment = prague(2026, 5, 12, 23, 50)
    with time_machine.travel(moment, tick=False) as traveller:
        anna = await world.join(602)
        await world.stats_text(anna)
        assert near(await world.ttl(f"stats:{anna.id}:daily:2026-05-12"), 600)
        assert near(await world.ttl(f"stats:{anna.id}:progress"), 600)

        # After midnight the old day's entries are gone and the new day has a fresh one.
        traveller.move_to(prague(2026, 5, 13, 0, 0, 5))
        assert await world.redis.exists(f"stats:{anna.id}:daily:2026-05-12") == 0
        assert await world.redis.exists(f"stats:{anna.id}:progress") == 0
        await world.stats_text(anna)
        assert near(await world.ttl(f"stats:{anna.id}:daily:2026-05-13"), 24 * 3600 - 5)
        assert near(await world.ttl(f"stats:{anna.id}:progress"), 900)


async def test_stats_ttl_follows_the_learners_own_timezone(world: World) -> None:
    with time_machine.travel(dt.datetime(2026, 5, 12, 3, 0, tzinfo=dt.UTC), tick=False):
        bob = await world.join(603, timezone="America/New_York")
        await world.stats_text(bob)
        assert near(await world.ttl(f"stats:{bob.id}:daily:2026-05-11"), 3600)
        assert near(await world.ttl(f"stats:{bob.id}:progress"), 900)
        assert await world.redis.exists(f"stats:{bob.id}:daily:2026-05-12") == 0

        # A message now belongs to the learner's 11 May, not Prague's 12 May.
        await world.say(bob)
        assert await world.daily_rows(bob) == {dt.date(2026, 5, 11): 1}
        report = await world.report(bob)
        assert (report.today.date, report.today.messages) == (dt.date(2026, 5, 11), 1)


# ------------------------------------------------------------------ 3. cost of /stats


class RedisSpy:
    """Records every command sent to fakeredis, pipelined ones included."""

    def __init__(self, redis: FakeAsyncRedis) -> None:
        self.redis = redis
        self.calls: list[tuple[str, ...]] = []

    def __enter__(self) -> RedisSpy:
        self._command, self._pipeline = self.redis.execute_command, self.redis.pipeline

        async def command(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(_words(args))
            return await self._command(*args, **kwargs)

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = self._pipeline(*args, **kwargs)
            execute = pipe.execute

            async def recorded(*e_args: Any, **e_kwargs: Any) -> Any:
                self.calls.extend(_words(stacked) for stacked, _ in pipe.command_stack)
                return await execute(*e_args, **e_kwargs)

            pipe.execute = recorded
            return pipe

        self.redis.execute_command = command  # type: ignore[method-assign]
        self.redis.pipeline = pipeline  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.redis.execute_command = self._command  # type: ignore[method-assign]
        self.redis.pipeline = self._pipeline  # type: ignore[method-assign]

    def touching(self, fragment: str) -> list[tuple[str, ...]]:
        return [call for call in self.calls if any(fragment in part for part in call[1:])]


def _words(args: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(a.decode() if isinstance(a, bytes) else str(a) for a in args)


class SqlSpy:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _remember(self, *args: Any) -> None:
        self.statements.append(args[2])

    def __enter__(self) -> SqlSpy:
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._remember)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._remember)


async def test_warm_stats_runs_no_sql_and_one_mget_for_the_stats(
    world: World, engine: AsyncEngine
) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(610)
        await world.say(anna)
        await world.stats_text(anna)  # cold: fills the entries
        await world.remember_chart(anna, "chart-file-id")
        world.recorder.requests.clear()

        with SqlSpy(engine) as sql, RedisSpy(world.redis) as redis:
            text = await world.stats_text(anna)

        assert texts.messages_count(1) in text
        assert sql.statements == []
        stats_calls = redis.touching(f"stats:{anna.id}:")
        assert len(stats_calls) == 2, stats_calls
        (command, *names), chart = stats_calls
        assert command == "MGET"
        assert sorted(names) == sorted(
            [
                f"stats:{anna.id}:daily:2026-05-12",
                f"stats:{anna.id}:progress",
                f"stats:{anna.id}:version",
            ]
        )
        # The chart follows the stats version too, read with it in one MGET.
        assert chart == ("MGET", f"stats:{anna.id}:chart:2026-05-12", f"stats:{anna.id}:version")
        assert [p.photo for p in world.recorder.of(SendPhoto)] == ["chart-file-id"]


async def test_cold_stats_runs_a_few_reading_queries(world: World, engine: AsyncEngine) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(611)
        await world.say(anna)
        await world.cache.delete(f"stats:{anna.id}:daily:2026-05-12", f"stats:{anna.id}:progress")
        with SqlSpy(engine) as sql, RedisSpy(world.redis) as redis:
            text = await world.stats_text(anna)

        assert texts.messages_count(1) in text
        assert 1 <= len(sql.statements) <= 7, sql.statements
        assert all(s.lstrip().upper().startswith("SELECT") for s in sql.statements)
        # One MGET that misses, then both entries filled in one pipeline, never overwriting.
        fills = [call for call in redis.touching(f"stats:{anna.id}:") if call[0] == "SET"]
        assert sorted(call[1] for call in fills) == [
            f"stats:{anna.id}:daily:2026-05-12",
            f"stats:{anna.id}:progress",
        ]
        assert all("NX" in call for call in fills)


# ------------------------------------------------------------------ 4. invalidation


async def test_a_new_message_shows_in_stats_right_after_its_commit(world: World) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(620)
        first = await world.stats_text(anna)
        assert texts.STATS_TODAY_EMPTY in first
        assert await world.redis.exists(f"stats:{anna.id}:daily:2026-05-12") == 1

        await world.say(anna, "Ahoj jak se máš")

        second = await world.stats_text(anna)
        assert texts.STATS_TODAY_EMPTY not in second
        assert texts.messages_count(1) in second
        report = await world.report(anna)
        assert (report.today.messages, report.progress.totals.messages) == (1, 1)
        assert report.today.words_spoken == 4


async def test_a_reader_that_loaded_before_a_write_cannot_cache_stale_stats(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()
    original = StatsService._day
    paused_once: list[bool] = []

    async def paused(session: Any, user_id: int, today: dt.date) -> Any:
        day = await original(session, user_id, today)
        if not paused_once:
            paused_once.append(True)
            reached.set()
            await release.wait()
        return day

    with time_machine.travel(NOON, tick=False):
        anna = await world.join(621)
        monkeypatch.setattr(StatsService, "_day", staticmethod(paused))

        reader = asyncio.create_task(world.report(anna))
        await reached.wait()  # the reader has read the old day and holds it
        await world.record(anna, TODAY, Activity(messages=1, words_spoken=3))
        release.set()
        stale = await reader

        assert stale.today.messages == 0  # it really did read before the write
        daily_key = f"stats:{anna.id}:daily:2026-05-12"
        cached = json.loads(await world.redis.get(daily_key))
        assert cached["data"]["messages"] == 0  # ...and filled the cache with it
        assert cached["v"] != int(await world.redis.get(f"stats:{anna.id}:version"))

        fresh = await world.report(anna)
        assert fresh.today.messages == 1
        assert fresh.progress.totals.messages == 1
        assert texts.messages_count(1) in await world.stats_text(anna)


# ------------------------------------------------------------------ 5. daily numbers


async def test_average_score_is_a_true_average(world: World) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(630)
        await world.say(anna, "Ahoj", reply=honzik_reply(score=60))
        await world.say(anna, "Dobrý den", reply=honzik_reply(score=90))

        report = await world.report(anna)
        assert report.today.average_score == 75
        assert report.progress.totals.average_score == 75
        text = await world.stats_text(anna)
        assert texts.STATS_TODAY_SCORE.format(score=75, new_words=0) in text
        assert texts.STATS_TOTALS_SCORE.format(score=75) in text

        # A message Honzík could not score does not drag the average down.
        await world.record(anna, TODAY, Activity(messages=1))
        await world.record(anna, TODAY, Activity(messages=1, score=100))
        report = await world.report(anna)
        assert report.today.messages == 4
        assert report.today.average_score == pytest.approx(83.3)


async def test_a_zero_score_still_has_an_average(world: World) -> None:
    assert average(0, 2) == 0.0
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(631)
        await world.say(anna, "Ahoj", reply=honzik_reply(score=0))
        report = await world.report(anna)
        assert report.today.average_score == 0.0
        assert texts.STATS_TODAY_SCORE.format(score=0, new_words=0) in await world.stats_text(anna)


async def test_concurrent_writers_never_lose_an_increment(world: World) -> None:
    anna = await world.join(632)
    scores = [50, 55, 60, 65, 70, 75, 80, 85, 90, 95]

    async def write(score: int, start: asyncio.Barrier) -> None:
        async with world.resources.sessionmaker() as session:
            activity = Activity(messages=1, words_spoken=2, seconds_spoken=1.5, score=score)
            await start.wait()  # every writer is ready before any of them writes
            await record_activity(session, anna.id, TODAY, activity)
            await session.commit()

    # First round: ten writers race to create the day's row; second: to update it.
    for _ in range(2):
        start = asyncio.Barrier(len(scores))
        await asyncio.gather(*(write(score, start) for score in scores))

    async with world.resources.sessionmaker() as session:
        row = await session.scalar(select(DailyStats).where(DailyStats.user_id == anna.id))
        user = await session.get(User, anna.id)
    assert row is not None and user is not None
    assert (row.messages, row.words_spoken, row.scored_messages) == (20, 40, 20)
    assert row.seconds_spoken == pytest.approx(30.0)
    assert row.score_sum == 2 * sum(scores)
    assert (user.current_streak, user.best_streak, user.last_active_date) == (1, 1, TODAY)
    with time_machine.travel(NOON, tick=False):
        report = await world.report(anna)
    assert (report.today.messages, report.today.average_score) == (20, 72.5)


# ------------------------------------------------------------------ 6. streaks


async def test_streak_grows_breaks_and_restarts(world: World) -> None:
    with time_machine.travel(prague(2026, 5, 1, 10, 0), tick=False) as traveller:
        anna = await world.join(640)
        for day in (1, 2, 3):
            traveller.move_to(prague(2026, 5, day, 10, 0))
            await world.say(anna)
        report = await world.report(anna)
        assert (report.progress.current_streak, report.progress.best_streak) == (3, 3)
        text = await world.stats_text(anna)
        assert (
            texts.STATS_STREAK.format(current=texts.days_count(3), best=texts.days_count(3)) in text
        )

        # Nothing on the 4th: on the 5th the streak is broken, the best one is kept.
        traveller.move_to(prague(2026, 5, 5, 10, 0))
        text = await world.stats_text(anna)
        assert texts.STATS_STREAK_BROKEN.format(best=texts.days_count(3)) in text
        report = await world.report(anna)
        assert report.progress.current_streak == 0
        assert report.progress.best_streak == 3
        assert report.progress.streak_broken

        # Talking again starts a new streak at one day.
        await world.say(anna)
        text = await world.stats_text(anna)
        assert (
            texts.STATS_STREAK.format(current=texts.days_count(1), best=texts.days_count(3)) in text
        )
        report = await world.report(anna)
        assert (report.progress.current_streak, report.progress.best_streak) == (1, 3)
        assert not report.progress.streak_broken
        assert report.progress.totals.active_days == 4


async def test_yesterdays_streak_is_still_alive_today(world: World) -> None:
    with time_machine.travel(prague(2026, 5, 1, 10, 0), tick=False) as traveller:
        anna = await world.join(641)
        await world.say(anna)
        traveller.move_to(prague(2026, 5, 2, 21, 0))
        text = await world.stats_text(anna)
        assert (
            texts.STATS_STREAK.format(current=texts.days_count(1), best=texts.days_count(1)) in text
        )
        assert texts.STATS_TODAY_EMPTY in text


async def test_local_midnight_splits_two_messages_into_two_days(world: World) -> None:
    with time_machine.travel(prague(2026, 5, 10, 23, 59), tick=False) as traveller:
        anna = await world.join(642)
        await world.say(anna)
        traveller.move_to(prague(2026, 5, 11, 0, 1))
        await world.say(anna)

        assert await world.daily_rows(anna) == {dt.date(2026, 5, 10): 1, dt.date(2026, 5, 11): 1}
        report = await world.report(anna)
        assert report.today.messages == 1
        assert report.progress.current_streak == 2
        assert [d.messages for d in report.progress.days[-2:]] == [1, 1]


async def test_a_freeze_earned_in_a_week_keeps_the_streak_over_a_missed_day(
    world: World,
) -> None:
    with time_machine.travel(prague(2026, 5, 1, 10, 0), tick=False) as traveller:
        anna = await world.join(644)
        for day in range(1, 8):
            traveller.move_to(prague(2026, 5, day, 10, 0))
            await world.say(anna)
        text = await world.stats_text(anna)
        assert texts.STATS_FREEZES.format(count=1, most=2) in text.splitlines()

        # Nothing on the 8th: on the 9th the freeze has paid for it, the streak lives on.
        traveller.move_to(prague(2026, 5, 9, 10, 0))
        text = await world.stats_text(anna)
        seven = texts.days_count(7)
        assert texts.STATS_STREAK.format(current=seven, best=seven) in text
        assert texts.STATS_FREEZES_NONE in text.splitlines(), "the freeze is spent"
        await world.say(anna)
        report = await world.report(anna)
        assert (report.progress.current_streak, report.progress.freezes) == (8, 0)

        # Without a freeze left, the next missed day breaks it.
        traveller.move_to(prague(2026, 5, 11, 10, 0))
        text = await world.stats_text(anna)
        assert texts.STATS_STREAK_BROKEN.format(best=texts.days_count(8)) in text
    async with world.resources.sessionmaker() as session:
        user = await session.get(User, anna.id)
        assert user is not None and (user.current_streak, user.streak_freezes) == (8, 0)


async def test_freezes_bank_up_to_two(world: World) -> None:
    with time_machine.travel(prague(2026, 5, 1, 10, 0), tick=False) as traveller:
        anna = await world.join(645)
        for day in range(1, 22):
            traveller.move_to(prague(2026, 5, day, 10, 0))
            await world.say(anna)
        text = await world.stats_text(anna)
        report = await world.report(anna)
    assert texts.STATS_FREEZES.format(count=2, most=2) in text.splitlines()
    assert (report.progress.current_streak, report.progress.freezes) == (21, 2)


async def test_no_activity_yet_invites_to_start_a_streak(world: World) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(643)
        text = await world.stats_text(anna)
    assert texts.STATS_STREAK_NONE in text
    assert texts.STATS_TODAY_EMPTY in text
    # Nothing to draw yet: a friendly line instead of an empty chart.
    assert text.splitlines()[-1] == texts.STATS_NO_CHART
    assert world.recorder.of(SendPhoto) == []
    totals = texts.STATS_TOTALS.format(
        messages=texts.messages_count(0),
        days=texts.days_count(0),
        vocabulary=texts.vocabulary_count(0),
    )
    assert totals in text


# ------------------------------------------------------------------ 7. Czech plurals


@pytest.fixture
def czech() -> Iterator[None]:
    with speaking("cs"):
        yield


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 dní"), (1, "1 den"), (2, "2 dny"), (3, "3 dny"), (4, "4 dny"), (5, "5 dní")],
)
def test_days_count(czech: None, count: int, expected: str) -> None:
    assert texts.days_count(count) == expected


@pytest.mark.parametrize(
    ("count", "expected"), [(11, "11 dní"), (21, "21 dní"), (22, "22 dní"), (104, "104 dní")]
)
def test_czech_has_no_few_form_above_four(czech: None, count: int, expected: str) -> None:
    # Unlike Polish or Russian, Czech says "22 dní", not "22 dny".
    assert texts.days_count(count) == expected


def test_other_plural_forms(czech: None) -> None:
    assert [texts.messages_count(n) for n in (0, 1, 2, 4, 5)] == [
        "0 zpráv",
        "1 zpráva",
        "2 zprávy",
        "4 zprávy",
        "5 zpráv",
    ]
    assert [texts.words_count(n) for n in (0, 1, 3, 7)] == [
        "0 slov",
        "1 slovo",
        "3 slova",
        "7 slov",
    ]
    assert [texts.vocabulary_count(n) for n in (0, 1, 2, 5)] == [
        "0 slovíček",
        "1 slovíčko",
        "2 slovíčka",
        "5 slovíček",
    ]
    assert texts.plural(1, "a", "b", "c") == "1 a"


async def test_stats_text_uses_the_plural_forms(world: World) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(650)
        await world.command(anna, "/ui czech")  # the Czech plural forms, as Czech readers see
        anna = autosaving(anna)
        await world.say(anna, "Ahoj jak se máš", reply=honzik_reply(score=80))
        await world.say(
            anna,
            "Dobrý den",
            reply=honzik_reply(score=80, words=(("pivo", "beer", "Dám si pivo."),)),
        )
        text = await world.stats_text(anna)

    with speaking("cs"):
        _assert_czech_stats(text.split("\n"))


def _assert_czech_stats(lines: list[str]) -> None:
    assert lines[0] == texts.STATS_TITLE
    assert (
        texts.STATS_TODAY.format(messages="2 zprávy", voice=0, words="6 slov", spoken="0 s")
        in lines
    )
    assert texts.STATS_TODAY_SCORE.format(score=80, new_words=1) in lines
    assert texts.STATS_STREAK.format(current="1 den", best="1 den") in lines
    assert (
        texts.STATS_TOTALS.format(messages="2 zprávy", days="1 den", vocabulary="1 slovíčko")
        in lines
    )
    assert texts.STATS_WEEK in lines
    week = lines[lines.index(texts.STATS_WEEK) + 1 : lines.index(texts.STATS_WEEK) + 8]
    assert week[-1] == texts.STATS_DAY.format(day="út 12.5.", bar="▮" * 10, count=2)
    assert week[0] == texts.STATS_DAY.format(day="st 6.5.", bar="·", count=0)


# ------------------------------------------------------------------ 7b. mistakes of the week


def correcting(*mistakes: tuple[MistakeCategory, str, str]) -> HonzikReply:
    return HonzikReply(
        reply="Dobře!",
        corrected_text="…",
        mistakes=[
            Mistake(original=o, corrected=c, explanation="", category=category)
            for category, o, c in mistakes
        ],
        score=70,
        tip=None,
        new_words=[],
    )


async def test_stats_show_the_three_commonest_mistakes_of_the_week_with_examples(
    world: World,
) -> None:
    case, spelling, verb = MistakeCategory.CASE, MistakeCategory.SPELLING, MistakeCategory.VERB_FORM
    with time_machine.travel(prague(2026, 5, 4, 10, 0), tick=False) as traveller:
        anna = await world.join(655)
        # Eight days ago: outside the week, however many.
        await world.say(anna, reply=correcting(*[(MistakeCategory.REGISTER, "máš", "máte")] * 5))
        # Two days ago, stored before mistakes had a kind: read as "other".
        async with world.resources.sessionmaker() as session:
            session.add(
                MessageRow(
                    user_id=anna.id,
                    role="learner",
                    kind="text",
                    text="dobry den",
                    mistakes=[{"original": "dobry", "corrected": "dobrý", "explanation": ""}] * 2,
                    created_at=prague(2026, 5, 10, 10, 0),
                )
            )
            await session.commit()
        traveller.move_to(NOON - dt.timedelta(hours=1))
        await world.say(
            anna,
            reply=correcting(
                (case, "do Praha", "do Prahy"),
                (case, "v Praha", "v Praze"),
                (spelling, "mas", "máš"),
            ),
        )
        traveller.move_to(NOON)
        await world.say(
            anna, reply=correcting((verb, "já jsi", "já jsem"), (case, "s kamarád", "s kamarádem"))
        )
        lines = (await world.stats_text(anna)).splitlines()

    shown = lines[lines.index(texts.STATS_MISTAKES) + 1 :][:4]
    assert shown == [
        texts.STATS_MISTAKE.format(
            category=texts.MISTAKE_LABELS["case"],
            count=3,
            original="s kamarád",  # the latest example of the kind
            corrected="s kamarádem",
        ),
        texts.STATS_MISTAKE.format(
            category=texts.MISTAKE_LABELS["other"], count=2, original="dobry", corrected="dobrý"
        ),
        # One each of verb forms and spelling: the kind seen last comes first.
        texts.STATS_MISTAKE.format(
            category=texts.MISTAKE_LABELS["verb_form"],
            count=1,
            original="já jsi",
            corrected="já jsem",
        ),
        "",
    ]


# ------------------------------------------------------------------ 8. the chart


async def test_stats_sends_a_rendered_png_chart(world: World) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(660)
        await world.say(anna)
        await world.stats_text(anna)

    (photo,) = world.recorder.of(SendPhoto)
    assert photo.chat_id == 660
    assert isinstance(photo.photo, BufferedInputFile)
    assert photo.photo.data.startswith(PNG)


async def test_a_cached_chart_is_sent_by_file_id_without_rendering(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: list[Any] = []
    real_render = progress_handler.render_async

    async def counting(days_: Any, title: str) -> bytes:
        rendered.append(days_)
        assert title == texts.CHART_TITLE  # in the learner's language
        return await real_render(days_, title)

    monkeypatch.setattr(progress_handler, "render_async", counting)
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(661)
        await world.say(anna)
        await world.stats_text(anna)
        assert len(rendered) == 1

        await world.remember_chart(anna, "AgACAgIAAx-chart")
        assert near(await world.ttl(f"stats:{anna.id}:chart:2026-05-12"), 12 * 3600)
        await world.stats_text(anna)

    assert len(rendered) == 1
    first, second = world.recorder.of(SendPhoto)
    assert isinstance(first.photo, BufferedInputFile)
    assert second.photo == "AgACAgIAAx-chart"


class PhotoSession(RecordingSession):
    """Telegram keeps every uploaded chart and answers with its new file id."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads = 0

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:  # noqa: ASYNC109
        answer = await super().make_request(bot, method, timeout)
        if isinstance(method, SendPhoto) and isinstance(method.photo, BufferedInputFile):
            self.uploads += 1
            file_id = f"chart-{self.uploads}"
            photo = PhotoSize(file_id=file_id, file_unique_id=file_id, width=660, height=286)
            return answer.model_copy(update={"photo": [photo]})
        return answer


async def test_the_chart_is_drawn_again_after_a_new_message_the_same_day(
    dp: Dispatcher, resources: Resources, fake_redis: FakeAsyncRedis
) -> None:
    session = PhotoSession()
    bot = Bot(TEST_TOKEN, session=session)
    world = World(dp, bot, resources, session, fake_redis, keys_for(resources.config))
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(664)
        await world.say(anna)
        await world.stats_text(anna)
        await world.stats_text(anna)  # nothing changed: Telegram's copy is sent again
        await world.say(anna, "A ještě jedna zpráva.")
        await world.stats_text(anna)

    first, again, after = (p.photo for p in session.of(SendPhoto))
    assert isinstance(first, BufferedInputFile)
    assert again == "chart-1"
    assert isinstance(after, BufferedInputFile), "a new message: a new chart is uploaded"
    assert session.uploads == 2


class RejectingSession(RecordingSession):
    """Telegram no longer knows one file id (the cached chart): sending it is a 400."""

    def __init__(self, rejected: str) -> None:
        super().__init__()
        self.rejected = rejected

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:  # noqa: ASYNC109
        if isinstance(method, SendPhoto) and method.photo == self.rejected:
            self.requests.append(method)
            raise TelegramBadRequest(method=method, message="Bad Request: wrong file identifier")
        return await super().make_request(bot, method, timeout)


async def test_a_chart_telegram_rejects_is_forgotten_and_drawn_again(
    dp: Dispatcher, resources: Resources, fake_redis: FakeAsyncRedis
) -> None:
    session = RejectingSession("expired-file-id")
    world = World(
        dp,
        Bot(TEST_TOKEN, session=session),
        resources,
        session,
        fake_redis,
        keys_for(resources.config),
    )
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(662)
        await world.say(anna)
        await world.remember_chart(anna, "expired-file-id")
        await world.stats_text(anna)
        chart_key = f"stats:{anna.id}:chart:2026-05-12"
        assert await world.redis.exists(chart_key) == 0

    rejected, drawn = session.of(SendPhoto)
    assert rejected.photo == "expired-file-id"
    assert isinstance(drawn.photo, BufferedInputFile) and drawn.photo.data.startswith(PNG)


async def test_progress_ttl_follows_the_configured_stats_ttl(
    tmp_path: Path,
    engine: AsyncEngine,
    bot: Bot,
    recorder: RecordingSession,
    fake_redis: FakeAsyncRedis,
    cache: Cache,
) -> None:
    config = make_config(tmp_path, redis_cache_ttl_stats=120)
    resources = make_resources(config, engine, cache)
    world = World(
        build_dispatcher(resources), bot, resources, recorder, fake_redis, keys_for(config)
    )
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(663)
        await world.stats_text(anna)
        assert near(await world.ttl(f"stats:{anna.id}:progress"), 120)
        assert near(await world.ttl(f"stats:{anna.id}:daily:2026-05-12"), 12 * 3600)


# ------------------------------------------------------------------ 11. /reset


async def count_rows(world: World, learner: Learner) -> tuple[int, int, int]:
    async with world.resources.sessionmaker() as session:
        counts = []
        for table in (MessageRow, DailyStats, SavedWord):
            counts.append(
                await session.scalar(
                    select(func.count()).select_from(table).where(table.user_id == learner.id)
                )
                or 0
            )
    return counts[0], counts[1], counts[2]


def last_edit(world: World) -> EditMessageText:
    return world.recorder.of(EditMessageText)[-1]  # type: ignore[no-any-return]


async def test_reset_new_conversation_forgets_the_history_but_keeps_the_data(
    world: World,
) -> None:
    with time_machine.travel(NOON, tick=False) as traveller:
        anna = await world.join(670)
        await world.say(anna, "Ahoj")
        history_key = "user:670:history:6"
        assert len(json.loads(await world.redis.get(history_key))) == 2

        traveller.shift(dt.timedelta(minutes=1))
        await world.feed(updates.message("/reset", user=anna.tg))
        menu = world.recorder.of(SendMessage)[-1]
        assert menu.text == texts.RESET_MENU
        buttons = [b.callback_data for row in menu.reply_markup.inline_keyboard for b in row]
        assert buttons == [ResetCb(action="conversation").pack(), ResetCb(action="data").pack()]

        await world.feed(updates.callback(ResetCb(action="conversation").pack(), user=anna.tg))
        assert last_edit(world).text == texts.RESET_CONVERSATION_DONE

        async with world.resources.sessionmaker() as session:
            started = await session.scalar(
                select(User.conversation_started_at).where(User.id == anna.id)
            )
        assert started is not None
        assert started.replace(tzinfo=dt.UTC) == days.now()
        assert json.loads(await world.redis.get(history_key)) == []
        assert await count_rows(world, anna) == (2, 1, 0)  # messages and stats stay

        # The next turn starts with no history.
        stub = StubHonzik(honzik_reply())
        async with world.resources.sessionmaker() as session:
            await world.conversation(stub).respond(
                session, anna.profile, anna.settings, Said(text="Znovu")
            )
        assert stub.histories == [[]]


async def test_after_reset_the_history_loaded_from_the_database_starts_fresh(
    world: World,
) -> None:
    with time_machine.travel(NOON, tick=False) as traveller:
        anna = await world.join(674)
        await world.say(anna, "Ahoj")
        traveller.shift(dt.timedelta(minutes=1))
        await world.feed(updates.callback(ResetCb(action="conversation").pack(), user=anna.tg))
        assert last_edit(world).text == texts.RESET_CONVERSATION_DONE

        # The cached history expires (or Redis restarts): it is loaded from the database.
        await world.redis.delete("user:674:history:6")
        traveller.shift(dt.timedelta(minutes=1))
        stub = StubHonzik(honzik_reply())
        async with world.resources.sessionmaker() as session:
            await world.conversation(stub).respond(
                session, anna.profile, anna.settings, Said(text="Znovu")
            )
        assert stub.histories == [[]]


async def test_reset_all_data_asks_first_then_deletes_only_that_learner(world: World) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(671)
        bob = await world.join(672)
        words = (("pivo", "beer", "Dám si pivo."), ("chleba", "bread", "Jím chleba."))
        anna, bob = autosaving(anna), autosaving(bob)
        for learner in (anna, bob):
            await world.say(learner, "Ahoj", reply=honzik_reply(score=70, words=words))
            await world.say(learner, "Dobrý den", reply=honzik_reply(score=90))
        # Warm every cached view of Anna's progress and words.
        await world.stats_text(anna)
        await world.feed(updates.message("/words", user=anna.tg))
        await world.feed(updates.message("/review", user=anna.tg))
        assert (
            await world.redis.exists(
                f"stats:{anna.id}:daily:2026-05-12", f"stats:{anna.id}:progress"
            )
            == 2
        )
        assert await world.redis.exists(f"words:{anna.id}:all", f"words:{anna.id}:due") == 2
        await world.remember_chart(anna, "old-chart")

        before = await count_rows(world, anna)
        assert before == (4, 1, 2)

        # "Delete all" only asks.
        await world.feed(updates.callback(ResetCb(action="data").pack(), user=anna.tg))
        confirm = last_edit(world)
        assert confirm.text == texts.RESET_CONFIRM
        buttons = [b.callback_data for row in confirm.reply_markup.inline_keyboard for b in row]
        assert buttons == [ResetCb(action="confirm").pack(), ResetCb(action="cancel").pack()]
        assert await count_rows(world, anna) == before

        # "No" keeps everything.
        await world.feed(updates.callback(ResetCb(action="cancel").pack(), user=anna.tg))
        assert last_edit(world).text == texts.RESET_CANCELLED
        assert await count_rows(world, anna) == before

        # "Yes" deletes Anna's rows, and only hers.
        await world.feed(updates.callback(ResetCb(action="confirm").pack(), user=anna.tg))
        assert last_edit(world).text == texts.RESET_DATA_DONE
        assert await count_rows(world, anna) == (0, 0, 0)
        assert await count_rows(world, bob) == (4, 1, 2)
        async with world.resources.sessionmaker() as session:
            user = await session.get(User, anna.id)
            assert user is not None
            assert (user.current_streak, user.best_streak, user.last_active_date) == (0, 0, None)

        # No stale entry of hers is left to be served.
        for key in (
            f"stats:{anna.id}:daily:2026-05-12",
            f"stats:{anna.id}:progress",
            f"stats:{anna.id}:chart:2026-05-12",
            f"words:{anna.id}:all",
            f"words:{anna.id}:due",
        ):
            assert await world.redis.exists(key) == 0, key

        text = await world.stats_text(anna)
        assert texts.STATS_TODAY_EMPTY in text
        assert texts.STATS_STREAK_NONE in text
        assert (
            texts.STATS_TOTALS.format(
                messages=texts.messages_count(0),
                days=texts.days_count(0),
                vocabulary=texts.vocabulary_count(0),
            )
            in text
        )
        assert texts.STATS_TOTALS_SCORE.split("{")[0] not in text
        assert world.recorder.of(SendPhoto)[-1].photo != "old-chart"
        await world.feed(updates.message("/words", user=anna.tg))
        assert world.recorder.of(SendMessage)[-1].text == texts.WORDS_EMPTY
        await world.feed(updates.message("/review", user=anna.tg))
        assert world.recorder.of(SendMessage)[-1].text == texts.WORDS_EMPTY

        # Bob's progress is untouched.
        bob_report = await world.report(bob)
        assert (bob_report.today.messages, bob_report.progress.totals.saved_words) == (2, 2)
        assert bob_report.today.average_score == 80


async def test_other_callbacks_are_refused(world: World) -> None:
    with time_machine.travel(NOON, tick=False):
        anna = await world.join(673)
        await world.say(anna)
        await world.feed(
            updates.callback(ResetCb.model_construct(action="everything").pack(), user=anna.tg)
        )
    answer = world.recorder.of(AnswerCallbackQuery)[-1]
    assert (answer.text, answer.show_alert) == (texts.STALE_BUTTON, True)
    assert await count_rows(world, anna) == (2, 1, 0)
