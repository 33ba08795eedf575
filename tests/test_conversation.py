"""Talking with Honzík through the real dispatcher, against the in-process OpenAI stand-in.

Every test feeds updates to the dispatcher from the composition root, whose OpenAI client
points at `FakeOpenAI` on loopback, and reads back the Bot API calls, the OpenAI calls,
the database rows and the Redis keys.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.methods import GetFile, Response, SendMessage, SendVoice, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, InputFile, Message, Update, Voice
from aiohttp import ClientConnectionError
from fakeredis import FakeAsyncRedis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.ai.schema import MAX_MISTAKES, HonzikReply
from bot.app import Resources, build_dispatcher
from bot.cache import Cache
from bot.db.engine import create_sessionmaker
from bot.db.models import DailyStats, SavedWord, User
from bot.db.models import Message as MessageRow
from bot.handlers.conversation import MAX_TEXT, TELEGRAM_DOWNLOAD_LIMIT
from bot.middlewares.telegram_retry import RetryAfterMiddleware
from tests.conftest import TEST_TOKEN, make_config, make_resources
from tests.standins.openai import AUDIO_DIR, FakeOpenAI
from tests.support import updates
from tests.support.recording import RecordingSession

AHOJ = (AUDIO_DIR / "ahoj_jak_se_mas.ogg").read_bytes()
AHOJ_TEXT = "Ahoj, jak se máš?"
DOBRY_DEN = (AUDIO_DIR / "dobry_den.ogg").read_bytes()
DOBRY_DEN_TEXT = "Dobrý den, jmenuji se Anna."
SILENCE = (AUDIO_DIR / "silence.ogg").read_bytes()
CORRUPT = (AUDIO_DIR / "corrupt.ogg").read_bytes()
TTS_AUDIO = (AUDIO_DIR / "tts_reply.ogg").read_bytes()
OPENAI_TTL = 86400
DEADLINE = 20.0
TELEGRAM_TEXT = 4096  # Telegram's limit on one message text
SPEECH_INPUT = 4096  # OpenAI's limit on the text of one speech request

_file_ids = itertools.count(1)
_update_ids = itertools.count(9_000_000)


# ------------------------------------------------------------------ Honzík's scripted answers


def honzik_answer(
    reply: str,
    *,
    score: int = 80,
    mistakes: Iterable[tuple[str, str, str]] = (),
    words: Iterable[str] = (),
    tip: str | None = None,
    corrected: str = "",
) -> dict[str, Any]:
    """A completion body in the exact shape of `HonzikReply`."""
    return {
        "reply": reply,
        "corrected_text": corrected,
        "mistakes": [
            {"original": o, "corrected": c, "explanation": e, "category": "other"}
            for o, c, e in mistakes
        ],
        "score": score,
        "tip": tip,
        "new_words": [
            {"word": w, "translation": f"{w} (en)", "example": f"Mám rád {w}."} for w in words
        ],
    }


def last_user_text(body: dict[str, Any]) -> str:
    return str(next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user"))


def reply_for(text: str) -> str:
    """Honzík's scripted reply depends only on the learner's last words."""
    return f"Super! Slyšel jsem: {text}"


def default_script(body: dict[str, Any]) -> dict[str, Any]:
    text = last_user_text(body)
    return honzik_answer(
        reply_for(text),
        score=80,
        mistakes=[("jak se mas", "jak se máš", "chybí háček")],
        corrected=f"OPRAVENO: {text}",
    )


# ------------------------------------------------------------------ the recording Bot session


class Recorder(RecordingSession):
    """RecordingSession that also keeps its answers and can misbehave like Telegram.

    - `answers`: (method, result) for every successful request;
    - `download_gate`: a barrier every file download waits at (to line learners up);
    - texts Telegram refuses (empty, or over 4096 characters) get its 400;
    - `rejected_file_ids`: SendVoice with one of these file ids gets a 400;
    - `flood`: how many more times each method type gets a 429 (retry_after=0);
    - `broken_downloads`: downloading a file from one of these URLs' ids drops the connection.
    """

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[TelegramMethod[Any], Any]] = []
        self.download_gate: asyncio.Barrier | None = None
        self.rejected_file_ids: set[str] = set()
        self.flood: dict[type[TelegramMethod[Any]], int] = {}
        self.broken_downloads: set[str] = set()

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 (the signature of BaseSession)
    ) -> TelegramType:
        self.requests.append(method)
        if self.flood.get(type(method), 0) > 0:
            self.flood[type(method)] -= 1
            raise TelegramRetryAfter(method, "Flood control exceeded", retry_after=0)
        if isinstance(method, SendMessage) and not method.text.strip():
            raise TelegramBadRequest(method, "Bad Request: message text is empty")
        if isinstance(method, SendMessage) and len(method.text) > TELEGRAM_TEXT:
            raise TelegramBadRequest(method, "Bad Request: message is too long")
        if isinstance(method, SendVoice) and method.voice in self.rejected_file_ids:
            raise TelegramBadRequest(method, "Bad Request: wrong file identifier specified")
        result = self._answer(method)
        self.answers.append((method, result))
        return result  # type: ignore[no-any-return]

    async def stream_content(self, url: str, *args: Any, **kwargs: Any) -> Any:
        if self.download_gate is not None:
            async with asyncio.timeout(DEADLINE):
                await self.download_gate.wait()
        if url.rsplit("/", 1)[-1] in self.broken_downloads:
            raise ClientConnectionError("connection reset while downloading")
        async for chunk in super().stream_content(url, *args, **kwargs):
            yield chunk

    def uploaded_voice_ids(self) -> list[str]:
        """Telegram's file ids for the voices the bot uploaded (not re-sent by id)."""
        return [
            result.voice.file_id
            for method, result in self.answers
            if isinstance(method, SendVoice) and isinstance(method.voice, InputFile)
        ]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


