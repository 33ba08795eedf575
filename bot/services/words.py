"""The learner's vocabulary: saving words by hand, listing and deleting them, and review.

Review is Anki's SM-2 variant with Anki's default settings (its v3 scheduler, without fuzz):
a new word is learnt in short steps within the sitting before it waits days, because a word
seen once and then not for a day is mostly forgotten.

- New and learning cards step through 1 min, 10 min. Again: back to the first step. Hard: the
  first step waits the average of the first two (5.5 min), a later step repeats itself. Good:
  the next step, after the last one the card graduates to review in 1 day. Easy: graduates at
  once, in 4 days. The ease starts at 2.5 and does not move while learning.
- A review card with interval I days, answered L days late, ease E: Hard gives
  max(I × 1.2, I + 1) days and E − 0.15; Good max((I + L/2) × E, Hard + 1) days; Easy
  max((I + L) × E × 1.3, Good + 1) days and E + 0.15. Intervals are rounded, at most
  36500 days; the ease never drops below 1.3.
- Again on a review card is a lapse: E − 0.20, the interval becomes max(1, I × 0) = 1 day and
  the card relearns in one 10 min step (Hard there waits 1.5 × the step, 15 min). Good then
  returns it to review at that interval, Easy at the interval + 1 day.
- No fuzz: a learner's small deck needs no spreading of the load, and schedules stay exact.

A session shows the due review cards (the most overdue first), then up to NEW_PER_DAY new
cards a day (the oldest saved first), then the cards in a learning step by their due time,
including those due within LEARN_AHEAD (Anki's learn-ahead limit). So a card answered "Znovu"
comes back after the session's other cards, not straight away, and a session ends only when
every card started today has graduated.

Both cached entries are versioned by `words:{user_id}:version`, bumped after every commit that
changes a learner's words. The due entry holds only what changes with the day (it ends at the
learner's midnight); learning cards are kept with their due time and compared with the clock
on every read, so minutes passing need no invalidation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ai.schema import NewWord
from bot.cache import Cache, Keys
from bot.db.models import CardState, SavedWord
from bot.domain import LearnerSettings, Profile
from bot.services import days
from bot.services.activity import Activity, record_activity, save_words

LEARNING_STEPS = (dt.timedelta(minutes=1), dt.timedelta(minutes=10))
RELEARNING_STEPS = (dt.timedelta(minutes=10),)
GRADUATING_INTERVAL = 1
EASY_INTERVAL = 4
MIN_EASE = 1.3
HARD_MULTIPLIER = 1.2
EASY_BONUS = 1.3
LAPSE_MULTIPLIER = 0.0
MIN_LAPSE_INTERVAL = 1
MAX_INTERVAL = 36500
LEARN_AHEAD = dt.timedelta(minutes=20)
NEW_PER_DAY = 20
IN_STEPS = (CardState.LEARNING.value, CardState.RELEARNING.value)


class Grade(StrEnum):
    """The four review buttons."""

    AGAIN = "again"
    HARD = "hard"
    GOOD = "good"
    EASY = "easy"


EASE_CHANGE = {Grade.AGAIN: -0.2, Grade.HARD: -0.15, Grade.GOOD: 0.0, Grade.EASY: 0.15}


class WordCard(BaseModel):
    id: int
    word: str
    translation: str
    example: str | None
    next_review: dt.date | None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Where a card stands: what `answer` reads and returns."""

    state: CardState
    step: int
    due_at: dt.datetime | None  # in a (re)learning step
    ease_factor: float
    interval_days: int
    repetitions: int  # passes since the card was new or last lapsed
    next_review: dt.date | None  # in review


def _round(value: float) -> int:
    """Half away from zero, as Anki rounds (Python's `round` goes to even)."""
    return math.floor(value + 0.5)


def _interval(value: float, minimum: int) -> int:
    return min(MAX_INTERVAL, max(1, minimum, _round(value)))


def _hard_delay(steps: Sequence[dt.timedelta], step: int) -> dt.timedelta:
    if step > 0:
        return steps[step]
    if len(steps) > 1:
        return (steps[0] + steps[1]) / 2
    return min(steps[0] * 1.5, steps[0] + dt.timedelta(days=1))


