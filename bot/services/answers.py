"""What the buttons under Honzík's answer give: its translation, the corrected sentence.

Buttons carry only a stored message's id, and anyone can send any id: a row is used only if
it belongs to the learner who pressed, so no one ever sees another learner's conversation.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ai.translate import Translator
from bot.cache import Cache, Keys
from bot.db.engine import end_read
from bot.db.models import Message, MessageRole
from bot.domain import Profile


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
