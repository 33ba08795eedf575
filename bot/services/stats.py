"""Progress a learner can see: today, streaks, the last days, mistakes and all-time totals.

Every entry, the chart's file id too, is versioned by `stats:{user_id}:version`, which every
write bumps after its commit; a warm `/stats` is one MGET for the text and one for the chart,
and no SQL; a cold one a handful of indexed queries.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ai.schema import MistakeCategory
from bot.cache import Cache, Key, Keys
from bot.db.models import DailyStats, Message, MessageRole, SavedWord, User
from bot.domain import LearnerSettings, Profile
from bot.services import days, streaks

CHART_DAYS = 14
RECENT_DAYS = 7
TOP_MISTAKES = 3


class DayStats(BaseModel):
    date: dt.date
    messages: int = 0
    voice_messages: int = 0
    words_spoken: int = 0
    seconds_spoken: float = 0.0
    mistakes: int = 0
    average_score: float | None = None
    new_words: int = 0


class DayCount(BaseModel):
    date: dt.date
    messages: int


class Totals(BaseModel):
    messages: int = 0
    voice_messages: int = 0
    words_spoken: int = 0
    seconds_spoken: float = 0.0
    average_score: float | None = None
    active_days: int = 0
    saved_words: int = 0
    scenes: int = 0  # distinct role-play scenes the learner has spoken in


class MistakeTrend(BaseModel):
    """One kind of mistake the learner made lately, with their latest example of it."""

    category: MistakeCategory
    count: int
    original: str
    corrected: str


class Progress(BaseModel):
    current_streak: int
    best_streak: int
    streak_broken: bool
    freezes: int = 0  # banked, once the days missed so far are paid for
    days: list[DayCount]  # the last CHART_DAYS days, oldest first, today last
    totals: Totals
    mistakes: list[MistakeTrend] = []  # the TOP_MISTAKES kinds of the last RECENT_DAYS days

    @property
    def empty(self) -> bool:
        """Nothing said in the chart's days: there is nothing to draw."""
        return not any(day.messages for day in self.days)


class StatsReport(BaseModel):
    today: DayStats
    progress: Progress

    @property
    def recent(self) -> list[DayCount]:
        return self.progress.days[-RECENT_DAYS:]


def average(score_sum: int | None, scored: int | None) -> float | None:
    return round((score_sum or 0) / scored, 1) if scored else None