def _review(card: Schedule, grade: Grade, moment: dt.datetime, today: dt.date) -> Schedule:
    ease = max(MIN_EASE, card.ease_factor + EASE_CHANGE[grade])
    current = card.interval_days
    if grade is Grade.AGAIN:
        return dataclasses.replace(
            card,
            state=CardState.RELEARNING,
            step=0,
            due_at=moment + RELEARNING_STEPS[0],
            ease_factor=ease,
            interval_days=_interval(current * LAPSE_MULTIPLIER, MIN_LAPSE_INTERVAL),
            repetitions=0,
            next_review=None,
        )
    late = max(0, (today - card.next_review).days) if card.next_review else 0
    hard = _interval(current * HARD_MULTIPLIER, current + 1)
    good = _interval((current + late / 2) * card.ease_factor, hard + 1)
    easy = _interval((current + late) * card.ease_factor * EASY_BONUS, good + 1)
    interval = {Grade.HARD: hard, Grade.GOOD: good, Grade.EASY: easy}[grade]
    return dataclasses.replace(
        card,
        ease_factor=ease,
        interval_days=interval,
        repetitions=card.repetitions + 1,
        next_review=today + dt.timedelta(days=interval),
    )


def answer(card: Schedule, grade: Grade, moment: dt.datetime, today: dt.date) -> Schedule:
    """The card's schedule after the learner answered `grade` at `moment` (their `today`)."""
    if card.state is CardState.REVIEW:
        return _review(card, grade, moment, today)
    relearning = card.state is CardState.RELEARNING
    steps = RELEARNING_STEPS if relearning else LEARNING_STEPS
    step = 0 if card.state is CardState.NEW else min(card.step, len(steps) - 1)
    if grade is Grade.AGAIN:
        step, delay = 0, steps[0]
    elif grade is Grade.HARD:
        delay = _hard_delay(steps, step)
    elif grade is Grade.GOOD and step + 1 < len(steps):
        step, delay = step + 1, steps[step + 1]
    else:
        if relearning:
            interval = card.interval_days + (1 if grade is Grade.EASY else 0)
        else:
            interval = EASY_INTERVAL if grade is Grade.EASY else GRADUATING_INTERVAL
        return dataclasses.replace(
            card,
            state=CardState.REVIEW,
            step=0,
            due_at=None,
            interval_days=interval,
            repetitions=card.repetitions + 1,
            next_review=today + dt.timedelta(days=interval),
        )
    return dataclasses.replace(
        card,
        state=CardState.RELEARNING if relearning else CardState.LEARNING,
        step=step,
        due_at=moment + delay,
        next_review=None,
    )


def _schedule_of(row: SavedWord) -> Schedule:
    return Schedule(
        state=CardState(row.state),
        step=row.step,
        due_at=days.utc(row.due_at) if row.due_at else None,
        ease_factor=row.ease_factor,
        interval_days=row.interval_days,
        repetitions=row.repetitions,
        next_review=row.next_review,
    )


def mark_of(state: str, due_at: dt.datetime | None, next_review: dt.date | None) -> int:
    """A number that changes with every answer: a review button carries the one it was drawn
    for, so pressing an old button again changes nothing."""
    if state in IN_STEPS and due_at is not None:
        return int(days.utc(due_at).timestamp())
    if state == CardState.REVIEW.value and next_review is not None:
        return next_review.toordinal()
    return 0


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


class QueuedCard(BaseModel):
    id: int
    word: str
    mark: int
    due_at: dt.datetime | None  # in a (re)learning step


class Deck(BaseModel):
    """What a learner may review today, as far as it changes only with the day."""

    reviews: list[QueuedCard]  # due, the most overdue first
    new: list[QueuedCard]  # today's allowance, the oldest saved first
    learning: list[QueuedCard]  # in a step, the soonest due first
    waiting_new: int  # new cards beyond today's allowance
    next_review: dt.date | None  # the first review after today


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    cards: list[QueuedCard]  # what to show now, in order
    waiting_new: int
    next_day: dt.date | None  # the first day something is due after these cards
    today: dt.date


