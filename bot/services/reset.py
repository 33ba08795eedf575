"""/reset: start a fresh conversation, or delete everything a learner has told us."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cache import Cache, Keys
from bot.db.models import DailyStats, Message, SavedWord, User
from bot.domain import LearnerSettings, Profile
from bot.services import days
from bot.services.conversation import HistoryItem
from bot.services.stats import DayStats, Progress
from bot.services.words import WordCard


class ResetService:
    def __init__(
        self, cache: Cache, keys: Keys, history_limit: int, default_zone: ZoneInfo
    ) -> None:
        self.cache = cache
        self.keys = keys
        self.history_limit = history_limit
        self.default_zone = default_zone

    async def new_conversation(self, session: AsyncSession, profile: Profile) -> None:
        """Honzík forgets the conversation window; messages and stats stay."""
        await session.execute(
            update(User).where(User.id == profile.id).values(conversation_started_at=days.now())
        )
        await session.commit()
        await self._forget_history(profile)

    async def delete_all(
        self, session: AsyncSession, profile: Profile, settings: LearnerSettings
    ) -> None:
        """Delete messages, stats and words, then every cache entry of this learner, those made
        from what they said (transcripts, Honzík's answers and their voice) included."""
        for table in (Message, DailyStats, SavedWord):
            await session.execute(delete(table).where(table.user_id == profile.id))
        await session.execute(
            update(User)
            .where(User.id == profile.id)
            .values(
                current_streak=0,
                best_streak=0,
                last_active_date=None,
                conversation_started_at=days.now(),
            )
        )
        await session.commit()
        today, left = days.learner_today(settings, self.default_zone)
        content = self.keys.content(profile.telegram_id)
        said = await self.cache.content_of(content)
        await self.cache.bump(
            [self.keys.stats_version(profile.id), self.keys.words_version(profile.id)],
            stale=[
                self.keys.daily_stats(profile.id, today, left, DayStats),
                self.keys.progress(profile.id, left, Progress),
                self.keys.stats_chart(profile.id, today, left),
                self.keys.words_all(profile.id, list[WordCard]),
                self.keys.words_due(profile.id, left, list[WordCard]),
                self.keys.profile(profile.telegram_id),
                self.keys.settings(profile.telegram_id),
                content,
                *said,
            ],
        )
        await self._forget_history(profile)

    async def _forget_history(self, profile: Profile) -> None:
        key = self.keys.history(profile.telegram_id, self.history_limit, list[HistoryItem])
        await self.cache.put(key, [])
