"""Daily reminders through the real dispatcher and scheduler, with a frozen clock.

The learner sets the reminder as they would (`/remind`, onboarding, `/timezone`); the
scheduler's `tick()` is what each replica runs every few seconds. Its sends go to a recording
Bot session, its speech to the OpenAI stand-in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import EditMessageText, SendMessage, SendVoice, TelegramMethod
from aiogram.types import BufferedInputFile, Chat, ChatMemberBanned, ChatMemberMember, Update
from aiogram.types import ChatMemberUpdated as MemberUpdate
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.cache import Cache
from bot.db.engine import create_sessionmaker
from bot.db.models import Reminder, User, UserSettings
from bot.handlers.keyboards import OnboardingCb, RemindCb, TimezoneCb
from bot.metrics import Metrics
from bot.runtime.reminders import ReminderScheduler
from bot.services import days
from bot.services.activity import Activity, record_activity
from bot.services.reminders import STALE_CLAIM, ReminderService, next_at
from tests.conftest import dispatcher_against
from tests.standins.openai import FakeOpenAI
from tests.support import updates
from tests.support.recording import BOT_USER, RecordingSession

PRAGUE = ZoneInfo("Europe/Prague")
KYIV = ZoneInfo("Europe/Kyiv")


def at(zone: ZoneInfo, *parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=zone)


class BlockingSession(RecordingSession):
    """Telegram as it answers a bot that learners in `blocked` have blocked: 403."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: set[int] = set()

    async def before(self, method: TelegramMethod[Any]) -> None:
        if getattr(method, "chat_id", None) in self.blocked:
            raise TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")


@pytest.fixture
def recorder() -> BlockingSession:
    return BlockingSession()


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def dp(tmp_path: Path, engine: AsyncEngine, cache: Cache, oa: FakeOpenAI) -> Any:
    async with dispatcher_against(oa.base_url, tmp_path, engine, cache) as dispatcher:
        yield dispatcher


@pytest.fixture
def scheduler(dp: Dispatcher, bot: Bot, engine: AsyncEngine, cache: Cache) -> ReminderScheduler:
    return ReminderScheduler(
        bot,
        create_sessionmaker(engine),
        dp["reminders"],
        dp["voice"],
        Metrics(cache.counters, lambda: 0),
        per_second=1000,
        interval=1,
    )


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(at(PRAGUE, 2026, 3, 27, 12, 0), tick=False) as traveller:
        yield traveller


class Learners:
    def __init__(self, dp: Dispatcher, bot: Bot, engine: AsyncEngine) -> None:
        self.dp, self.bot = dp, bot
        self.sessions = create_sessionmaker(engine)

    async def say(self, uid: int, text: str) -> None:
        await self.dp.feed_update(self.bot, updates.message(text, user=updates.learner(uid)))

    async def press(self, uid: int, data: str) -> None:
        await self.dp.feed_update(self.bot, updates.callback(data, user=updates.learner(uid)))

    async def practise(self, uid: int) -> None:
        """What storing a message does to the learner's day, without OpenAI."""
        async with self.sessions() as session:
            user = await session.scalar(select(User).where(User.telegram_id == uid))
            assert user is not None
            zone = ZoneInfo(await self._zone(uid))
            day = days.local_day(days.now(), zone)
            await record_activity(session, user.id, day, Activity(messages=1))
            await session.commit()

    async def _zone(self, uid: int) -> str:
        async with self.sessions() as session:
            zone = await session.scalar(
                select(UserSettings.timezone)
                .join(User, User.id == UserSettings.user_id)
                .where(User.telegram_id == uid)
            )
        return zone or "Europe/Prague"

    async def sent_reminders(self) -> int:
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Reminder).where(Reminder.sent_at.is_not(None))
            )
        return count or 0


@pytest.fixture
def learners(dp: Dispatcher, bot: Bot, engine: AsyncEngine) -> Learners:
    return Learners(dp, bot, engine)


