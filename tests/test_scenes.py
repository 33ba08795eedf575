"""Role-play scenes through the real dispatcher, against the in-process OpenAI stand-in.

Honzík's answers are scripted (they echo the learner); the opening line of a scene is what
the stand-in generates from the schema the bot sends, read back from the recorded response.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage, SendVoice
from aiogram.types import InlineKeyboardMarkup
from fakeredis import FakeAsyncRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.ai.schema import HonzikReply
from bot.cache import Cache
from bot.db.engine import create_sessionmaker
from bot.db.models import Message as MessageRow
from bot.db.models import User, UserSettings
from bot.domain import Scene
from bot.handlers.keyboards import ScenarioCb
from tests.conftest import dispatcher_against
from tests.standins.openai import FakeOpenAI, OpenAICall
from tests.support import updates
from tests.support.recording import RecordingSession


def scripted(body: dict[str, Any]) -> dict[str, Any] | None:
    """Honzík's answers echo the learner; anything else (the opening line) is generated."""
    if body["response_format"]["json_schema"]["name"] != HonzikReply.__name__:
        return None
    said = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    return {
        "reply": f"Rozumím: {said}",
        "corrected_text": said,
        "mistakes": [],
        "score": 90,
        "tip": None,
        "new_words": [],
    }


def answered(call: OpenAICall) -> str:
    """The reply the stand-in gave in one chat completion."""
    content = call.response["choices"][0]["message"]["content"]
    return str(json.loads(content)["reply"])


@dataclass
class Play:
    oa: FakeOpenAI
    dp: Dispatcher
    bot: Bot
    recorder: RecordingSession
    engine: AsyncEngine

    async def text(self, uid: int, text: str, **user: Any) -> None:
        await self.dp.feed_update(
            self.bot, updates.message(text, user=updates.learner(uid, **user))
        )

    async def press(self, uid: int, data: str) -> None:
        await self.dp.feed_update(self.bot, updates.callback(data, user=updates.learner(uid)))

    def sent(self, uid: int) -> list[str]:
        return [m.text for m in self.recorder.of(SendMessage) if m.chat_id == uid]

    def chats(self) -> list[OpenAICall]:
        return self.oa.calls("chat")

    async def scene_of(self, uid: int) -> str | None:
        async with create_sessionmaker(self.engine)() as session:
            return await session.scalar(
                select(UserSettings.scene).join(User).where(User.telegram_id == uid)
            )

    async def rows(self, uid: int) -> list[MessageRow]:
        async with create_sessionmaker(self.engine)() as session:
            rows = await session.scalars(
                select(MessageRow)
                .join(User, User.id == MessageRow.user_id)
                .where(User.telegram_id == uid)
                .order_by(MessageRow.created_at, MessageRow.id)
            )
            return list(rows)


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.script_chat(scripted)
        yield server


@pytest.fixture
async def play(
    tmp_path: Path,
    engine: AsyncEngine,
    cache: Cache,
    fake_redis: FakeAsyncRedis,
    bot: Bot,
    recorder: RecordingSession,
    oa: FakeOpenAI,
) -> AsyncIterator[Play]:
    async with dispatcher_against(oa.base_url, tmp_path, engine, cache) as dp:
        yield Play(oa, dp, bot, recorder, engine)


def buttons(markup: InlineKeyboardMarkup | None) -> dict[str, str]:
    assert markup is not None
    return {b.callback_data or "": b.text for row in markup.inline_keyboard for b in row}


async def test_scenario_offers_eight_scenes_and_free_chat_marking_the_current(play: Play) -> None:
    await play.text(1, "/scenario")
    menu = play.recorder.of(SendMessage)[-1]
    assert menu.text == texts.SCENARIO_MENU
    offered = buttons(menu.reply_markup)
    assert set(offered) == {ScenarioCb(scene=s).pack() for s in Scene} | {"scn:off"}
    assert offered["scn:off"].startswith("✅")
    assert not any(label.startswith("✅") for data, label in offered.items() if data != "scn:off")

    await play.text(1, "/scenario pub")
    await play.text(1, "/scenario")
    offered = buttons(play.recorder.of(SendMessage)[-1].reply_markup)
    assert offered["scn:pub"] == "✅ " + texts.SCENE_LABELS["pub"]
    assert not offered["scn:off"].startswith("✅")