def _queued(row: SavedWord) -> QueuedCard:
    due_at = days.utc(row.due_at) if row.due_at else None
    return QueuedCard(
        id=row.id,
        word=row.word,
        mark=mark_of(row.state, due_at, row.next_review),
        due_at=due_at if row.state in IN_STEPS else None,
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

    async def _introduced(self, session: AsyncSession, user_id: int, today: dt.date) -> int:
        count = await session.scalar(
            select(func.count())
            .select_from(SavedWord)
            .where(SavedWord.user_id == user_id, SavedWord.introduced_on == today)
        )
        return count or 0

    async def _deck(self, session: AsyncSession, user_id: int, today: dt.date) -> Deck:
        review = SavedWord.state == CardState.REVIEW.value
        new = SavedWord.state == CardState.NEW.value
        counts = (
            await session.execute(
                select(
                    func.count().filter(new),
                    func.count().filter(SavedWord.introduced_on == today),
                    func.min(SavedWord.next_review).filter(review, SavedWord.next_review > today),
                ).where(SavedWord.user_id == user_id)
            )
        ).one()
        new_count, introduced, next_review = counts[0] or 0, counts[1] or 0, counts[2]
        allowance = max(0, NEW_PER_DAY - introduced)
        due = await session.scalars(
            select(SavedWord)
            .where(
                SavedWord.user_id == user_id,
                (review & (SavedWord.next_review <= today)) | SavedWord.state.in_(IN_STEPS),
            )
            .order_by(SavedWord.next_review, SavedWord.id)
        )
        started = [_queued(row) for row in due]
        fresh = await session.scalars(
            select(SavedWord)
            .where(SavedWord.user_id == user_id, new)
            .order_by(SavedWord.created_at, SavedWord.id)
            .limit(allowance)
        )
        shown = [_queued(row) for row in fresh]
        learning = [card for card in started if card.due_at is not None]
        return Deck(
            reviews=[card for card in started if card.due_at is None],
            new=shown,
            learning=sorted(learning, key=lambda card: (card.due_at, card.id)),
            waiting_new=new_count - len(shown),
            next_review=next_review,
        )

    async def queue(
        self, session: AsyncSession, profile: Profile, settings: LearnerSettings
    ) -> ReviewQueue:
        """The cards to review now, in order, and what comes after them."""
        moment = days.now()
        zone = days.zone_of(settings, self.default_zone)
        today = days.local_day(moment, zone)

        async def load() -> Deck:
            return await self._deck(session, profile.id, today)

        deck = await self.cache.fetch(
            self.keys.words_due(profile.id, days.seconds_to_midnight(moment, zone), Deck),
            load,
            version=self.keys.words_version(profile.id),
        )
        ahead = moment + LEARN_AHEAD
        now = [c for c in deck.learning if c.due_at is not None and c.due_at <= ahead]
        later = [
            days.local_day(c.due_at, zone)
            for c in deck.learning
            if c.due_at is not None and c.due_at > ahead
        ]
        tomorrow = [today + dt.timedelta(days=1)] if deck.waiting_new else []
        after = [*later, *tomorrow, *([deck.next_review] if deck.next_review else [])]
        return ReviewQueue(
            cards=[*deck.reviews, *deck.new, *now],
            waiting_new=deck.waiting_new,
            next_day=min(after, default=None),
            today=today,
        )

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
            await self._bump(profile)
        return bool(saved)

    async def delete(self, session: AsyncSession, profile: Profile, word_id: int) -> str | None:
        """Delete one of the learner's own words and return it; None for anyone else's."""
        row = await session.get(SavedWord, word_id)
        if row is None or row.user_id != profile.id:
            return None
        word = row.word
        await session.delete(row)
        await session.commit()
        await self._bump(profile)
        return word

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
        mark: int,
        grade: Grade,
    ) -> bool:
        """Reschedule one card shown for review; False for a card that is not the learner's,
        has been answered since the button was drawn (`mark`), or is not due (a forged button).
        """
        row = await session.get(SavedWord, word_id)
        if row is None or row.user_id != profile.id:
            return False
        if mark != mark_of(row.state, row.due_at, row.next_review):
            return False
        moment = days.now()
        today = days.local_day(moment, days.zone_of(settings, self.default_zone))
        card = _schedule_of(row)
        if card.state is CardState.NEW:
            if await self._introduced(session, profile.id, today) >= NEW_PER_DAY:
                return False
            row.introduced_on = today
        elif card.state is CardState.REVIEW:
            if card.next_review is not None and card.next_review > today:
                return False
        elif card.due_at is not None and card.due_at > moment + LEARN_AHEAD:
            return False
        plan = answer(card, grade, moment, today)
        row.state = plan.state.value
        row.step = plan.step
        row.due_at = plan.due_at
        row.ease_factor = plan.ease_factor
        row.interval_days = plan.interval_days
        row.repetitions = plan.repetitions
        row.next_review = plan.next_review
        await session.commit()
        await self._bump(profile)
        return True

    async def _bump(self, profile: Profile) -> None:
        await self.cache.bump(
            [self.keys.words_version(profile.id), self.keys.stats_version(profile.id)]
        )