class StatsService:
    def __init__(self, cache: Cache, keys: Keys, default_zone: ZoneInfo) -> None:
        self.cache = cache
        self.keys = keys
        self.default_zone = default_zone

    def _chart_key(self, profile: Profile, settings: LearnerSettings) -> Key[str]:
        today, left = days.learner_today(settings, self.default_zone)
        return self.keys.stats_chart(profile.id, today, left)

    async def chart_file_id(
        self,
        profile: Profile,
        settings: LearnerSettings,
        upload: Callable[[], Awaitable[str | None]],
    ) -> str | None:
        """Telegram's copy of the chart as the stats stand now, or `upload`'s new one.

        Versioned like the text, so a chart is drawn again after every change and at most once
        per change; `upload` sends a new chart and gives its file id (None: keep nothing).
        """
        # None is never cached (see `Cache._fill`), so the entry only ever holds a file id.
        key = cast("Key[str | None]", self._chart_key(profile, settings))
        return await self.cache.fetch(key, upload, version=self.keys.stats_version(profile.id))

    async def forget_chart(self, profile: Profile, settings: LearnerSettings) -> None:
        await self.cache.delete(self._chart_key(profile, settings))

    async def report(
        self, session: AsyncSession, profile: Profile, settings: LearnerSettings
    ) -> StatsReport:
        today, left = days.learner_today(settings, self.default_zone)
        week = today - dt.timedelta(days=RECENT_DAYS - 1)
        zone = days.zone_of(settings, self.default_zone)
        since = dt.datetime.combine(week, dt.time(), tzinfo=zone).astimezone(dt.UTC)

        async def load() -> tuple[DayStats, Progress]:
            return (
                await self._day(session, profile.id, today),
                await self._progress(session, profile.id, today, since),
            )

        day, progress = await self.cache.fetch_many(
            (
                self.keys.daily_stats(profile.id, today, left, DayStats),
                self.keys.progress(profile.id, left, Progress),
            ),
            load,
            version=self.keys.stats_version(profile.id),
        )
        return StatsReport(today=day, progress=progress)

    @staticmethod
    async def _day(session: AsyncSession, user_id: int, today: dt.date) -> DayStats:
        row = await session.scalar(
            select(DailyStats).where(DailyStats.user_id == user_id, DailyStats.date == today)
        )
        if row is None:
            return DayStats(date=today)
        return DayStats(
            date=today,
            messages=row.messages,
            voice_messages=row.voice_messages,
            words_spoken=row.words_spoken,
            seconds_spoken=row.seconds_spoken,
            mistakes=row.mistakes,
            average_score=average(row.score_sum, row.scored_messages),
            new_words=row.new_words,
        )

    @staticmethod
    async def _progress(
        session: AsyncSession, user_id: int, today: dt.date, since: dt.datetime
    ) -> Progress:
        row = (
            await session.execute(
                select(
                    User.current_streak,
                    User.best_streak,
                    User.streak_freezes,
                    User.last_active_date,
                ).where(User.id == user_id)
            )
        ).one()
        current, best, freezes, last_active = row
        streak = streaks.standing(current, freezes, last_active, today)
        totals_row = (
            await session.execute(
                select(
                    func.coalesce(func.sum(DailyStats.messages), 0),
                    func.coalesce(func.sum(DailyStats.voice_messages), 0),
                    func.coalesce(func.sum(DailyStats.words_spoken), 0),
                    func.coalesce(func.sum(DailyStats.seconds_spoken), 0.0),
                    func.sum(DailyStats.score_sum),
                    func.sum(DailyStats.scored_messages),
                    func.count(),
                ).where(DailyStats.user_id == user_id, DailyStats.messages > 0)
            )
        ).one()
        saved_words = await session.scalar(
            select(func.count()).select_from(SavedWord).where(SavedWord.user_id == user_id)
        )
        # Scenes spoken in, not scenes started: opening one and leaving is no practice.
        scenes = await session.scalar(
            select(func.count(func.distinct(Message.scene))).where(
                Message.user_id == user_id,
                Message.role == MessageRole.LEARNER.value,
                Message.scene.is_not(None),
            )
        )
        first = today - dt.timedelta(days=CHART_DAYS - 1)
        rows = await session.execute(
            select(DailyStats.date, DailyStats.messages).where(
                DailyStats.user_id == user_id, DailyStats.date >= first
            )
        )
        counts = {day: messages for day, messages in rows}
        chart = [first + dt.timedelta(days=offset) for offset in range(CHART_DAYS)]
        return Progress(
            current_streak=streak.current,
            best_streak=best,
            streak_broken=not streak.alive and current > 0,
            freezes=streak.freezes,
            days=[DayCount(date=day, messages=counts.get(day, 0)) for day in chart],
            totals=Totals(
                messages=totals_row[0],
                voice_messages=totals_row[1],
                words_spoken=totals_row[2],
                seconds_spoken=float(totals_row[3]),
                average_score=average(totals_row[4], totals_row[5]),
                active_days=totals_row[6],
                saved_words=saved_words or 0,
                scenes=scenes or 0,
            ),
            mistakes=await _mistakes(session, user_id, since),
        )


async def _mistakes(session: AsyncSession, user_id: int, since: dt.datetime) -> list[MistakeTrend]:
    """The commonest kinds of mistake since `since`, each with its latest example; ties go to
    the kind seen last. Rows stored before mistakes had a kind count as "other"."""
    rows = await session.scalars(
        select(Message.mistakes)
        .where(
            Message.user_id == user_id,
            Message.role == MessageRole.LEARNER.value,
            Message.created_at >= since,
            Message.mistakes.is_not(None),
        )
        .order_by(Message.created_at.desc(), Message.id.desc())
    )
    counts: Counter[MistakeCategory] = Counter()
    latest: dict[MistakeCategory, dict[str, Any]] = {}
    for mistakes in rows:
        for mistake in mistakes or ():
            category = _category(mistake.get("category"))
            counts[category] += 1
            latest.setdefault(category, mistake)
    ranked = sorted(latest, key=lambda category: -counts[category])[:TOP_MISTAKES]
    return [
        MistakeTrend(
            category=category,
            count=counts[category],
            original=str(latest[category].get("original", "")),
            corrected=str(latest[category].get("corrected", "")),
        )
        for category in ranked
    ]


def _category(raw: object) -> MistakeCategory:
    try:
        return MistakeCategory(str(raw))
    except ValueError:
        return MistakeCategory.OTHER
