"""Honzík's reply streamed as drafts, through the real dispatcher and the OpenAI stand-in
streaming server-sent events at a set pace."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import SendMessage, SendMessageDraft, SendVoice, TelegramMethod
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.ai.honzik import reply_so_far
from bot.cache import Cache
from bot.db.engine import create_sessionmaker
from bot.db.models import Message as MessageRow
from bot.db.models import MessageRole
from tests.conftest import dispatcher_against
from tests.standins.openai import FakeOpenAI
from tests.support import updates
from tests.support.recording import RecordingSession

REPLY = (
    "Ahoj! To je skvělé, že se učíš česky. Já se mám dobře, dneska je v Praze krásně a "
    "slunce svítí nad Vltavou. Co budeš dělat o víkendu? Půjdeš někam na výlet?"
)


def script(body: dict[str, Any]) -> Any:
    return {
        "reply": REPLY,
        "corrected_text": "Ahoj, jak se máš?",
        "mistakes": [
            {
                "original": "mas",
                "corrected": "máš",
                "explanation": "Missing the long vowel and the háček: máš.",
                "category": "spelling",
            }
        ],
        "score": 70,
        "tip": "Pozor na diakritiku, je v češtině důležitá a mění význam slov.",
        "new_words": [{"word": "výlet", "translation": "trip", "example": "Jedeme na výlet."}],
    }


class TimedSession(RecordingSession):
    """Records when each request was made; refuses drafts while `refuse` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[tuple[TelegramMethod[Any], float]] = []
        self.refuse = False
        self.blocked: set[int] = set()

    async def before(self, method: TelegramMethod[Any]) -> None:
        self.at.append((method, time.monotonic()))
        if self.refuse and isinstance(method, SendMessageDraft):
            raise TelegramBadRequest(method, "Bad Request: method not found")
        if getattr(method, "chat_id", None) in self.blocked:
            raise TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")

    def when(self, kind: type[TelegramMethod[Any]]) -> list[float]:
        return [moment for method, moment in self.at if isinstance(method, kind)]


@pytest.fixture
def recorder() -> TimedSession:
    return TimedSession()


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.script_chat(script)
        server.first_token = 0.1
        server.tokens_per_second = 100.0  # the reply in ~0.4 s, the whole answer in ~1.5 s
        yield server


@pytest.fixture
async def dp(tmp_path: Path, engine: AsyncEngine, cache: Cache, oa: FakeOpenAI) -> Any:
    async with dispatcher_against(oa.base_url, tmp_path, engine, cache) as dispatcher:
        yield dispatcher


async def say(dp: Dispatcher, bot: Bot, uid: int, text: str = "Ahoj, jak se mas?") -> None:
    await dp.feed_update(bot, updates.message(text, user=updates.learner(uid)))


def test_the_reply_is_read_out_of_partial_json() -> None:
    assert reply_so_far('{"reply": "Ahoj, ja') == ("Ahoj, ja", False)
    assert reply_so_far('{"reply": "Ahoj\\u00e') == ("Ahoj", False)  # half an escape
    assert reply_so_far('{"reply": "Ahoj", "corr') == ("Ahoj", True)
    assert reply_so_far('{"rep') == (None, False)
    assert reply_so_far("") == (None, False)


