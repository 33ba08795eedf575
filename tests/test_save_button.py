"""Honzík's suggested words are the learner's to save: the ➕ button, or /autosave on.

Through the real dispatcher and the OpenAI stand-in, as in tests/test_answer_buttons.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.methods import AnswerCallbackQuery, EditMessageReplyMarkup, SendMessage
from aiogram.types import InlineKeyboardMarkup, Update
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.cache import Cache
from bot.db.engine import create_sessionmaker
from bot.db.models import DailyStats, SavedWord, User
from bot.handlers.keyboards import SaveWordsCb
from tests.conftest import dispatcher_against
from tests.standins.openai import FakeOpenAI
from tests.support import updates
from tests.support.recording import RecordingSession

ANSWER = "Na zdraví! Dáš si ještě jedno?"
WORDS = [
    {"word": "pivo", "translation": "beer", "example": "Dám si pivo."},
    {"word": "tramvaj", "translation": "tram", "example": "Jedu tramvají."},
]


def script(body: dict[str, Any]) -> Any:
    """Honzík suggests two words when beer comes up, none otherwise."""
    said = body["messages"][-1]["content"]
    return {
        "reply": ANSWER,
        "corrected_text": said,
        "mistakes": [],
        "score": 90,
        "tip": None,
        "new_words": WORDS if "pivo" in said else [],
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


async def send(dp: Dispatcher, bot: Bot, uid: int, text: str) -> None:
    await dp.feed_update(bot, updates.message(text, user=updates.learner(uid)))


def last_to(recorder: RecordingSession, uid: int) -> SendMessage:
    return [m for m in recorder.of(SendMessage) if m.chat_id == uid][-1]  # type: ignore[no-any-return]


def prefixes(markup: Any) -> list[str]:
    assert isinstance(markup, InlineKeyboardMarkup)
    return [(b.callback_data or "").split(":")[0] for row in markup.inline_keyboard for b in row]


def save_button(markup: Any) -> str:
    (data,) = [
        b.callback_data
        for row in markup.inline_keyboard
        for b in row
        if (b.callback_data or "").startswith("addw:")
    ]
    return str(data)


def press(uid: int, data: str, markup: Any) -> Update:
    """A press of `data` on a message that shows `markup`, as Telegram sends it."""
    update = updates.callback(data, user=updates.learner(uid))
    assert update.callback_query is not None and update.callback_query.message is not None
    message = update.callback_query.message.model_copy(update={"reply_markup": markup})
    query = update.callback_query.model_copy(update={"message": message})
    return update.model_copy(update={"callback_query": query})


async def saved_words(engine: AsyncEngine, uid: int) -> list[str]:
    async with create_sessionmaker(engine)() as session:
        rows = await session.scalars(
            select(SavedWord.word)
            .join(User, User.id == SavedWord.user_id)
            .where(User.telegram_id == uid)
            .order_by(SavedWord.id)
        )
        return list(rows)


async def new_words_today(engine: AsyncEngine, uid: int) -> int:
    async with create_sessionmaker(engine)() as session:
        total = await session.scalar(
            select(DailyStats.new_words)
            .join(User, User.id == DailyStats.user_id)
            .where(User.telegram_id == uid)
        )
        return total or 0


async def test_suggested_words_wait_for_the_button_then_are_saved_once(
    dispatcher: Dispatcher, bot: Bot, recorder: RecordingSession, engine: AsyncEngine
) -> None:
    await send(dispatcher, bot, 601, "/words")  # the cached word list, empty
    await send(dispatcher, bot, 601, "Dám si pivo.")
    answer = last_to(recorder, 601)
    assert texts.SUGGESTED_WORDS.format(words="pivo, tramvaj") in str(answer.text).splitlines()
    assert texts.SAVED_WORDS.format(words="pivo, tramvaj") not in str(answer.text)
    assert prefixes(answer.reply_markup) == ["tr", "addw"]
    assert await saved_words(engine, 601) == [], "nothing is saved before the press"

    await dispatcher.feed_update(
        bot, press(601, save_button(answer.reply_markup), answer.reply_markup)
    )

    toast = recorder.of(AnswerCallbackQuery)[-1]
    assert toast.text == texts.WORDS_SAVED.format(words="pivo, tramvaj")
    assert await saved_words(engine, 601) == ["pivo", "tramvaj"]
    assert await new_words_today(engine, 601) == 2
    (edit,) = recorder.of(EditMessageReplyMarkup)
    assert prefixes(edit.reply_markup) == ["tr"], "➕ is gone, 🌐 stays"
    await send(dispatcher, bot, 601, "/words")
    assert "pivo" in str(last_to(recorder, 601).text), "the cached list knows the new words"

    # A second press (an old copy of the message) saves nothing more.
    await dispatcher.feed_update(bot, press(601, save_button(answer.reply_markup), None))
    assert recorder.of(AnswerCallbackQuery)[-1].text == texts.WORDS_ALREADY_SAVED
    assert await new_words_today(engine, 601) == 2


async def test_no_suggestions_no_save_button(
    dispatcher: Dispatcher, bot: Bot, recorder: RecordingSession
) -> None:
    await send(dispatcher, bot, 602, "Dobrý den")
    answer = last_to(recorder, 602)
    assert prefixes(answer.reply_markup) == ["tr"]
    assert "📚" not in str(answer.text)


async def test_autosave_on_saves_the_words_at_once_without_a_button(
    dispatcher: Dispatcher, bot: Bot, recorder: RecordingSession, engine: AsyncEngine
) -> None:
    await send(dispatcher, bot, 603, "/autosave on")
    assert last_to(recorder, 603).text == texts.SETTING_SAVED.format(
        label=texts.OPTION_LABELS["autosave"], value=texts.value_label("autosave", "on")
    )
    await send(dispatcher, bot, 603, "Dám si pivo.")
    answer = last_to(recorder, 603)
    assert texts.SAVED_WORDS.format(words="pivo, tramvaj") in str(answer.text).splitlines()
    assert prefixes(answer.reply_markup) == ["tr"]
    assert await saved_words(engine, 603) == ["pivo", "tramvaj"]

    await send(dispatcher, bot, 603, "/autosave off")
    await send(dispatcher, bot, 603, "Ještě jedno pivo.")
    assert prefixes(last_to(recorder, 603).reply_markup) == ["tr", "addw"]


async def test_another_learners_save_button_is_refused(
    dispatcher: Dispatcher, bot: Bot, recorder: RecordingSession, engine: AsyncEngine
) -> None:
    await send(dispatcher, bot, 604, "Dám si pivo.")
    anna = last_to(recorder, 604).reply_markup
    await send(dispatcher, bot, 605, "Dobrý den")
    for data in (save_button(anna), SaveWordsCb(answer_id=10**9).pack()):
        await dispatcher.feed_update(bot, press(605, data, anna))
        answer = recorder.of(AnswerCallbackQuery)[-1]
        assert (answer.text, answer.show_alert) == (texts.STALE_BUTTON, True)
    assert await saved_words(engine, 604) == []
    assert await saved_words(engine, 605) == []
    assert recorder.of(EditMessageReplyMarkup) == []