# ------------------------------------------------------------------ the dispatcher under test


@dataclass
class Talk:
    oa: FakeOpenAI
    dp: Dispatcher
    bot: Bot
    recorder: Recorder
    resources: Resources
    engine: AsyncEngine
    redis: FakeAsyncRedis

    async def feed(self, update: Update) -> Any:
        return await self.dp.feed_update(self.bot, update)

    async def text(self, uid: int, text: str, **user: Any) -> Any:
        return await self.feed(updates.message(text, user=updates.learner(uid, **user)))

    def voice_update(
        self,
        uid: int,
        audio: bytes,
        *,
        duration: int = 2,
        file_size: int | None = None,
        **user: Any,
    ) -> tuple[Update, str]:
        file_id = f"learner-voice-{next(_file_ids)}"
        self.recorder.files[file_id] = audio
        voice = Voice(
            file_id=file_id,
            file_unique_id=f"u-{file_id}",
            duration=duration,
            mime_type="audio/ogg",
            file_size=len(audio) if file_size is None else file_size,
        )
        return updates.message(None, user=updates.learner(uid, **user), voice=voice), file_id

    async def voice(self, uid: int, audio: bytes, **kwargs: Any) -> str:
        update, file_id = self.voice_update(uid, audio, **kwargs)
        await self.feed(update)
        return file_id

    # What the learner saw.
    def sent(self, uid: int) -> list[str]:
        return [m.text for m in self.recorder.of(SendMessage) if m.chat_id == uid]

    def all_sent(self) -> list[str]:
        return [m.text for m in self.recorder.of(SendMessage)]

    def voices(self, uid: int) -> list[SendVoice]:
        return [m for m in self.recorder.of(SendVoice) if m.chat_id == uid]

    # What OpenAI saw.
    def calls(self, endpoint: str) -> int:
        return len(self.oa.calls(endpoint))

    # What was stored.
    async def user_id(self, uid: int) -> int:
        async with create_sessionmaker(self.engine)() as session:
            found = await session.scalar(select(User.id).where(User.telegram_id == uid))
            assert found is not None, f"learner {uid} was not created"
            return found

    async def rows(self, uid: int) -> list[MessageRow]:
        user_id = await self.user_id(uid)
        async with create_sessionmaker(self.engine)() as session:
            rows = await session.scalars(
                select(MessageRow)
                .where(MessageRow.user_id == user_id)
                .order_by(MessageRow.created_at, MessageRow.id)
            )
            return list(rows)

    async def daily(self, uid: int) -> list[DailyStats]:
        user_id = await self.user_id(uid)
        async with create_sessionmaker(self.engine)() as session:
            rows = await session.scalars(select(DailyStats).where(DailyStats.user_id == user_id))
            return list(rows)

    async def words(self, uid: int) -> list[str]:
        user_id = await self.user_id(uid)
        async with create_sessionmaker(self.engine)() as session:
            rows = await session.scalars(
                select(SavedWord.word).where(SavedWord.user_id == user_id).order_by(SavedWord.id)
            )
            return list(rows)

    async def keys(self, pattern: str) -> list[str]:
        return sorted(key.decode() for key in await self.redis.keys(pattern))

    async def json(self, key: str) -> Any:
        raw = await self.redis.get(key)
        assert raw is not None, f"{key} is not cached"
        return json.loads(raw)


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.script_chat(default_script)
        yield server


@pytest.fixture
async def make_talk(
    tmp_path: Path,
    engine: AsyncEngine,
    cache: Cache,
    fake_redis: FakeAsyncRedis,
    bot: Bot,
    recorder: Recorder,
    oa: FakeOpenAI,
) -> AsyncIterator[Callable[..., Talk]]:
    """Build the dispatcher against FakeOpenAI; config overrides as keyword arguments."""
    made: list[Resources] = []

    def make(**overrides: Any) -> Talk:
        values = {"openai_base_url": oa.base_url, "openai_max_retries": 1, **overrides}
        resources = make_resources(make_config(tmp_path, **values), engine, cache)
        made.append(resources)
        dp = build_dispatcher(resources)
        return Talk(oa, dp, bot, recorder, resources, engine, fake_redis)

    yield make
    for resources in made:
        await resources.openai.close()