def reminders_to(recorder: RecordingSession, uid: int) -> list[SendMessage]:
    return [
        request
        for request in recorder.of(SendMessage)
        if request.chat_id == uid and "💬" in (request.text or "")
    ]


def voices_to(recorder: RecordingSession, uid: int) -> list[SendVoice]:
    return [request for request in recorder.of(SendVoice) if request.chat_id == uid]


# ------------------------------------------------------------------ choosing the time


def test_next_at_keeps_the_local_hour_across_a_dst_change() -> None:
    before = next_at(dt.time(19, 0), PRAGUE, at(PRAGUE, 2026, 3, 28, 20, 0))
    assert before == dt.datetime(2026, 3, 29, 17, 0, tzinfo=dt.UTC)  # 19:00 CEST
    assert next_at(dt.time(19, 0), PRAGUE, at(PRAGUE, 2026, 3, 28, 19, 0)) == dt.datetime(
        2026, 3, 28, 18, 0, tzinfo=dt.UTC
    )  # 19:00 CET, due at once


async def test_remind_command_sets_shows_and_stops_the_reminder(
    learners: Learners, recorder: RecordingSession, clock: Any
) -> None:
    await learners.say(1, "/remind")
    assert recorder.of(SendMessage)[-1].text == texts.REMIND_NONE
    await learners.say(1, "/remind 19.30")
    assert recorder.of(SendMessage)[-1].text == texts.REMIND_SET.format(
        time="19:30", zone="Europe/Prague"
    )
    await learners.say(1, "/remind")
    assert "19:30" in (recorder.of(SendMessage)[-1].text or "")
    await learners.say(1, "/remind půl osmé")
    assert recorder.of(SendMessage)[-1].text == texts.REMIND_BAD
    await learners.say(1, "/remind 23:00")
    assert recorder.of(SendMessage)[-1].text == texts.REMIND_QUIET
    await learners.say(1, "/remind off")
    assert recorder.of(SendMessage)[-1].text == texts.REMIND_OFF
    async with learners.sessions() as session:
        row = await session.scalar(select(UserSettings))
    assert row is not None and row.reminder_time is None and row.next_reminder_at is None


async def test_onboarding_ends_with_the_reminder_question(
    learners: Learners, recorder: RecordingSession, scheduler: ReminderScheduler, clock: Any
) -> None:
    await learners.say(2, "/start")
    await learners.press(2, OnboardingCb(step="language", value="en").pack())
    await learners.press(2, OnboardingCb(step="level", value="beginner").pack())
    question = recorder.of(EditMessageText)[-1]
    assert question.text == texts.ASK_REMINDER
    assert question.reply_markup is not None
    rows = question.reply_markup.inline_keyboard
    assert [button.text for button in rows[-1]] == [texts.REMIND_NO]  # a row of its own
    await learners.press(2, RemindCb(at="1900", onboarding=True).pack())
    assert recorder.of(EditMessageText)[-1].text == texts.REMIND_SET.format(
        time="19:00", zone="Europe/Prague"
    )
    assert recorder.of(SendMessage)[-1].text == texts.ONBOARDING_DONE
    clock.move_to(at(PRAGUE, 2026, 3, 27, 19, 0))
    assert await scheduler.tick() == 1


async def test_skip_has_a_row_of_its_own(learners: Learners, recorder: RecordingSession) -> None:
    await learners.say(3, "/start")
    markup = recorder.of(SendMessage)[-1].reply_markup
    assert markup is not None
    assert [button.text for button in markup.inline_keyboard[-1]] == [texts.SKIP]


