"""Recording what a learner did today: atomic daily counters, streaks, saved words.

Every write here joins the caller's transaction, so a stored message and its statistics
commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ai.schema import NewWord
from bot.db.engine import upsert
from bot.db.models import DailyStats, SavedWord, User
from bot.services import streaks


@dataclass(frozen=True, slots=True)
class Activity:
    messages: int = 0
    voice_messages: int = 0
    words_spoken: int = 0
    seconds_spoken: float = 0.0
    mistakes: int = 0
    score: int | None = None
    new_words: int = 0


async def record_activity(
    session: AsyncSession, user_id: int, day: dt.date, activity: Activity
) -> None:
    """Add to the day's counters with one upsert; concurrent writers never lose an increment."""
    values = {
        "messages": activity.messages,
        "voice_messages": activity.voice_messages,
        "words_spoken": activity.words_spoken,
        "seconds_spoken": activity.seconds_spoken,
        "mistakes": activity.mistakes,
        "score_sum": activity.score or 0,
        "scored_messages": 1 if activity.score is not None else 0,
        "new_words": activity.new_words,
    }
    table = DailyStats.__table__
    statement = upsert(session, table).values(user_id=user_id, date=day, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.user_id, table.c.date],
        set_={name: table.c[name] + statement.excluded[name] for name in values},
    )
    await session.execute(statement)
    if activity.messages:
        await _advance_streak(session, user_id, day)


async def _advance_streak(session: AsyncSession, user_id: int, day: dt.date) -> None:
    """The first practice of a day moves the streak on, spending freezes on missed days."""
    user = await session.get(User, user_id)
    # After a move west the learner's day can be earlier than the one stored: nothing moves.
    if user is None or (user.last_active_date is not None and user.last_active_date >= day):
        return
    current, best, freezes = streaks.advance(
        user.current_streak, user.best_streak, user.streak_freezes, user.last_active_date, day
    )
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            current_streak=current,
            best_streak=best,
            streak_freezes=freezes,
            last_active_date=day,
        )
    )


async def save_words(
    session: AsyncSession, user_id: int, words: list[NewWord], today: dt.date
) -> list[str]:
    """Insert new words, skipping ones the learner already has; returns the words inserted."""
    saved: list[str] = []
    table = SavedWord.__table__
    for word in words:
        text = word.word.strip()[:128]
        if not text:
            continue
        statement = (
            upsert(session, table)
            .values(
                user_id=user_id,
                word=text,
                translation=word.translation.strip()[:256],
                example=word.example.strip() or None,
                next_review=today,
            )
            .on_conflict_do_nothing(index_elements=[table.c.user_id, table.c.word])
            .returning(table.c.id)
        )
        if (await session.execute(statement)).first() is not None:
            saved.append(text)
    return saved