@pytest.fixture
def talk(make_talk: Callable[..., Talk]) -> Talk:
    return make_talk()


@pytest.fixture
def outage_talk(make_talk: Callable[..., Talk]) -> Talk:
    """No client retries: an injected outage fails at once instead of after back-off."""
    return make_talk(openai_max_retries=0)


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Prague")).date()


def edited_update(uid: int, text: str) -> Update:
    now = dt.datetime.now(dt.UTC)
    return Update(
        update_id=next(_update_ids),
        edited_message=Message(
            message_id=next(_update_ids),
            date=now - dt.timedelta(minutes=1),
            edit_date=int(now.timestamp()),
            chat=Chat(id=uid, type="private"),
            from_user=updates.learner(uid),
            text=text,
        ),
    )


# ================================================================== 1-3. the voice round trip


async def test_voice_round_trip_answers_stores_and_caches(talk: Talk) -> None:
    reply = "Mám se dobře, díky! A ty?"
    mistakes = [(f"chyba{i}", f"oprava{i}", f"vysvětlení{i}") for i in range(1, 6)]
    talk.oa.script_chat(
        lambda body: honzik_answer(
            reply, score=72, mistakes=mistakes, words=["pivo", "tramvaj"], tip="Mluv pomalu."
        )
    )

    file_id = await talk.voice(2001, AHOJ, duration=2)

    # One text with what was heard, the reply, the score and at most three corrections.
    (text,) = talk.sent(2001)
    assert AHOJ_TEXT in text and reply in text
    assert texts.SCORE.format(score=72) in text
    shown = [line for line in text.splitlines() if line.startswith("• ")]
    assert shown == [
        texts.CORRECTION.format(original=o, corrected=c, explanation=e) for o, c, e in mistakes[:3]
    ]
    assert "chyba4" not in text and "chyba5" not in text
    assert "pivo" in text and "tramvaj" in text

    # Then one voice, uploaded as a file: the speech the stand-in synthesised.
    (voice,) = talk.voices(2001)
    assert isinstance(voice.voice, InputFile)
    assert voice.voice.data == TTS_AUDIO  # type: ignore[attr-defined]
    order = [type(r) for r in talk.recorder.requests if isinstance(r, SendMessage | SendVoice)]
    assert order == [SendMessage, SendVoice]

    # OpenAI: one of each, with the right parameters.
    (transcription,) = talk.oa.calls("transcriptions")
    assert transcription.body["language"] == "cs"
    assert transcription.audio_sha256 == hashlib.sha256(AHOJ).hexdigest()
    (chat,) = talk.oa.calls("chat")
    assert chat.body["messages"][-1] == {"role": "user", "content": AHOJ_TEXT}
    (speech,) = talk.oa.calls("speech")
    assert (speech.body["input"], speech.body["voice"]) == (reply, "onyx")
    assert speech.body["response_format"] == "opus"

    # Stored: the learner's raw transcript and the teacher's reply.
    learner, teacher = await talk.rows(2001)
    assert (learner.role, learner.kind, learner.text) == ("learner", "voice", AHOJ_TEXT)
    assert (learner.duration_seconds, learner.score, learner.answered) == (2.0, 72, True)
    assert learner.audio_file_id == file_id
    assert learner.mistakes is not None and len(learner.mistakes) == 5
    assert (teacher.role, teacher.text) == ("teacher", reply)
    # Suggested words wait on the answer for its ➕ button: none are saved yet (autosave off).
    assert [word["word"] for word in teacher.new_words or []] == ["pivo", "tramvaj"]
    (stats,) = await talk.daily(2001)
    assert stats.date == today()
    assert (stats.messages, stats.voice_messages) == (1, 1)
    assert (stats.seconds_spoken, stats.score_sum, stats.new_words) == (2.0, 72, 0)
    assert await talk.words(2001) == []

    # Cached: transcript, answer and speech, each for at most a day.
    whisper_key = f"whisper:{hashlib.sha256(AHOJ).hexdigest()}"
    (honzik_key,) = await talk.keys("honzik:response:*")
    (tts_key,) = await talk.keys("tts:*")
    assert tts_key.endswith(":onyx")
    for key in (whisper_key, honzik_key, tts_key):
        assert 0 < await talk.redis.ttl(key) <= OPENAI_TTL, key
    assert (await talk.json(whisper_key))["text"] == AHOJ_TEXT
    assert (await talk.json(honzik_key))["reply"] == reply
    # After the upload only Telegram's copy is kept.
    (uploaded,) = talk.recorder.uploaded_voice_ids()
    assert await talk.json(tts_key) == {"file_id": uploaded, "audio_b64": None}


