"""What the buttons under Honzík's answer give: its translation, the corrected sentence, and
the words it suggested saved.

Buttons carry only a stored message's id, and anyone can send any id: a row is used only if
it belongs to the learner who pressed, so no one ever sees another learner's conversation.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ai.schema import NewWord
from bot.ai.translate import Translator
from bot.cache import Cache, Keys
from bot.db.engine import end_read
from bot.db.models import Message, MessageRole
from bot.domain import LearnerSettings, Profile
from bot.services import days
from bot.services.activity import Activity, record_activity, save_words


class AnswersService:
    def __init__(self, cache: Cache, keys: Keys, translator: Translator) -> None:
        self.cache = cache
        self.keys = keys
        self.translator = translator

    async def translation(
        self, session: AsyncSession, profile: Profile, answer_id: int
    ) -> str | None:
        """Honzík's answer `answer_id` in the learner's language (None: not their answer).

        Raises `UpstreamError` when OpenAI cannot translate it now.
        """
        row = await self._row(session, profile, answer_id, MessageRole.TEACHER)
        if row is None or not row.text:
            return None
        await self._for_learner(profile)
        return await self.translator.translate(row.text, profile.native_language)

    async def corrected(self, session: AsyncSession, profile: Profile, said_id: int) -> str | None:
        """The corrected sentence of the learner's message `said_id`, to be spoken (None: not
        their message, or it had no mistakes)."""
        row = await self._row(session, profile, said_id, MessageRole.LEARNER)
        if row is None or not row.mistakes or not row.corrected_text:
            return None
        await self._for_learner(profile)
        return row.corrected_text

    async def save_suggested(
        self,
        session: AsyncSession,
        profile: Profile,
        settings: LearnerSettings,
        answer_id: int,
        default_zone: ZoneInfo,
    ) -> list[str] | None:
        """Save the words Honzík suggested in the learner's answer `answer_id` (the ➕ button).

        Returns the words saved now, [] when they all were saved already, and None when it is
        not the learner's answer or it suggested nothing.
        """
        row = await session.scalar(
            select(Message).where(
                Message.id == answer_id,
                Message.user_id == profile.id,
                Message.role == MessageRole.TEACHER.value,
            )
        )
        if row is None or not row.new_words:
            return None
        today, _ = days.learner_today(settings, default_zone)
        words = [NewWord.model_validate(word) for word in row.new_words]
        saved = await save_words(session, profile.id, words, today)
        if saved:
            await record_activity(session, profile.id, today, Activity(new_words=len(saved)))
        await session.commit()
        if saved:
            await self.cache.bump(
                [self.keys.words_version(profile.id), self.keys.stats_version(profile.id)]
            )
        return saved

    @staticmethod
    async def _row(
        session: AsyncSession, profile: Profile, row_id: int, role: MessageRole
    ) -> Message | None:
        row = await session.scalar(
            select(Message).where(
                Message.id == row_id, Message.user_id == profile.id, Message.role == role.value
            )
        )
        await end_read(session)  # OpenAI may come next: hold no pooled connection meanwhile
        return row

    async def _for_learner(self, profile: Profile) -> None:
        """Name the learner whose content this update uses: the translation and the voice made
        from their conversation join their content index as they are read or filled, so
        "delete all my data" deletes them too. No round trip of its own."""
        await self.cache.put_many([], content=self.keys.content(profile.telegram_id))
