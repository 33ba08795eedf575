"""A dispatcher-level test world: the real dispatcher plus shortcuts to the services.

Conversation turns run through `ConversationService` with a stub Honzík, so tests about what
happens after an answer (stats, words, history) need no OpenAI stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import SendMessage
from aiogram.types import Update
from aiogram.types import User as TgUser
from fakeredis import FakeAsyncRedis

from bot.ai.schema import HonzikReply, Mistake, MistakeCategory, NewWord
from bot.app import Resources
from bot.cache import Cache, Keys
from bot.domain import LearnerSettings, Profile
from bot.services.conversation import ConversationService, Outcome, Said
from bot.services.users import UserService
from tests.support import updates
from tests.support.recording import RecordingSession


class StubHonzik:
    """Stands in for `Honzik`: `ConversationService` only calls `answer()`."""

    def __init__(self, reply: HonzikReply) -> None:
        self.reply = reply
        self.histories: list[list[Any]] = []

    async def answer(self, text: str, **kwargs: Any) -> HonzikReply:
        self.histories.append(list(kwargs["history"]))
        return self.reply


def honzik_reply(
    *,
    score: int = 80,
    mistakes: int = 0,
    words: tuple[tuple[str, str, str], ...] = (),
    reply: str = "Super, rozumím!",
) -> HonzikReply:
    return HonzikReply(
        reply=reply,
        corrected_text="",
        mistakes=[
            Mistake(original="x", corrected="y", explanation="z", category=MistakeCategory.CASE)
        ]
        * mistakes,
        score=score,
        tip=None,
        new_words=[NewWord(word=w, translation=t, example=e) for w, t, e in words],
    )


@dataclass
class Learner:
    tg: TgUser
    profile: Profile
    settings: LearnerSettings

    @property
    def id(self) -> int:
        return self.profile.id


@dataclass
class World:
    dp: Dispatcher
    bot: Bot
    resources: Resources
    recorder: RecordingSession
    redis: FakeAsyncRedis
    keys: Keys
    honzik: StubHonzik = field(default_factory=lambda: StubHonzik(honzik_reply()))

    @property
    def cache(self) -> Cache:
        return self.resources.cache

    async def feed(self, update: Update) -> Any:
        return await self.dp.feed_update(self.bot, update)

    async def join(self, tid: int, timezone: str | None = None) -> Learner:
        users: UserService = self.dp.workflow_data["users"]
        tg = updates.learner(tid)
        async with self.resources.sessionmaker() as session:
            profile, settings = await users.context(session, tg)
            if timezone is not None:
                profile, settings = await users.update(
                    session, profile, {"timezone": timezone}, on_profile=False
                )
        return Learner(tg, profile, settings)

    def conversation(self, honzik: StubHonzik | None = None) -> ConversationService:
        config = self.resources.config
        return ConversationService(
            self.cache,
            self.keys,
            honzik or self.honzik,  # type: ignore[arg-type]
            window_minutes=config.conversation_window_minutes,
            history_limit=config.history_messages,
            default_zone=config.zone,
        )

    async def say(
        self, learner: Learner, text: str = "Ahoj, jak se máš?", reply: HonzikReply | None = None
    ) -> Outcome:
        honzik = StubHonzik(reply) if reply is not None else self.honzik
        async with self.resources.sessionmaker() as session:
            return await self.conversation(honzik).respond(
                session, learner.profile, learner.settings, Said(text=text)
            )

    async def command(self, learner: Learner, text: str) -> SendMessage:
        await self.feed(updates.message(text, user=learner.tg))
        return self.recorder.of(SendMessage)[-1]  # type: ignore[no-any-return]

    async def press(self, learner: Learner, data: str) -> None:
        await self.feed(updates.callback(data, user=learner.tg))
