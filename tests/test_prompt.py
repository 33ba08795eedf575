"""Honzík's requests, as the OpenAI stand-in receives them: the language of explanations,
spoken or typed, the scene, and the scene's shared opening line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from fakeredis import FakeAsyncRedis
from openai import AsyncOpenAI
from sqlalchemy import select

from bot.ai.honzik import Honzik
from bot.ai.schema import HonzikReply, MistakeCategory, SceneOpening
from bot.app import Resources
from bot.cache import Cache, CacheTTLs, Keys, keys_for
from bot.db.models import Message, MessageKind, MessageRole
from bot.domain import LearnerSettings, Level, NativeLanguage, Scene
from bot.metrics import Metrics
from bot.services.conversation import Said
from tests.standins.openai import FakeOpenAI
from tests.support.recording import RecordingSession
from tests.support.world import World

BEGINNER, ADVANCED = Level.BEGINNER, Level.ADVANCED
UK = NativeLanguage.UK


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def honzik(oa: FakeOpenAI, cache: Cache) -> AsyncIterator[Honzik]:
    client = AsyncOpenAI(api_key="test-key", base_url=oa.base_url, max_retries=0)
    metrics = Metrics(cache.counters, lambda: 0)
    yield Honzik(client, cache, Keys(CacheTTLs()), metrics, "gpt-4o-mini", 0.3)
    await client.close()


def system(call_body: dict[str, Any]) -> str:
    return str(call_body["messages"][0]["content"])


async def ask(
    honzik: Honzik,
    text: str = "Ahoj, jak se mas?",
    *,
    level: Level = BEGINNER,
    settings: LearnerSettings | None = None,
    spoken: bool = True,
) -> HonzikReply:
    return await honzik.answer(
        text,
        level=level,
        native=UK,
        settings=settings or LearnerSettings(),
        history=[],
        spoken=spoken,
    )


async def test_explanations_in_ukrainian_for_a_beginner_and_czech_for_an_advanced_learner(
    honzik: Honzik, oa: FakeOpenAI
) -> None:
    await ask(honzik, level=BEGINNER)
    await ask(honzik, level=ADVANCED)

    beginner, advanced = (system(call.body) for call in oa.calls("chat"))
    explain = "Write the explanations of mistakes and the tip in"
    assert f"{explain} Ukrainian." in beginner
    assert f"{explain} simple Czech." in advanced
    for prompt in (beginner, advanced):
        assert "Your answer is always in Czech." in prompt
    # Each level has its own rubric for the score.
    assert beginner.replace("A1–A2", "") != advanced.replace("B2–C1", "")


async def test_spoken_and_typed_messages_are_judged_differently(
    honzik: Honzik, oa: FakeOpenAI
) -> None:
    await ask(honzik, spoken=True)
    await ask(honzik, spoken=False)

    spoken, typed = (system(call.body) for call in oa.calls("chat"))
    assert "spoken and transcribed" in spoken and "never count them" in spoken
    assert "typed" in typed and "diacritics" in typed and "transcribed" not in typed
    assert len(oa.calls("chat")) == 2  # not one cached answer for both


async def test_the_conversation_says_whether_it_was_spoken_and_stores_the_categories(
    honzik: Honzik,
    oa: FakeOpenAI,
    dp: Dispatcher,
    bot: Bot,
    resources: Resources,
    recorder: RecordingSession,
    fake_redis: FakeAsyncRedis,
) -> None:
    world = World(dp, bot, resources, recorder, fake_redis, keys_for(resources.config))
    learner = await world.join(4101)
    conversation = world.conversation(honzik)  # type: ignore[arg-type]
    async with resources.sessionmaker() as session:
        for kind in (MessageKind.VOICE, MessageKind.TEXT):
            said = Said(text="Ahoj, jak se mas?", kind=kind)
            await conversation.respond(session, learner.profile, learner.settings, said)
        rows = await session.scalars(
            select(Message).where(Message.role == MessageRole.LEARNER.value).order_by(Message.id)
        )
        stored = [row.mistakes for row in rows]

    spoken, typed = (system(call.body) for call in oa.calls("chat"))
    assert "spoken and transcribed" in spoken and "was typed" in typed
    # The stand-in answers with the schema's first category; it is kept for the weekly summary.
    assert stored and all(m and m[0]["category"] == MistakeCategory.CASE for m in stored)


async def test_the_same_text_in_and_out_of_a_scene_makes_two_requests(
    honzik: Honzik, oa: FakeOpenAI
) -> None:
    await ask(honzik, settings=LearnerSettings())
    await ask(honzik, settings=LearnerSettings(scene=Scene.PUB))

    free, pub = oa.calls("chat")
    assert free.body["messages"][-1] == pub.body["messages"][-1]
    assert "role-play" not in system(free.body)
    assert "you play a barman in a Czech pub" in system(pub.body)


async def test_the_schema_sent_has_a_category_per_mistake_and_reply_first(
    honzik: Honzik, oa: FakeOpenAI
) -> None:
    reply = await ask(honzik)

    (call,) = oa.calls("chat")
    assert call.ok  # the stand-in checked the strict schema
    schema = call.body["response_format"]["json_schema"]["schema"]
    assert next(iter(schema["properties"])) == "reply"
    mistake = schema["$defs"]["Mistake"]
    assert "category" in mistake["required"]
    assert mistake["properties"]["category"]["enum"] == [c.value for c in MistakeCategory]
    assert reply.mistakes and reply.mistakes[0].category in MistakeCategory


async def test_a_scenes_opening_line_is_generated_once_for_two_learners(
    honzik: Honzik, oa: FakeOpenAI
) -> None:
    oa.script_chat(lambda body: {"reply": "Dobrý den, co si dáte?"})
    first_learner = LearnerSettings(scene=Scene.PUB, timezone="Europe/Prague")
    second_learner = LearnerSettings(scene=Scene.PUB, voice_replies=False)

    first = await honzik.open_scene(level=BEGINNER, settings=first_learner)
    second = await honzik.open_scene(level=BEGINNER, settings=second_learner)

    assert first == second == SceneOpening(reply="Dobrý den, co si dáte?")
    (call,) = oa.calls("chat")  # the second learner was served from the cache
    assert "barman" in system(call.body) and "Open the scene" in system(call.body)
    assert call.body["response_format"]["json_schema"]["name"] == "SceneOpening"
    await honzik.open_scene(level=ADVANCED, settings=first_learner)
    assert len(oa.calls("chat")) == 2  # another level, another line


async def test_opening_a_scene_needs_one(honzik: Honzik) -> None:
    with pytest.raises(ValueError, match="scene"):
        await honzik.open_scene(level=BEGINNER, settings=LearnerSettings())
