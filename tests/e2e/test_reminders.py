"""A daily reminder end to end: `/remind` one minute ahead, then the reminder arrives once,
text then voice, and a restarted bot does not send it again."""

from __future__ import annotations

import datetime as dt
import sqlite3
from zoneinfo import ZoneInfo

import pytest

from bot import texts
from bot.services.reminders import quiet
from tests.e2e.harness import Fleet, exchange, same_text
from tests.standins.telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CHECK_EVERY = {"REMINDER_CHECK_SECONDS": "1"}


def daytime_zone(now: dt.datetime) -> str:
    """A fixed-offset zone where it is now about noon: the test's minute is never in quiet
    hours, whenever it runs. (`Etc/GMT-3` is UTC+3: POSIX signs are inverted.)"""
    offset = (12 - now.hour) % 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


async def test_a_reminder_one_minute_ahead_arrives_once_text_and_voice(
    fleet: Fleet, tg: FakeTelegram
) -> None:
    bot = await fleet.start("reminding", env=CHECK_EVERY)
    user = 7101
    tg.add_user(user, "Taras")
    zone = daytime_zone(dt.datetime.now(dt.UTC))
    (moved,) = await exchange(tg, user, lambda: tg.send_command(user, "timezone", zone))
    assert zone in moved.params["text"]

    local = dt.datetime.now(ZoneInfo(zone))
    at = (local + dt.timedelta(minutes=1)).strftime("%H:%M")
    assert not quiet(dt.time.fromisoformat(at))
    (confirmed,) = await exchange(tg, user, lambda: tg.send_command(user, "remind", at))
    assert same_text(confirmed.params["text"], texts.REMIND_SET.format(time=at, zone=zone))

    mark = tg.mark()
    reminder = await tg.wait_for(
        lambda call: call.method == "sendMessage" and "💬" in call.params.get("text", ""),
        timeout=90,
        since=mark,
    )
    (voice,) = await tg.wait_for_method("sendVoice", since=mark, chat_id=user, timeout=15)
    assert reminder.params["chat_id"] == user
    assert reminder.seq < voice.seq
    assert texts.phrase_of_the_day(local.date()) in reminder.params["text"]

    # Restarted on the same day, the bot claims nothing again: the day's row says sent.
    await bot.stop()
    await fleet.start("reminding-again", env=CHECK_EVERY)
    since = tg.mark()
    await exchange(tg, user, lambda: tg.send_command(user, "help"))
    database = fleet.database_url.split("///", 1)[1]
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT sent_at IS NOT NULL FROM reminders").fetchall()
    assert rows == [(1,)]
    reminders = [
        call
        for call in tg.calls[mark:]
        if call.method == "sendMessage" and "💬" in call.params.get("text", "")
    ]
    assert len(reminders) == 1
    assert not [c for c in tg.calls[since:] if c.method == "sendVoice"]
    bot.assert_no_traceback()