async def test_pressing_a_scene_opens_it_with_a_first_line_and_its_voice(play: Play) -> None:
    await play.press(2, ScenarioCb(scene=Scene.DOCTOR).pack())

    edited = play.recorder.of(EditMessageText)[-1]
    assert edited.text == texts.SCENE_STARTED.format(scene=texts.SCENE_LABELS["doctor"])
    [opening_call] = play.chats()
    line = answered(opening_call)
    assert play.sent(2) == [line]
    assert [v.chat_id for v in play.recorder.of(SendVoice)] == [2]
    assert len(play.oa.calls("speech")) == 1
    assert await play.scene_of(2) == "doctor"
    [opening] = await play.rows(2)
    assert (opening.role, opening.text, opening.scene) == ("teacher", line, "doctor")


async def test_the_learner_answers_the_opening_line_in_the_scene(play: Play) -> None:
    await play.text(3, "/scenario shop")
    line = answered(play.chats()[-1])
    await play.text(3, "Dobrý den, chci chleba.")

    request = play.chats()[-1].body["messages"]
    assert {"role": "assistant", "content": line} in request
    learner = [row for row in await play.rows(3) if row.role == "learner"]
    assert [(row.text, row.scene) for row in learner] == [("Dobrý den, chci chleba.", "shop")]


async def test_the_same_words_in_and_out_of_a_scene_are_two_requests(play: Play) -> None:
    await play.text(4, "Dobrý den!")
    await play.text(4, "/scenario station")
    await play.text(4, "Dobrý den!")
    free, _, in_scene = play.chats()
    assert in_scene.body["messages"][0] != free.body["messages"][0]  # the scene is in the prompt
    assert answered(in_scene) == answered(free)  # the script echoes: only the request differs

    await play.text(4, "/scenario off")
    await play.text(4, "Dobrý den!")  # free chat again, in a new window: the first request
    assert len(play.chats()) == 3
    assert play.sent(4)[-1] == play.sent(4)[0]


async def test_one_opening_line_per_scene_and_level_for_all_learners(play: Play) -> None:
    await play.press(5, "scn:pub")
    await play.press(6, "scn:pub")

    [call] = play.chats()
    assert play.sent(5) == play.sent(6) == [answered(call)]


async def test_without_openai_the_scene_is_set_and_the_learner_starts(play: Play) -> None:
    play.oa.fail_always("chat", status=500)
    await play.text(7, "/scenario hairdresser")

    assert play.sent(7) == [
        texts.SCENE_STARTED.format(scene=texts.SCENE_LABELS["hairdresser"]),
        texts.SCENE_NO_OPENING,
    ]
    assert await play.scene_of(7) == "hairdresser"
    assert await play.rows(7) == []


async def test_scenario_off_returns_to_free_chat(play: Play) -> None:
    await play.text(8, "/scenario flat")
    await play.press(8, "scn:off")
    assert play.recorder.of(EditMessageText)[-1].text == texts.SCENE_ENDED
    assert await play.scene_of(8) is None

    await play.text(8, "/scenario job_interview")
    await play.text(8, "/scenario off")
    assert play.sent(8)[-1] == texts.SCENE_ENDED
    assert await play.scene_of(8) is None
    await play.text(8, "Ahoj!")
    answer = play.chats()[-1].body["messages"]
    assert [m["role"] for m in answer] == ["system", "user"]  # no opening line in history


async def test_an_unknown_scene_is_refused(play: Play) -> None:
    await play.text(9, "/scenario moon")
    assert play.sent(9)[-1].startswith(texts.SETTING_BAD_VALUE.split("{")[0])
    await play.press(9, "scn:moon")
    assert play.recorder.of(AnswerCallbackQuery)[-1].text == texts.STALE_BUTTON
    assert await play.scene_of(9) is None
    assert play.chats() == []


async def test_stats_count_the_scenes_spoken_in(play: Play) -> None:
    await play.text(10, "/scenario pub")
    await play.text(10, "Jedno pivo, prosím.")
    await play.text(10, "/scenario doctor")
    await play.text(10, "Bolí mě hlava.")
    await play.text(10, "/scenario shop")  # opened, never answered: not practised
    await play.text(10, "/scenario off")
    await play.text(10, "Ahoj!")

    await play.text(10, "/stats")
    report = next(text for text in reversed(play.sent(10)) if text.startswith(texts.STATS_TITLE))
    assert texts.STATS_SCENES.format(count=2, total=8) in report
