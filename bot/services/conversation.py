"""One turn of the conversation: recent history, Honzík's answer, and storing it all.

What the learner said is stored even when Honzík cannot answer, so nothing is lost.
Caches that depend on the stored data are refreshed only after the commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ai import UpstreamError
from bot.ai.honzik import Honzik, ReplyListener
from bot.ai.prompt import Turn
from bot.ai.schema import HonzikReply
from bot.cache import Cache, Key, Keys
from bot.db.engine import end_read
from bot.db.models import Message, MessageKind, MessageRole, User
from bot.domain import LearnerSettings, Profile
from bot.services import days
from bot.services.activity import Activity, record_activity, save_words
from bot.services.limits import within_daily_budget

log = logging.getLogger(__name__)

ROLES = {MessageRole.LEARNER.value: "user", MessageRole.TEACHER.value: "assistant"}


class HistoryItem(BaseModel):
    role: str
    text: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Said:
    """What the learner sent in this turn."""

    text: str
    kind: MessageKind = MessageKind.TEXT
    duration: float | None = None
    audio_file_id: str | None = None
    telegram_message_id: int | None = None


@dataclass(slots=True)
class Outcome:
    """Honzík's answer and the stored rows, which the answer's buttons refer to by id."""

    reply: HonzikReply | None
    saved_words: list[str] = field(default_factory=list)  # saved at once (autosave on)
    suggested_words: list[str] = field(default_factory=list)  # the learner's to save with ➕
    said_id: int | None = None
    answer_id: int | None = None


class ConversationService:
    def __init__(
        self,
        cache: Cache,
        keys: Keys,
        honzik: Honzik,
        *,
        window_minutes: int,
        history_limit: int,
        default_zone: ZoneInfo,
        daily_limit: int = 0,
    ) -> None:
        self.daily_limit = daily_limit
        self.cache = cache
        self.keys = keys
        self.honzik = honzik
        self.window = dt.timedelta(minutes=window_minutes)
        self.limit = history_limit
        self.default_zone = default_zone

    async def within_budget(self, profile: Profile, settings: LearnerSettings) -> bool:
        """DAILY_AI_MESSAGES: whether this learner may have one more AI answer today."""
        today, _ = days.learner_today(settings, self.default_zone)
        return await within_daily_budget(self.cache, profile.telegram_id, today, self.daily_limit)

    async def respond(
        self,
        session: AsyncSession,
        profile: Profile,
        settings: LearnerSettings,
        said: Said,
        listener: ReplyListener | None = None,
    ) -> Outcome:
        """Ask Honzík about what the learner said and store the turn either way; `listener`
        follows his reply as it is written (see `Honzik.answer`)."""
        history = await self.history(session, profile)
        await end_read(session)
        try:
            reply: HonzikReply | None = await self.honzik.answer(
                said.text,
                level=profile.level,
                native=profile.native_language,
                settings=settings,
                history=[Turn(ROLES[item.role], item.text) for item in history],
                spoken=said.kind is MessageKind.VOICE,
                listener=listener,
            )
        except UpstreamError as exc:
            log.warning("Honzík could not answer, the learner is asked to try again: %s", exc)
            reply = None
        return await self._store(session, profile, settings, said, reply, history)

    async def store_unheard(
        self, session: AsyncSession, profile: Profile, settings: LearnerSettings, said: Said
    ) -> None:
        """Keep a voice message we could not transcribe (its Telegram file id stays)."""
        await self._store(session, profile, settings, said, None, None)

    def history_names(self, telegram_id: int) -> list[str]:
        """What `history` reads, for callers that read it in the update's first round trip."""
        if self.limit == 0:
            return []
        return self.cache.names([self.keys.history(telegram_id, self.limit, list[HistoryItem])])

    async def history(self, session: AsyncSession, profile: Profile) -> list[HistoryItem]:
        """The recent turns of the current conversation window, oldest first."""
        if self.limit == 0:
            return []

        async def load() -> list[HistoryItem]:
            cutoff = dt.datetime.now(dt.UTC) - self.window
            started = await session.scalar(
                select(User.conversation_started_at).where(User.id == profile.id)
            )
            if started is not None:
                cutoff = max(cutoff, days.utc(started))
            rows = await session.scalars(
                select(Message)
                .where(Message.user_id == profile.id, Message.created_at >= cutoff)
                .where(Message.text != "")
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(self.limit)
            )
            return [
                HistoryItem(role=row.role, text=row.text, at=days.utc(row.created_at))
                for row in reversed(list(rows))
            ]

        items = await self.cache.fetch(self._history_key(profile), load)
        cutoff = dt.datetime.now(dt.UTC) - self.window
        return [item for item in items if item.at >= cutoff]

    async def _store(
        self,
        session: AsyncSession,
        profile: Profile,
        settings: LearnerSettings,
        said: Said,
        reply: HonzikReply | None,
        history: list[HistoryItem] | None,
    ) -> Outcome:
        now = days.now()
        day = days.local_day(now, days.zone_of(settings, self.default_zone))
        learner = Message(
            user_id=profile.id,
            role=MessageRole.LEARNER.value,
            kind=said.kind.value,
            text=said.text,
            duration_seconds=said.duration,
            audio_file_id=said.audio_file_id,
            telegram_message_id=said.telegram_message_id,
            answered=reply is not None,
            scene=settings.scene,
            created_at=now,
        )
        session.add(learner)
        saved: list[str] = []
        suggested: list[str] = []
        teacher: Message | None = None
        if reply is not None:
            learner.corrected_text = reply.corrected_text
            learner.mistakes = [mistake.model_dump() for mistake in reply.mistakes]
            learner.score = reply.score
            teacher = Message(
                user_id=profile.id,
                role=MessageRole.TEACHER.value,
                kind=MessageKind.TEXT.value,
                text=reply.reply,
                scene=settings.scene,
                new_words=[word.model_dump() for word in reply.new_words] or None,
                created_at=now + dt.timedelta(microseconds=1),
            )
            session.add(teacher)
            # Words are the learner's to choose: kept on the answer for its ➕ button, saved
            # at once only when they asked for that (/autosave on).
            if settings.autosave:
                saved = await save_words(session, profile.id, reply.new_words, day)
            else:
                suggested = [word.word.strip() for word in reply.new_words if word.word.strip()]
        await record_activity(
            session,
            profile.id,
            day,
            Activity(
                messages=1,
                voice_messages=1 if said.kind is MessageKind.VOICE else 0,
                words_spoken=len(said.text.split()),
                seconds_spoken=said.duration or 0.0,
                mistakes=len(reply.mistakes) if reply else 0,
                score=reply.score if reply else None,
                new_words=len(saved),
            ),
        )
        await session.commit()
        await self._after_commit(profile, said, reply, history, saved)
        answer_id = teacher.id if teacher is not None else None
        return Outcome(reply, saved, suggested, said_id=learner.id, answer_id=answer_id)

    async def _after_commit(
        self,
        profile: Profile,
        said: Said,
        reply: HonzikReply | None,
        history: list[HistoryItem] | None,
        saved: list[str],
    ) -> None:
        """One pipeline: the history, the version bumps, and the cache entries made from what
        the learner said (transcript, answer) into their content index, for "delete all"."""
        versions = [self.keys.stats_version(profile.id)]
        if saved:
            versions.append(self.keys.words_version(profile.id))
        content = self.keys.content(profile.telegram_id)
        if self.limit == 0 or history is None or not said.text:
            await self.cache.put_many([], bump=versions, content=content)
            return
        now = days.now()
        turns = [*history, HistoryItem(role=MessageRole.LEARNER.value, text=said.text, at=now)]
        if reply is not None:
            turns.append(HistoryItem(role=MessageRole.TEACHER.value, text=reply.reply, at=now))
        await self.cache.put_many(
            [(self._history_key(profile), turns[-self.limit :])], bump=versions, content=content
        )

    def _history_key(self, profile: Profile) -> Key[list[HistoryItem]]:
        return self.keys.history(profile.telegram_id, self.limit, list[HistoryItem])