async def test_drafts_grow_before_the_completion_ends_then_the_answer_is_whole(
    dp: Dispatcher, bot: Bot, recorder: TimedSession, oa: FakeOpenAI
) -> None:
    await say(dp, bot, 1)
    drafts = recorder.of(SendMessageDraft)
    (chat,) = oa.calls("chat")
    assert chat.body["stream"] is True
    assert chat.body["response_format"]["json_schema"]["strict"] is True
    assert chat.finished is not None
    assert len(drafts) >= 2 and drafts[0].text == ""  # the "Thinking…" placeholder first
    shown = [draft.text for draft in drafts[1:]]
    assert all(REPLY.startswith(text) for text in shown) and len(set(shown)) == len(shown)
    assert min(recorder.when(SendMessageDraft)[1:]) < chat.finished
    moments = recorder.when(SendMessageDraft)
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert all(gap >= 0.29 for gap in gaps), gaps
    answer = recorder.of(SendMessage)[-1]
    assert REPLY in (answer.text or "") and "máš" in (answer.text or "")
    assert answer.reply_markup is not None  # the buttons, as without streaming
    assert recorder.when(SendMessageDraft)[-1] < recorder.when(SendMessage)[-1]
    # The voice was being made while the model still wrote the corrections.
    (speech,) = oa.calls("speech")
    assert speech.arrived < chat.finished
    assert recorder.when(SendMessage)[-1] < recorder.when(SendVoice)[-1]


async def test_a_cached_answer_comes_at_once_with_no_drafts(
    dp: Dispatcher, bot: Bot, recorder: TimedSession, oa: FakeOpenAI
) -> None:
    await say(dp, bot, 2)
    drafted = len(recorder.of(SendMessageDraft))
    await say(dp, bot, 3)  # the same words from another learner: Honzík's cache
    assert len(oa.calls("chat")) == 1
    assert len(recorder.of(SendMessageDraft)) == drafted
    assert REPLY in (recorder.of(SendMessage)[-1].text or "")


async def test_a_broken_stream_says_try_again_stores_the_message_and_caches_nothing(
    dp: Dispatcher, bot: Bot, recorder: TimedSession, oa: FakeOpenAI, engine: AsyncEngine
) -> None:
    oa.cut_next_stream(after_characters=60)
    await say(dp, bot, 4)
    assert recorder.of(SendMessage)[-1].text == texts.TRY_AGAIN
    assert not recorder.of(SendVoice)
    async with create_sessionmaker(engine)() as session:
        stored = list(await session.scalars(select(MessageRow)))
    assert [(m.role, m.text, m.answered) for m in stored] == [
        (MessageRole.LEARNER.value, "Ahoj, jak se mas?", False)
    ]
    await say(dp, bot, 4)  # nothing was cached: asked again, and answered
    assert len(oa.calls("chat")) == 2
    assert REPLY in (recorder.of(SendMessage)[-1].text or "")


async def test_refused_drafts_fall_back_to_the_plain_answer_and_stay_off(
    dp: Dispatcher, bot: Bot, recorder: TimedSession, oa: FakeOpenAI
) -> None:
    recorder.refuse = True
    await say(dp, bot, 5)
    assert len(recorder.when(SendMessageDraft)) == 1  # refused once, then no more
    assert REPLY in (recorder.of(SendMessage)[-1].text or "")
    await say(dp, bot, 6, "Dobrý den, jak se máte?")
    assert len(recorder.when(SendMessageDraft)) == 1
    assert not oa.calls("chat")[-1].body.get("stream")  # answered as before drafts existed
    assert REPLY in (recorder.of(SendMessage)[-1].text or "")


async def test_a_learner_who_blocked_the_bot_costs_nobody_else_their_drafts(
    dp: Dispatcher, bot: Bot, recorder: TimedSession
) -> None:
    recorder.blocked.add(7)
    await say(dp, bot, 7)
    assert len(recorder.when(SendMessageDraft)) == 1  # refused for that chat: no more tried
    await say(dp, bot, 8, "Dobrý den, jak se máte?")
    assert [d.chat_id for d in recorder.of(SendMessageDraft)].count(8) >= 2


async def test_a_stream_lost_before_any_answer_is_asked_again_unstreamed(
    dp: Dispatcher, bot: Bot, recorder: TimedSession, oa: FakeOpenAI
) -> None:
    oa.cut_next_stream(after_characters=0)
    await say(dp, bot, 9)
    first, again = oa.calls("chat")
    assert first.body["stream"] is True and not again.body.get("stream")
    assert REPLY in (recorder.of(SendMessage)[-1].text or "")