async def test_timezone_moves_the_day_and_the_reminder_hour(
    learners: Learners, recorder: RecordingSession, scheduler: ReminderScheduler, clock: Any
) -> None:
    await learners.say(4, "/remind 19:00")
    await learners.say(4, "/timezone")
    menu = recorder.of(SendMessage)[-1]
    assert menu.reply_markup is not None
    assert len([b for row in menu.reply_markup.inline_keyboard for b in row]) == 7
    await learners.say(4, "/timezone Mars/Olympus")
    assert recorder.of(SendMessage)[-1].text == texts.TIMEZONE_UNKNOWN
    await learners.say(4, "/timezone europe/kyiv")
    assert recorder.of(SendMessage)[-1].text == texts.TIMEZONE_SET.format(
        zone="Europe/Kyiv", time="13:00"
    )
    clock.move_to(at(PRAGUE, 2026, 3, 27, 18, 0))  # 19:00 in Kyiv
    assert await scheduler.tick() == 1
    await learners.press(4, TimezoneCb(zone="Europe/London").pack())
    async with learners.sessions() as session:
        row = await session.scalar(select(UserSettings))
    assert row is not None and row.timezone == "Europe/London"
    # 19:00 in London is still ahead today, but today's reminder has gone out already.
    assert days.utc(row.next_reminder_at) == dt.datetime(2026, 3, 27, 19, 0, tzinfo=dt.UTC)
    clock.move_to(dt.datetime(2026, 3, 27, 19, 0, tzinfo=dt.UTC))
    assert await scheduler.tick() == 0
    clock.move_to(dt.datetime(2026, 3, 28, 19, 0, tzinfo=dt.UTC))
    assert await scheduler.tick() == 1


# ------------------------------------------------------------------ when it goes out


async def test_a_reminder_arrives_at_the_chosen_minute_across_a_dst_change(
    learners: Learners, recorder: RecordingSession, scheduler: ReminderScheduler, clock: Any
) -> None:
    await learners.say(5, "/remind 19:00")
    for day in (28, 29):  # CET, then CEST from 02:00 on the 29th
        clock.move_to(at(PRAGUE, 2026, 3, day, 18, 59))
        assert await scheduler.tick() == 0
        clock.move_to(at(PRAGUE, 2026, 3, day, 19, 0))
        assert await scheduler.tick() == 1
        clock.move_to(at(PRAGUE, 2026, 3, day, 19, 30))
        assert await scheduler.tick() == 0  # once a day
    sent = reminders_to(recorder, 5)
    assert len(sent) == 2
    phrase = texts.phrase_of_the_day(dt.date(2026, 3, 29))
    assert phrase in (sent[-1].text or "")
    assert len(voices_to(recorder, 5)) == 2


async def test_none_on_a_practised_day_and_none_in_quiet_hours(
    learners: Learners, recorder: RecordingSession, scheduler: ReminderScheduler, clock: Any
) -> None:
    await learners.say(6, "/remind 21:30")
    await learners.practise(6)
    clock.move_to(at(PRAGUE, 2026, 3, 27, 21, 30))
    assert await scheduler.tick() == 0  # practised today: no need
    # The next day the bot is down from 21:00 and back at 22:05: too late, quiet hours.
    clock.move_to(at(PRAGUE, 2026, 3, 28, 22, 5))
    assert await scheduler.tick() == 0
    # Down all the next day too, back at 07:00 and 09:00 the day after: nothing for the
    # missed day, and the day's own reminder waits for its minute.
    clock.move_to(at(PRAGUE, 2026, 3, 30, 9, 0))
    assert await scheduler.tick() == 0
    clock.move_to(at(PRAGUE, 2026, 3, 30, 21, 30))
    assert await scheduler.tick() == 1
    assert len(reminders_to(recorder, 6)) == 1


