"""The buttons under Honzík's answer, through the real dispatcher and the OpenAI stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.methods import AnswerCallbackQuery, SendMessage, SendVoice
from aiogram.types import InputFile
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.cache import Cache
from bot.handlers.keyboards import TranslateCb
from tests.conftest import dispatcher_against
from tests.standins.openai import FakeOpenAI
from tests.support import updates
from tests.support.recording import RecordingSession

ANSWER = "Ahoj! Já se mám dobře."
TRANSLATED = "Hi! I'm doing well."


def script(body: dict[str, Any]) -> Any:
    """Honzík corrects 'Ahoj, jak se mas?'; a plain completion is the translation."""
    if "response_format" not in body:
        return TRANSLATED
    said = body["messages"][-1]["content"]
    mistakes = []
    if "mas" in said:
        mistakes = [
            {
                "original": "mas",
                "corrected": "máš",
                "explanation": "Missing diacritics.",
                "category": "spelling",
            }
        ]
    return {
        "reply": ANSWER,
        "corrected_text": "Ahoj, jak se máš?",
        "mistakes": mistakes,
        "score": 70 if mistakes else 95,
        "tip": None,
        "new_words": [],
    }


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.script_chat(script)
        yield server


@pytest.fixture
async def dispatcher(
    tmp_path: Path, engine: AsyncEngine, cache: Cache, oa: FakeOpenAI
) -> AsyncIterator[Dispatcher]:
    async with dispatcher_against(oa.base_url, tmp_path, engine, cache) as dp:
        yield dp


async def say(dp: Dispatcher, bot: Bot, recorder: RecordingSession, uid: int, text: str) -> Any:
    """The buttons under the answer to `text`, by their kind."""
    await dp.feed_update(bot, updates.message(text, user=updates.learner(uid)))
    last = [m for m in recorder.of(SendMessage) if m.chat_id == uid][-1]
    assert last.reply_markup is not None
    return {
        (b.callback_data or "").split(":")[0]: b.callback_data or ""
        for row in last.reply_markup.inline_keyboard
        for b in row
    }


async def press(dp: Dispatcher, bot: Bot, uid: int, data: str) -> None:
    await dp.feed_update(bot, updates.callback(data, user=updates.learner(uid)))


def chats(oa: FakeOpenAI) -> list[Any]:
    return [call for call in oa.calls("chat") if "response_format" not in call.body]


async def test_translate_shows_the_translation_once_for_everyone(
    dispatcher: Dispatcher, bot: Bot, recorder: RecordingSession, oa: FakeOpenAI
) -> None:
    anna = await say(dispatcher, bot, recorder, 501, "Ahoj, jak se máš?")
    assert set(anna) == {"tr"}, "no mistakes: no 🔊"
    await press(dispatcher, bot, 501, anna["tr"])
    assert [m.text for m in recorder.of(SendMessage) if m.chat_id == 501][-1] == (
        texts.TRANSLATION.format(text=TRANSLATED)
    )
    bob = await say(dispatcher, bot, recorder, 502, "Ahoj, jak se máš?")
    await press(dispatcher, bot, 502, bob["tr"])
    assert [m.text for m in recorder.of(SendMessage) if m.chat_id == 502][-1] == (
        texts.TRANSLATION.format(text=TRANSLATED)
    )
    assert len(chats(oa)) == 1, "the second learner's translation comes from the cache"
    assert "Ukrainian" not in chats(oa)[0].body["messages"][0]["content"]
    assert "English" in chats(oa)[0].body["messages"][0]["content"]


async def test_a_corrected_sentence_is_shown_and_spoken_then_resent_by_file_id(
    dispatcher: Dispatcher, bot: Bot, recorder: RecordingSession, oa: FakeOpenAI
) -> None:
    buttons = await say(dispatcher, bot, recorder, 511, "Ahoj, jak se mas?")
    shown = [m.text for m in recorder.of(SendMessage) if m.chat_id == 511][-1]
    assert texts.CORRECTED.format(text="Ahoj, jak se máš?") in shown
    voices_before = len(recorder.of(SendVoice))
    await press(dispatcher, bot, 511, buttons["hear"])
    await press(dispatcher, bot, 511, buttons["hear"])
    first, second = recorder.of(SendVoice)[voices_before:]
    assert isinstance(first.voice, InputFile), "the first time it is uploaded"
    assert isinstance(second.voice, str), "the second time Telegram's copy is re-sent"
    spoken = [call.body["input"] for call in oa.calls("speech")]
    assert spoken.count("Ahoj, jak se máš?") == 1


async def test_buttons_for_another_learners_answer_no_longer_work(
    dispatcher: Dispatcher, bot: Bot, recorder: RecordingSession, oa: FakeOpenAI
) -> None:
    anna = await say(dispatcher, bot, recorder, 521, "Ahoj, jak se mas?")
    await say(dispatcher, bot, recorder, 522, "Dobrý den")
    for data in (anna["tr"], anna["hear"], TranslateCb(answer_id=10**9).pack()):
        await press(dispatcher, bot, 522, data)
        answer = recorder.of(AnswerCallbackQuery)[-1]
        assert (answer.text, answer.show_alert) == (texts.STALE_BUTTON, True)
    assert chats(oa) == []
