"""Sending the daily reminders: every replica runs a scheduler, the database shares them out.

Each tick claims the learners due now (see `bot.services.reminders`: row locks, one claim
row per learner and day) and sends their reminders at Telegram's pace: at most
`REMINDER_MESSAGES_PER_SECOND` messages a second from this process (aiolimiter's leaky
bucket), a `RetryAfter` honoured for every send that follows. A text Telegram did not take
stays claimed and unsent, and some scheduler takes it over later that day.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiolimiter import AsyncLimiter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import texts
from bot.ai.speech import Voice
from bot.domain import VoiceSpeed
from bot.handlers.speaking import send_spoken
from bot.i18n import meaning_locale, speaking_to
from bot.metrics import Metrics
from bot.runtime.stopping import pause
from bot.services import days
from bot.services.reminders import Due, ReminderService

log = logging.getLogger(__name__)

BATCH = 50  # learners claimed at once: a few seconds of sending


class ReminderScheduler:
    def __init__(
        self,
        bot: Bot,
        sessionmaker: async_sessionmaker[AsyncSession],
        reminders: ReminderService,
        voice: Voice,
        metrics: Metrics,
        *,
        per_second: float,
        interval: float,
        batch: int = BATCH,
    ) -> None:
        self.bot = bot
        self.sessionmaker = sessionmaker
        self.reminders = reminders
        self.voice = voice
        self.metrics = metrics
        self.limiter = AsyncLimiter(per_second, 1.0)
        self.interval = interval
        self.batch = batch
        self._resume_at = 0.0  # loop time before which Telegram asked us to wait

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `interval` seconds until the bot stops; a database outage skips ticks."""
        while not stop.is_set():
            try:
                await self.tick(stop)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("reminders: database unavailable, trying again later: %s", exc)
            except Exception:  # a bug must not end this replica's reminders for good
                log.exception("reminders: the tick failed; trying again at the next one")
            await pause(stop, self.interval)

    async def tick(self, stop: asyncio.Event | None = None) -> int:
        """Claim and send until nobody is due; the number of reminders sent."""
        sent = 0
        while stop is None or not stop.is_set():
            now = days.now()
            async with self.sessionmaker() as session:
                stalled = await self.reminders.take_over(session, now, self.batch)
                fresh = await self.reminders.claim(session, now, self.batch)
            for item in stalled.due + fresh.due:
                if stop is not None and stop.is_set():
                    return sent  # still claimed and unsent: taken over later today
                async with self.sessionmaker() as session:
                    mine = await self.reminders.renew(session, item, days.now())
                if mine is not None:
                    sent += await self._deliver(mine)
            if not (stalled.full or fresh.full):
                break
        return sent

    async def _deliver(self, due: Due) -> int:
        """The text, marked sent as soon as Telegram has it, then the phrase's voice."""
        chat_id = due.profile.telegram_id
        with speaking_to(due.profile, due.settings):
            streak = due.streak.current if due.streak.at_risk else 0
            text = texts.reminder(due.day, streak, meaning_locale(due.profile))
        await self._wait_for_telegram()
        try:
            async with self.limiter:
                await self.bot.send_message(chat_id, text)
        except TelegramForbiddenError:
            async with self.sessionmaker() as session:
                await self.reminders.blocked(session, due)
            self.metrics.reminders.labels("blocked").inc()
            return 0
        except TelegramRetryAfter as exc:
            self._resume_at = asyncio.get_running_loop().time() + exc.retry_after
            self.metrics.reminders.labels("failed").inc()
            return 0
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():  # the account is gone: as if blocked
                async with self.sessionmaker() as session:
                    await self.reminders.blocked(session, due)
                self.metrics.reminders.labels("blocked").inc()
                return 0
            log.error("reminder refused, not trying again today: %s", exc.message)
            async with self.sessionmaker() as session:
                await self.reminders.sent(session, due.reminder_id)
            self.metrics.reminders.labels("failed").inc()
            return 0
        except (TelegramAPIError, OSError) as exc:
            log.warning("reminder not sent, trying again later: %s", type(exc).__name__)
            self.metrics.reminders.labels("failed").inc()
            return 0
        async with self.sessionmaker() as session:
            await self.reminders.sent(session, due.reminder_id)
        self.metrics.reminders.labels("sent").inc()
        if due.settings.voice_replies:
            await self._speak(due)
        return 1

    async def _speak(self, due: Due) -> None:
        """The phrase spoken slowly: one voice for everyone that day, re-sent by file_id."""
        slow = due.settings.model_copy(update={"voice_speed": VoiceSpeed.SLOW})
        phrase = texts.phrase_of_the_day(due.day)
        try:
            async with self.limiter:
                await send_spoken(self.bot, due.profile.telegram_id, phrase, slow, self.voice)
        except (TelegramAPIError, OSError) as exc:
            log.warning("reminder voice not sent: %s", type(exc).__name__)

    async def _wait_for_telegram(self) -> None:
        wait = self._resume_at - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