async def test_a_due_reminder_survives_a_restart(
    dp: Dispatcher,
    learners: Learners,
    recorder: RecordingSession,
    scheduler: ReminderScheduler,
    clock: Any,
) -> None:
    await learners.say(7, "/remind 19:10")
    await learners.say(8, "/remind 19:00")
    # Learner 8: a process claimed the reminder at 19:00 and died before sending it.
    clock.move_to(at(PRAGUE, 2026, 3, 27, 19, 0))
    reminders: ReminderService = dp["reminders"]
    async with learners.sessions() as session:
        crashed = (await reminders.claim(session, days.now(), 10)).due
    assert [due.profile.telegram_id for due in crashed] == [8]
    clock.move_to(at(PRAGUE, 2026, 3, 27, 19, 0) + STALE_CLAIM / 2)
    assert await scheduler.tick() == 0  # the dead process's claim is still fresh
    # Learner 7: due at 19:10 while every process was down; one is back at 20:30.
    clock.move_to(at(PRAGUE, 2026, 3, 27, 20, 30))
    assert await scheduler.tick() == 2  # 7's, late but the same evening, and 8's taken over
    assert await scheduler.tick() == 0
    async with learners.sessions() as session:  # the first process, slow rather than dead
        assert await reminders.renew(session, crashed[0], days.now()) is None  # not sent twice
    assert len(reminders_to(recorder, 7)) == 1 and len(reminders_to(recorder, 8)) == 1
    assert await learners.sent_reminders() == 2


async def test_the_phrase_is_synthesised_once_and_uploaded_once_for_50_learners(
    learners: Learners,
    recorder: RecordingSession,
    scheduler: ReminderScheduler,
    oa: FakeOpenAI,
    clock: Any,
) -> None:
    uids = range(100, 150)
    for uid in uids:
        await learners.say(uid, "/remind 19:00")
    clock.move_to(at(PRAGUE, 2026, 3, 27, 19, 0))
    assert await scheduler.tick() == 50
    assert len(oa.calls("speech")) == 1
    voices = recorder.of(SendVoice)
    assert len(voices) == 50 and {v.chat_id for v in voices} == set(uids)
    uploads = [v for v in voices if isinstance(v.voice, BufferedInputFile)]
    assert len(uploads) == 1
    assert len({v.voice for v in voices if isinstance(v.voice, str)}) == 1  # one file_id


async def test_403_stops_reminders_until_the_learner_writes_again(
    learners: Learners,
    recorder: BlockingSession,
    scheduler: ReminderScheduler,
    clock: Any,
) -> None:
    await learners.say(9, "/remind 19:00")
    recorder.blocked.add(9)
    clock.move_to(at(PRAGUE, 2026, 3, 27, 19, 0))
    assert await scheduler.tick() == 0
    recorder.blocked.clear()  # they could be reached again, but have not written
    clock.move_to(at(PRAGUE, 2026, 3, 28, 19, 0))
    assert await scheduler.tick() == 0
    await learners.say(9, "/help")  # back
    clock.move_to(at(PRAGUE, 2026, 3, 29, 19, 0))
    assert await scheduler.tick() == 1


async def test_kicked_in_my_chat_member_stops_reminders(
    dp: Dispatcher, bot: Bot, learners: Learners, scheduler: ReminderScheduler, clock: Any
) -> None:
    await learners.say(10, "/remind 19:00")
    user = updates.learner(10)
    kicked = Update(
        update_id=900_001,
        my_chat_member=MemberUpdate(
            chat=Chat(id=10, type="private"),
            from_user=user,
            date=dt.datetime.now(dt.UTC),
            old_chat_member=ChatMemberMember(user=BOT_USER),
            new_chat_member=ChatMemberBanned(user=BOT_USER, until_date=0),
        ),
    )
    await dp.feed_update(bot, kicked)
    clock.move_to(at(PRAGUE, 2026, 3, 27, 19, 0))
    assert await scheduler.tick() == 0


async def test_the_reminder_says_when_the_streak_is_at_risk(
    learners: Learners, recorder: RecordingSession, scheduler: ReminderScheduler, clock: Any
) -> None:
    await learners.say(11, "/remind 19:00")
    for day in (25, 26):
        clock.move_to(at(PRAGUE, 2026, 3, day, 12, 0))
        await learners.practise(11)
    clock.move_to(at(PRAGUE, 2026, 3, 27, 19, 0))
    assert await scheduler.tick() == 1
    text = reminders_to(recorder, 11)[-1].text or ""
    assert texts.REMINDER_STREAK.format(days=texts.days_count(2)) in text