async def test_same_audio_again_is_not_transcribed_again(talk: Talk) -> None:
    await talk.voice(2002, AHOJ)
    await talk.voice(2002, AHOJ)

    assert talk.calls("transcriptions") == 1
    first, second = talk.sent(2002)
    assert AHOJ_TEXT in first and AHOJ_TEXT in second
    # The second turn has history, so Honzík is asked again.
    assert talk.calls("chat") == 2
    (stats,) = await talk.daily(2002)
    assert (stats.messages, stats.voice_messages) == (2, 2)


async def test_second_learner_shares_answer_and_voice_by_file_id(talk: Talk) -> None:
    await talk.voice(2003, AHOJ)
    (uploaded,) = talk.recorder.uploaded_voice_ids()

    await talk.voice(2004, AHOJ)

    assert (talk.calls("transcriptions"), talk.calls("chat"), talk.calls("speech")) == (1, 1, 1)
    assert talk.sent(2004) == talk.sent(2003)
    assert reply_for(AHOJ_TEXT) in talk.sent(2004)[0]
    (resent,) = talk.voices(2004)
    assert isinstance(resent.voice, str)
    assert resent.voice == uploaded
    # The second learner's turn is stored as their own.
    learner, teacher = await talk.rows(2004)
    assert (learner.text, teacher.text) == (AHOJ_TEXT, reply_for(AHOJ_TEXT))


async def test_other_level_asks_again_and_other_character_has_own_voice(talk: Talk) -> None:
    await talk.voice(2005, AHOJ)

    await talk.text(2006, "/level advanced")
    await talk.voice(2006, AHOJ)
    assert talk.calls("chat") == 2
    advanced = talk.oa.calls("chat")[1].body["messages"]
    assert "B2–C1" in advanced[0]["content"]
    assert advanced[1:] == [{"role": "user", "content": AHOJ_TEXT}]
    # Same reply text, same voice: the speech is shared.
    assert talk.calls("speech") == 1

    await talk.text(2007, "/character novakova")
    await talk.voice(2007, AHOJ)
    assert talk.calls("chat") == 3
    assert [c.body["voice"] for c in talk.oa.calls("speech")] == ["onyx", "nova"]
    onyx, nova = sorted(await talk.keys("tts:*"), key=lambda k: not k.endswith(":onyx"))
    assert onyx.endswith(":onyx") and nova.endswith(":nova")
    assert onyx.rsplit(":", 1)[0] == nova.rsplit(":", 1)[0]  # same text, another voice
    (novakova_voice,) = talk.voices(2007)
    assert isinstance(novakova_voice.voice, InputFile)


# ================================================================== 5. five learners at once


async def test_five_learners_same_new_audio_at_once_share_every_call(talk: Talk) -> None:
    learners = list(range(2101, 2106))
    talk.recorder.download_gate = asyncio.Barrier(len(learners))  # all download, then go
    batch = [talk.voice_update(uid, DOBRY_DEN)[0] for uid in learners]

    await asyncio.wait_for(asyncio.gather(*(talk.feed(u) for u in batch)), DEADLINE)

    assert talk.calls("transcriptions") == 1
    assert talk.calls("chat") == 1
    assert talk.calls("speech") == 1
    for uid in learners:
        (text,) = talk.sent(uid)
        assert DOBRY_DEN_TEXT in text and reply_for(DOBRY_DEN_TEXT) in text
        assert len(talk.voices(uid)) == 1
        assert len(await talk.rows(uid)) == 2


# ================================================================== 6. refused before download


async def test_overlong_voice_is_refused_without_download_or_openai(talk: Talk) -> None:
    limit = talk.resources.config.max_voice_seconds
    await talk.voice(2201, AHOJ, duration=limit + 1)

    assert talk.sent(2201) == [texts.VOICE_TOO_LONG.format(seconds=limit + 1, limit=limit)]
    assert talk.recorder.of(GetFile) == []
    assert talk.oa.calls() == []


async def test_voice_at_the_limit_is_accepted(talk: Talk) -> None:
    limit = talk.resources.config.max_voice_seconds
    await talk.voice(2202, AHOJ, duration=limit)

    assert reply_for(AHOJ_TEXT) in talk.sent(2202)[0]
    assert len(talk.recorder.of(GetFile)) == 1


async def test_file_over_20_mb_is_refused_without_download(talk: Talk) -> None:
    await talk.voice(2203, AHOJ, duration=30, file_size=TELEGRAM_DOWNLOAD_LIMIT + 1)

    assert talk.sent(2203) == [texts.VOICE_TOO_BIG]
    assert talk.recorder.of(GetFile) == []
    assert talk.oa.calls() == []


# ================================================================== 7-8. OpenAI faults


