"""Role-play scenes (`/scenario`): the character plays the other side of an everyday situation.

A scene is a setting (so it is in Honzík's prompt and cache key) that opens a new
conversation window: what was said in free chat or in another scene never leaks into it.
The opening line is stored as the teacher's message of the scene, so the learner's next
message answers it, and it comes from Honzík's shared cache: one request per scene and level.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from bot.ai import UpstreamError
from bot.db.models import Message, MessageKind, MessageRole
from bot.domain import LearnerSettings, Profile, Scene
from bot.services import days
from bot.services.conversation import ConversationService, HistoryItem
from bot.services.reset import ResetService
from bot.services.users import UserService


class SceneService:
    def __init__(
        self, users: UserService, reset: ResetService, conversation: ConversationService
    ) -> None:
        self.users = users
        self.reset = reset
        self.conversation = conversation

    async def start(
        self, session: AsyncSession, profile: Profile, settings: LearnerSettings, scene: Scene
    ) -> tuple[LearnerSettings, str | None]:
        """Set the scene and its opening line; None for the line when OpenAI can't give it,
        the scene is set all the same (the learner can open it themselves)."""
        in_scene = settings.model_copy(update={"scene": scene})
        try:
            opening = await self.conversation.honzik.open_scene(
                level=profile.level, settings=in_scene
            )
        except UpstreamError:
            opening = None
        profile, settings = await self.users.set_scene(session, profile, scene)
        await self.reset.new_conversation(session, profile)
        if opening is None:
            return settings, None
        await self._store_opening(session, profile, scene, opening.reply)
        return settings, opening.reply

    async def stop(
        self, session: AsyncSession, profile: Profile
    ) -> tuple[Profile, LearnerSettings]:
        """Back to free chat, in a fresh window: Honzík is no longer the doctor or the waiter."""
        fresh = await self.users.set_scene(session, profile, None)
        await self.reset.new_conversation(session, profile)
        return fresh

    async def _store_opening(
        self, session: AsyncSession, profile: Profile, scene: Scene, line: str
    ) -> None:
        """The opening line, in the database and then as the whole cached history."""
        # After `new_conversation` marked the window's start, so the window includes it.
        now = days.now() + dt.timedelta(microseconds=1)
        session.add(
            Message(
                user_id=profile.id,
                role=MessageRole.TEACHER.value,
                kind=MessageKind.TEXT.value,
                text=line,
                scene=scene.value,
                created_at=now,
            )
        )
        await session.commit()
        conversation = self.conversation
        if conversation.limit:
            key = conversation.keys.history(
                profile.telegram_id, conversation.limit, list[HistoryItem]
            )
            item = HistoryItem(role=MessageRole.TEACHER.value, text=line, at=now)
            await conversation.cache.put(key, [item])
