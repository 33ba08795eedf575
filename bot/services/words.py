"""The learner's vocabulary: saving words by hand, listing them, and SM-2 review.

Both cached lists are versioned by `words:{user_id}:version`, bumped after every commit
that changes a learner's words.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ai.schema import NewWord
from bot.cache import Cache, Keys
from bot.db.models import SavedWord
from bot.domain import LearnerSettings, Profile
from bot.services import days
from bot.services.activity import Activity, record_activity, save_words

MIN_EASE = 1.3


class Grade(IntEnum):
    """The four review buttons, as SM-2 quality scores."""

    AGAIN = 1
    HARD = 3
    GOOD = 4
    EASY = 5


class WordCard(BaseModel):
    id: int
    word: str
    translation: str
    example: str | None
    next_review: dt.date | None


@dataclass(frozen=True, slots=True)
class Schedule:
    ease_factor: float
    interval_days: int
    repetitions: int
    next_review: dt.date


def schedule(
    ease_factor: float, interval_days: int, repetitions: int, grade: Grade, today: dt.date
) -> Schedule:
    """SM-2: a failed card starts over and stays due today; a passed one waits longer each time."""
    quality = int(grade)
    ease = max(MIN_EASE, ease_factor + 0.1 - (5 - quality) * (0.08 + (5 - quality) * 0.02))
    if quality < 3:
        return Schedule(ease, 0, 0, today)
    if repetitions == 0:
        interval = 1
    elif repetitions == 1:
        interval = 6
    else:
        interval = max(1, round(interval_days * ease_factor))
    return Schedule(ease, interval, repetitions + 1, today + dt.timedelta(days=interval))


def parse_pair(text: str) -> tuple[str, str] | None:
    """`slovo - překlad` (also with –, — or =) into its two halves, or None."""
    for separator in (" - ", " – ", " — ", "=", " -", "- "):
        if separator in text:
            word, _, translation = text.partition(separator)
            word, translation = word.strip(), translation.strip()
            if word and translation and len(word) <= 128 and len(translation) <= 256:
                return word, translation
            return None
    return None


def _card(row: SavedWord) -> WordCard:
    return WordCard(
        id=row.id,
        word=row.word,
        translation=row.translation,
        example=row.example,
        next_review=row.next_review,
    )


class WordsService:
    def __init__(self, cache: Cache, keys: Keys, default_zone: ZoneInfo) -> None:
        self.cache = cache
        self.keys = keys
        self.default_zone = default_zone

    async def all(self, session: AsyncSession, profile: Profile) -> list[WordCard]:
        """Every saved word, newest first."""

        async def load() -> list[WordCard]:
            rows = await session.scalars(
                select(SavedWord)
                .where(SavedWord.user_id == profile.id)
                .order_by(SavedWord.created_at.desc(), SavedWord.id.desc())
            )
            return [_card(row) for row in rows]

        return await self.cache.fetch(
            self.keys.words_all(profile.id, list[WordCard]),
            load,
            version=self.keys.words_version(profile.id),
        )

    async def due(
        self, session: AsyncSession, profile: Profile, settings: LearnerSettings
    ) -> list[WordCard]:
        """Words due for review today, the most overdue first."""
        today, left = days.learner_today(settings, self.default_zone)

        async def load() -> list[WordCard]:
            rows = await session.scalars(
                select(SavedWord)
                .where(SavedWord.user_id == profile.id, SavedWord.next_review <= today)
                .order_by(SavedWord.next_review, SavedWord.id)
            )
            return [_card(row) for row in rows]

        return await self.cache.fetch(
            self.keys.words_due(profile.id, left, list[WordCard]),
            load,
            version=self.keys.words_version(profile.id),
        )

    async def upcoming(
        self, session: AsyncSession, profile: Profile, settings: LearnerSettings
    ) -> tuple[dt.date | None, dt.date]:
        """When the learner's next word is due, and the learner's today to compare with."""
        today, _ = days.learner_today(settings, self.default_zone)
        first = await session.scalar(
            select(SavedWord.next_review)
            .where(SavedWord.user_id == profile.id)
            .order_by(SavedWord.next_review)
            .limit(1)
        )
        return first, today

    async def save(
        self,
        session: AsyncSession,
        profile: Profile,
        settings: LearnerSettings,
        word: str,
        translation: str,
    ) -> bool:
        """Save a word typed by the learner; False if they already have it."""
        today, _ = days.learner_today(settings, self.default_zone)
        saved = await save_words(
            session, profile.id, [NewWord(word=word, translation=translation, example="")], today
        )
        if saved:
            await record_activity(session, profile.id, today, Activity(new_words=len(saved)))
        await session.commit()
        if saved:
            await self.cache.bump(
                [self.keys.words_version(profile.id), self.keys.stats_version(profile.id)]
            )
        return bool(saved)

    async def card(self, session: AsyncSession, profile: Profile, word_id: int) -> WordCard | None:
        """One of the learner's own words; None for someone else's or a deleted one."""
        row = await session.get(SavedWord, word_id)
        if row is None or row.user_id != profile.id:
            return None
        return _card(row)

    async def grade(
        self,
        session: AsyncSession,
        profile: Profile,
        settings: LearnerSettings,
        word_id: int,
        grade: Grade,
    ) -> bool:
        """Reschedule one due card; False for a card that is not the learner's or not due
        (a forged button, or an old one pressed again)."""
        row = await session.get(SavedWord, word_id)
        if row is None or row.user_id != profile.id:
            return False
        today, _ = days.learner_today(settings, self.default_zone)
        if row.next_review is not None and row.next_review > today:
            return False
        plan = schedule(row.ease_factor, row.interval_days, row.repetitions, grade, today)
        row.ease_factor = plan.ease_factor
        row.interval_days = plan.interval_days
        row.repetitions = plan.repetitions
        row.next_review = plan.next_review
        await session.commit()
        await self.cache.bump(
            [self.keys.words_version(profile.id), self.keys.stats_version(profile.id)]
        )
        return True