async def test_tts_down_still_sends_the_text(outage_talk: Talk) -> None:
    talk = outage_talk
    talk.oa.fail_always("speech", 500)

    await talk.voice(2301, AHOJ)

    assert len(talk.sent(2301)) == 1
    assert reply_for(AHOJ_TEXT) in talk.sent(2301)[0]
    assert texts.SOMETHING_WENT_WRONG not in talk.all_sent()
    assert talk.recorder.of(SendVoice) == []
    assert talk.calls("speech") == 1
    assert await talk.keys("tts:*") == []
    assert [row.answered for row in await talk.rows(2301)] == [True, True]


async def test_chat_down_then_back(outage_talk: Talk) -> None:
    talk = outage_talk
    talk.oa.fail_always("chat", 500)

    await talk.text(2302, "Dobrý den!")

    assert talk.sent(2302) == [texts.TRY_AGAIN]
    assert talk.recorder.of(SendVoice) == []
    (row,) = await talk.rows(2302)
    assert (row.role, row.text, row.answered, row.score) == ("learner", "Dobrý den!", False, None)
    assert await talk.keys("honzik:response:*") == []

    talk.oa.recover()
    await talk.text(2302, "Mám se dobře.")

    assert reply_for("Mám se dobře.") in talk.sent(2302)[1]
    assert len(talk.voices(2302)) == 1
    rows = await talk.rows(2302)
    assert [(r.role, r.answered) for r in rows] == [
        ("learner", False),
        ("learner", True),
        ("teacher", True),
    ]
    (stats,) = await talk.daily(2302)
    assert (stats.messages, stats.scored_messages) == (2, 1)


async def test_whisper_down_keeps_the_voice_message(outage_talk: Talk) -> None:
    talk = outage_talk
    talk.oa.fail_always("transcriptions", 500)

    file_id = await talk.voice(2303, AHOJ, duration=3)

    assert talk.sent(2303) == [texts.TRY_AGAIN]
    assert talk.calls("chat") == 0 and talk.calls("speech") == 0
    (row,) = await talk.rows(2303)
    assert (row.kind, row.text, row.audio_file_id) == ("voice", "", file_id)
    assert (row.duration_seconds, row.answered) == (3.0, False)
    assert await talk.keys("whisper:*") == []


async def test_a_failed_download_keeps_the_voice_message(talk: Talk) -> None:
    update, file_id = talk.voice_update(2304, AHOJ, duration=2)
    talk.recorder.broken_downloads.add(file_id)

    await talk.feed(update)

    assert talk.sent(2304) == [texts.TRY_AGAIN]
    assert talk.calls("transcriptions") == 0
    (row,) = await talk.rows(2304)
    assert (row.kind, row.audio_file_id, row.answered) == ("voice", file_id, False)


async def test_one_openai_rate_limit_is_retried_by_the_client(talk: Talk) -> None:
    talk.oa.fail_next("chat", 429, retry_after=0.01)

    await talk.text(2304, "Ahoj!")

    assert [c.status for c in talk.oa.calls("chat")] == [429, 200]
    assert reply_for("Ahoj!") in talk.sent(2304)[0]


async def test_chat_rejecting_the_request_is_try_again_and_keeps_the_message(
    outage_talk: Talk,
) -> None:
    talk = outage_talk
    talk.oa.fail_always("chat", 400, message="Invalid prompt: flagged as potentially violating.")

    await talk.text(2305, "Dobrý den!")

    assert talk.sent(2305) == [texts.TRY_AGAIN]
    (row,) = await talk.rows(2305)
    assert (row.text, row.answered) == ("Dobrý den!", False)


async def test_tts_rejecting_the_request_still_sends_text_only(outage_talk: Talk) -> None:
    talk = outage_talk
    talk.oa.fail_always("speech", 400)

    await talk.voice(2306, AHOJ)

    assert len(talk.sent(2306)) == 1
    assert reply_for(AHOJ_TEXT) in talk.sent(2306)[0]
    assert talk.recorder.of(SendVoice) == []


async def test_answer_that_does_not_fit_the_schema_is_try_again(talk: Talk) -> None:
    talk.oa.script_chat(lambda body: honzik_answer("Ahoj!", score=150))

    await talk.text(2307, "Dobrý den!")

    assert talk.sent(2307) == [texts.TRY_AGAIN]
    (row,) = await talk.rows(2307)
    assert (row.text, row.answered) == ("Dobrý den!", False)


# ================================================================== stale cached voice


async def test_rejected_cached_voice_is_uploaded_again(talk: Talk) -> None:
    await talk.voice(2401, AHOJ)
    (stale,) = talk.recorder.uploaded_voice_ids()
    talk.recorder.rejected_file_ids.add(stale)

    await talk.voice(2402, AHOJ)

    first, second = talk.voices(2402)
    assert first.voice == stale
    assert isinstance(second.voice, InputFile)
    assert talk.calls("speech") == 2
    fresh = talk.recorder.uploaded_voice_ids()[-1]
    assert fresh != stale
    (tts_key,) = await talk.keys("tts:*")
    assert (await talk.json(tts_key))["file_id"] == fresh


