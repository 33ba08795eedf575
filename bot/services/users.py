"""Learners' profiles and settings, cache-first.

Hot path: `context` is one Redis MGET and zero SQL on a hit. Changes are written to the
database, committed, and only then written over the cached values.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiogram.types import User as TelegramUser
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.cache import Cache, Key, Keys
from bot.db.engine import end_read
from bot.db.models import User, UserSettings
from bot.domain import LearnerSettings, Level, NativeLanguage, Option, Profile, Scene

# Telegram's own accounts that post on behalf of others; never learners.
SERVICE_ACCOUNTS = frozenset({777000, 1087968824, 136817688})
LANGUAGE_CODES = frozenset(language.value for language in NativeLanguage)


def is_learner(user: TelegramUser) -> bool:
    return not user.is_bot and user.id not in SERVICE_ACCOUNTS


def to_profile(user: User) -> Profile:
    return Profile(
        id=user.id,
        telegram_id=user.telegram_id,
        username=user.username,
        first_name=user.first_name,
        native_language=NativeLanguage(user.native_language),
        level=Level(user.level),
        onboarded=user.onboarded,
        blocked=user.blocked,
    )


def to_settings(row: UserSettings) -> LearnerSettings:
    return LearnerSettings.model_validate(row, from_attributes=True)


class UserService:
    def __init__(self, cache: Cache, keys: Keys) -> None:
        self.cache = cache
        self.keys = keys

    def context_names(self, telegram_id: int) -> list[str]:
        """The Redis names `context` reads, in order, for a caller's own round trip."""
        return self.cache.names(self._context_keys(telegram_id))

    async def context(
        self,
        session: AsyncSession,
        tg_user: TelegramUser,
    ) -> tuple[Profile, LearnerSettings]:
        """The learner's profile and settings; creates the learner on first contact."""

        async def load() -> tuple[Profile, LearnerSettings]:
            user = await self._get_or_create(session, tg_user)
            await end_read(session)
            return to_profile(user), to_settings(user.settings)

        profile, settings = await self.cache.fetch_many(self._context_keys(tg_user.id), load)
        if (profile.username, profile.first_name) != (tg_user.username, tg_user.first_name):
            profile = await self._rename(session, profile, tg_user)
        if profile.blocked:  # they are back: reminders may go out again
            profile = await self.set_blocked(session, profile, False)
        return profile, settings

    async def set_blocked(self, session: AsyncSession, profile: Profile, blocked: bool) -> Profile:
        """Whether the learner has blocked the bot (a 403, `my_chat_member` kicked)."""
        fresh, _ = await self.update(session, profile, {"blocked": blocked}, on_profile=True)
        return fresh

    async def change(
        self,
        session: AsyncSession,
        profile: Profile,
        option: Option,
        value: str | bool,
    ) -> tuple[Profile, LearnerSettings]:
        """Store one setting, commit, then refresh both cached entries."""
        return await self.update(
            session, profile, {option.field: value}, on_profile=option.on_profile
        )

    async def set_scene(
        self, session: AsyncSession, profile: Profile, scene: Scene | None
    ) -> tuple[Profile, LearnerSettings]:
        """The role-play scene (None: free chat): not an `Option`, as choosing one also opens
        the scene (see `bot.services.scenes`)."""
        changes = {"scene": None if scene is None else scene.value}
        return await self.update(session, profile, changes, on_profile=False)

    async def finish_onboarding(self, session: AsyncSession, profile: Profile) -> Profile:
        new_profile, _ = await self.update(session, profile, {"onboarded": True}, on_profile=True)
        return new_profile

    async def update(
        self,
        session: AsyncSession,
        profile: Profile,
        changes: Mapping[str, object],
        *,
        on_profile: bool,
    ) -> tuple[Profile, LearnerSettings]:
        user = await self._load(session, profile.telegram_id)
        if user is None:
            raise LookupError(f"learner {profile.id} is gone")
        target: User | UserSettings = user if on_profile else user.settings
        for field, value in changes.items():
            setattr(target, field, value)
        await session.commit()
        fresh_profile, fresh_settings = to_profile(user), to_settings(user.settings)
        await self.cache.put_many(
            [
                (self.keys.profile(profile.telegram_id), fresh_profile),
                (self.keys.settings(profile.telegram_id), fresh_settings),
            ]
        )
        return fresh_profile, fresh_settings

    def _context_keys(self, telegram_id: int) -> tuple[Key[Profile], Key[LearnerSettings]]:
        return self.keys.profile(telegram_id), self.keys.settings(telegram_id)

    async def _rename(
        self, session: AsyncSession, profile: Profile, tg_user: TelegramUser
    ) -> Profile:
        changes = {"username": tg_user.username, "first_name": tg_user.first_name}
        fresh, _ = await self.update(session, profile, changes, on_profile=True)
        return fresh

    @staticmethod
    async def _load(session: AsyncSession, telegram_id: int) -> User | None:
        return await session.scalar(
            select(User).options(selectinload(User.settings)).where(User.telegram_id == telegram_id)
        )

    async def _get_or_create(self, session: AsyncSession, tg_user: TelegramUser) -> User:
        user = await self._load(session, tg_user.id)
        if user is not None:
            if user.settings is None:
                user.settings = UserSettings()
                await session.commit()
            return user
        language = (tg_user.language_code or "").split("-")[0].lower()
        user = User(
            telegram_id=tg_user.id,
            username=tg_user.username,
            first_name=tg_user.first_name,
            native_language=language if language in LANGUAGE_CODES else NativeLanguage.EN.value,
            level=Level.BEGINNER.value,
            onboarded=False,
            settings=UserSettings(),
        )
        try:
            async with session.begin_nested():
                session.add(user)
            await session.commit()
        except IntegrityError:
            await session.rollback()
            existing = await self._load(session, tg_user.id)
            if existing is None:
                raise
            return existing
        return user