async def test_rejected_cached_voice_with_tts_down_is_text_only(outage_talk: Talk) -> None:
    talk = outage_talk
    await talk.voice(2403, AHOJ)
    (stale,) = talk.recorder.uploaded_voice_ids()
    talk.recorder.rejected_file_ids.add(stale)
    talk.oa.fail_always("speech", 500)

    await talk.voice(2404, AHOJ)

    assert len(talk.sent(2404)) == 1
    assert reply_for(AHOJ_TEXT) in talk.sent(2404)[0]
    assert texts.SOMETHING_WENT_WRONG not in talk.all_sent()


# ================================================================== 9. voice replies off


async def test_voice_off_sends_text_only(talk: Talk) -> None:
    await talk.text(2501, "/voice off")
    await talk.voice(2501, AHOJ)
    await talk.text(2501, "Mám se dobře.")

    answers = talk.sent(2501)[1:]
    assert reply_for(AHOJ_TEXT) in answers[0]
    assert reply_for("Mám se dobře.") in answers[1]
    assert talk.recorder.of(SendVoice) == []
    assert talk.calls("speech") == 0
    assert await talk.keys("tts:*") == []


# ================================================================== 10. text and odd input


async def test_text_message_gets_the_reply_without_transcription(talk: Talk) -> None:
    await talk.text(2601, "  Ahoj, jak se máš?  ")

    (text,) = talk.sent(2601)
    assert text.startswith(reply_for(AHOJ_TEXT))  # no "heard" line for typed text
    assert texts.SCORE.format(score=80) in text
    assert talk.calls("transcriptions") == 0
    assert talk.oa.calls("chat")[0].body["messages"][-1]["content"] == AHOJ_TEXT
    assert len(talk.voices(2601)) == 1
    learner, _ = await talk.rows(2601)
    assert (learner.kind, learner.text, learner.audio_file_id) == ("text", AHOJ_TEXT, None)
    (stats,) = await talk.daily(2601)
    assert (stats.messages, stats.voice_messages, stats.words_spoken) == (1, 0, 4)


async def test_text_over_the_limit_is_refused_and_not_stored(talk: Talk) -> None:
    await talk.text(2602, "slovo " * (MAX_TEXT // 6 + 1))
    await talk.text(2602, "a" * MAX_TEXT)  # exactly at the limit is fine

    refusal, *answer = talk.sent(2602)  # the answer and its corrected sentence: two messages
    assert refusal == texts.TEXT_TOO_LONG.format(limit=MAX_TEXT)
    assert reply_for("a" * MAX_TEXT) in answer[0]
    assert talk.calls("chat") == 1
    (learner, _) = await talk.rows(2602)
    assert learner.text == "a" * MAX_TEXT


async def test_emoji_only_text_asks_for_words(talk: Talk) -> None:
    await talk.text(2603, "👍🎉 123 !!!")

    assert talk.sent(2603) == [texts.NO_WORDS]
    assert talk.oa.calls() == []


async def test_silence_is_didnt_catch(talk: Talk) -> None:
    file_id = await talk.voice(2604, SILENCE, duration=1)

    assert talk.sent(2604) == [texts.DIDNT_CATCH]
    assert talk.calls("transcriptions") == 1 and talk.calls("chat") == 0
    (row,) = await talk.rows(2604)
    assert (row.text, row.audio_file_id, row.answered) == ("", file_id, False)


async def test_corrupt_audio_is_cant_hear(talk: Talk) -> None:
    await talk.voice(2605, CORRUPT)

    assert talk.sent(2605) == [texts.CANT_HEAR]
    (transcription,) = talk.oa.calls("transcriptions")  # a 400 is not retried
    assert transcription.status == 400
    assert talk.calls("chat") == 0


async def test_edited_message_is_not_read(talk: Talk) -> None:
    await talk.feed(edited_update(2606, "Ahoj, jak se máš?"))

    assert talk.sent(2606) == [texts.EDITED]
    assert talk.oa.calls() == []


# ================================================================== 11. history


async def test_second_turn_carries_the_first_and_nothing_personal(talk: Talk) -> None:
    person = {"first_name": "Květoslav", "username": "kvetos_77"}
    uid = 7654321
    await talk.voice(uid, AHOJ, **person)
    await talk.text(uid, "Mám se dobře.", **person)

    first, second = (c.body["messages"] for c in talk.oa.calls("chat"))
    assert [m["role"] for m in first] == ["system", "user"]
    assert second[1:] == [
        {"role": "user", "content": AHOJ_TEXT},  # raw transcript, not the corrected text
        {"role": "assistant", "content": reply_for(AHOJ_TEXT)},
        {"role": "user", "content": "Mám se dobře."},
    ]
    for messages in (first, second):
        system = messages[0]["content"]
        for personal in ("Květoslav", "kvetos_77", str(uid), "Anna"):
            assert personal not in system

    # The same phrase as a first message is another request, so another completion.
    await talk.text(2702, "Mám se dobře.")
    assert talk.calls("chat") == 3
    assert talk.oa.calls("chat")[2].body["messages"][1:] == [
        {"role": "user", "content": "Mám se dobře."}
    ]
    assert len(await talk.keys("honzik:response:*")) == 3


async def test_history_is_rebuilt_from_the_database_when_not_cached(talk: Talk) -> None:
    await talk.text(2703, "Ahoj!")
    await talk.text(2703, "Jak se máš?")
    history_keys = await talk.keys("user:2703:history:*")
    assert history_keys == ["user:2703:history:6"]
    await talk.redis.delete(*history_keys)

    await talk.text(2703, "Já taky.")

    assert talk.oa.calls("chat")[2].body["messages"][1:] == [
        {"role": "user", "content": "Ahoj!"},
        {"role": "assistant", "content": reply_for("Ahoj!")},
        {"role": "user", "content": "Jak se máš?"},
        {"role": "assistant", "content": reply_for("Jak se máš?")},
        {"role": "user", "content": "Já taky."},
    ]

    # A learner who said the same, with the history still cached, shares that answer.
    for phrase in ("Ahoj!", "Jak se máš?", "Já taky."):
        await talk.text(2704, phrase)
    assert talk.calls("chat") == 3


async def test_new_conversation_start_bounds_history_loaded_from_database(talk: Talk) -> None:
    """SQLite hands conversation_started_at back naive; comparing it must not crash."""
    await talk.text(2705, "Ahoj!")
    # What /reset's "new conversation" stores, with the history entry since expired.
    user_id = await talk.user_id(2705)
    async with create_sessionmaker(talk.engine)() as session:
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(conversation_started_at=dt.datetime.now(dt.UTC))
        )
        await session.commit()
    await talk.redis.delete(*await talk.keys("user:2705:history:*"))

    await talk.text(2705, "Jak se máš?")

    assert reply_for("Jak se máš?") in talk.sent(2705)[-1]
    assert talk.oa.calls("chat")[1].body["messages"][1:] == [
        {"role": "user", "content": "Jak se máš?"}
    ]


# ================================================================== 12. saved words


async def test_same_word_twice_is_saved_once_per_learner(talk: Talk) -> None:
    talk.oa.script_chat(
        lambda body: honzik_answer(reply_for(last_user_text(body)), words=["pivo", " pivo "])
    )

    for uid in (2801, 2802):
        await talk.text(uid, "/autosave on")
    await talk.text(2801, "Dám si pivo.")
    await talk.text(2801, "Ještě jedno pivo.")
    await talk.text(2802, "Dám si pivo.")

    assert await talk.words(2801) == ["pivo"]
    assert await talk.words(2802) == ["pivo"]
    first, second = talk.sent(2801)[1:]
    saved_line = texts.SAVED_WORDS.format(words="pivo")
    assert saved_line in first.splitlines()
    assert "📚" not in second
    assert saved_line in talk.sent(2802)[1].splitlines()
    (stats,) = await talk.daily(2801)
    assert stats.new_words == 1


# ================================================================== answers of any length


def many_words(count: int, stem: str = "slovo") -> str:
    """Distinct words, so a lost or repeated piece shows."""
    return " ".join(f"{stem}{i}" for i in range(count))


OVERLONG = {  # each over 5000 characters
    "reply": honzik_answer(many_words(700)),
    "tip": honzik_answer("Dobře!", tip=many_words(700, "tip")),
    "mistakes": honzik_answer(
        "Dobře!", mistakes=[(f"chyba{i}", f"oprava{i}", many_words(250, f"v{i}-")) for i in "abc"]
    ),
}


@pytest.mark.parametrize("field", OVERLONG)
async def test_an_overlong_answer_arrives_whole_for_everyone_with_the_voice(
    talk: Talk, field: str
) -> None:
    answer = OVERLONG[field]
    talk.oa.script_chat(lambda body: answer)

    await talk.text(3001, "Vyprávěj mi něco.")
    await talk.text(3002, "Vyprávěj mi něco.")  # the next learner gets the cached answer

    assert talk.calls("chat") == 1
    mistakes = [(m["original"], m["corrected"], m["explanation"]) for m in answer["mistakes"]]
    whole = texts.reply_text(answer["reply"], 80, mistakes, answer["tip"], [])
    for uid in (3001, 3002):
        parts = talk.sent(uid)
        assert len(parts) > 1
        assert all(len(part) <= TELEGRAM_TEXT for part in parts), [len(p) for p in parts]
        assert " ".join(parts).split() == whole.split()
        assert len(talk.voices(uid)) == 1
    (speech,) = talk.oa.calls("speech")
    assert speech.status == 200
    spoken = speech.body["input"]
    assert len(spoken) <= SPEECH_INPUT and answer["reply"].startswith(spoken.rstrip("…"))


async def test_a_very_long_transcript_is_echoed_whole_in_messages_that_fit(talk: Talk) -> None:
    heard = many_words(700, "řekla")
    talk.oa.add_transcript(TTS_AUDIO, heard)

    await talk.voice(3003, TTS_AUDIO, duration=60)

    parts = talk.sent(3003)
    assert all(len(part) <= TELEGRAM_TEXT for part in parts), [len(p) for p in parts]
    mistakes = [("jak se mas", "jak se máš", "chybí háček")]
    whole = texts.reply_text(
        reply_for(heard), 80, mistakes, None, [], heard=heard, corrected=f"OPRAVENO: {heard}"
    )
    assert " ".join(parts).split() == whole.split()
    assert len(talk.voices(3003)) == 1


def test_split_message_cuts_at_paragraphs_then_lines_then_spaces() -> None:
    x, y = "x" * 3000, "y" * 3000
    assert texts.split_message(f"{x}\n\n{y}") == [x, y]
    words, more = "w " * 1100, "z " * 1500
    assert texts.split_message(f"{words}\n{more}") == [words.strip(), more.strip()]
    first, _ = texts.split_message("a" * 100 + "\n\n" + more + more)
    assert len(first) > 4000  # an early paragraph break makes no tiny message
    assert [len(p) for p in texts.split_message("x" * 9000)] == [4096, 4096, 808]
    assert texts.split_message("  Ahoj!  ") == ["Ahoj!"]


def test_shorten_cuts_at_a_space_with_an_ellipsis() -> None:
    text = many_words(1000)
    short = texts.shorten(text, 100)
    assert len(short) <= 100 and short.endswith("…")
    assert text.startswith(short.removesuffix("…") + " ")
    assert texts.shorten("Ahoj", 100) == "Ahoj"


def test_the_schema_bounds_lists_and_uses_only_strict_mode_keywords() -> None:
    schema = HonzikReply.model_json_schema()
    properties, item = schema["properties"], schema["$defs"]["Mistake"]["properties"]
    assert properties["mistakes"]["maxItems"] == MAX_MISTAKES
    assert properties["new_words"]["maxItems"] == 3
    # Strict mode documents no length keyword for strings: the bounds are in the descriptions.
    assert "maxLength" not in json.dumps(schema) and "minLength" not in json.dumps(schema)
    for field in (properties["reply"], properties["tip"], item["explanation"]):
        assert "at most" in field["description"]


# ================================================================== 13. Telegram flood control


async def test_telegram_429_on_the_reply_is_waited_out(talk: Talk) -> None:
    talk.recorder.middleware(RetryAfterMiddleware())
    talk.recorder.flood[SendMessage] = 1

    await talk.text(2901, "Ahoj!")

    attempts = talk.sent(2901)
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    assert reply_for("Ahoj!") in attempts[1]
    assert texts.SOMETHING_WENT_WRONG not in talk.all_sent()
    assert len(talk.voices(2901)) == 1


def _flood_request(failures: int, retry_after: int = 0) -> tuple[list[Any], Any]:
    calls: list[Any] = []

    async def make_request(bot: Bot, method: TelegramMethod[Any]) -> Response[Any]:
        calls.append(method)
        if len(calls) <= failures:
            raise TelegramRetryAfter(method, "Flood control exceeded", retry_after=retry_after)
        return Response[bool](ok=True, result=True)

    return calls, make_request


async def test_retry_after_middleware_retries_once_then_succeeds() -> None:
    calls, make_request = _flood_request(failures=1)
    bot = Bot(TEST_TOKEN, session=RecordingSession())

    response = await RetryAfterMiddleware()(make_request, bot, SendMessage(chat_id=1, text="x"))

    assert response.result is True
    assert len(calls) == 2


async def test_retry_after_middleware_gives_up_after_three_attempts() -> None:
    calls, make_request = _flood_request(failures=10)
    bot = Bot(TEST_TOKEN, session=RecordingSession())

    with pytest.raises(TelegramRetryAfter):
        await RetryAfterMiddleware()(make_request, bot, SendMessage(chat_id=1, text="x"))
    assert len(calls) == 3


async def test_retry_after_middleware_does_not_wait_too_long() -> None:
    calls, make_request = _flood_request(failures=1, retry_after=31)
    bot = Bot(TEST_TOKEN, session=RecordingSession())

    with pytest.raises(TelegramRetryAfter):
        await RetryAfterMiddleware()(make_request, bot, SendMessage(chat_id=1, text="x"))
    assert len(calls) == 1
