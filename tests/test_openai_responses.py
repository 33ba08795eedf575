"""What OpenAI answers, and how the bot uploads to it: odd 200s and the audio's real format.

The dispatcher runs against the OpenAI stand-in. A 200 that is not what the endpoint promises
(an HTML page from a proxy, an empty body, JSON of the wrong shape) is an upstream failure
like any other: the learner is asked to try again, what they said is stored, nothing is
cached. Whisper gets each recording under the name of the container its bytes are in,
since OpenAI picks its decoder by the file name.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from aiogram import Bot, Dispatcher
from aiogram.methods import SendMessage, SendVoice
from aiogram.types import Audio, Update, VideoNote, Voice
from fakeredis import FakeAsyncRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.ai.speech import container
from bot.cache import Cache
from bot.db.engine import create_sessionmaker
from bot.db.models import Message as MessageRow
from bot.db.models import User
from tests.conftest import dispatcher_against
from tests.standins.openai import AUDIO_DIR, FakeOpenAI
from tests.support import updates
from tests.support.recording import RecordingSession

OGG = (AUDIO_DIR / "ahoj_jak_se_mas.ogg").read_bytes()
MP3 = (AUDIO_DIR / "tts_reply.mp3").read_bytes()
MP4 = b"\0\0\0\x18ftypmp42\0\0\0\0isommp42" + b"\0\0\0\x08free"
"""The head of an MP4 file (ftyp box, then an empty free box), as a video note starts."""
NOT_AUDIO = (AUDIO_DIR / "corrupt.ogg").read_bytes()
HEARD = "Ahoj, jak se máš?"
_file_ids = itertools.count(1)


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def dp(
    tmp_path: Path, engine: AsyncEngine, cache: Cache, oa: FakeOpenAI
) -> AsyncIterator[Dispatcher]:
    async with dispatcher_against(oa.base_url, tmp_path, engine, cache) as dispatcher:
        yield dispatcher


def media_update(
    recorder: RecordingSession, uid: int, kind: str, data: bytes, mime_type: str | None = None
) -> Update:
    """A voice note, audio file or video note the learner sends (downloadable by its id)."""
    file_id = f"media-{next(_file_ids)}"
    recorder.files[file_id] = data
    ids: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"u-{file_id}"}
    ids.update(duration=2, file_size=len(data))
    media = {
        "voice": lambda: Voice(**ids, mime_type=mime_type),
        "audio": lambda: Audio(**ids, mime_type=mime_type, file_name="nahravka"),
        "video_note": lambda: VideoNote(**ids, length=240),
    }[kind]()
    return updates.message(None, user=updates.learner(uid), **{kind: media})


def sent(recorder: RecordingSession, uid: int) -> list[str]:
    return [m.text for m in recorder.of(SendMessage) if m.chat_id == uid]


async def rows(engine: AsyncEngine, uid: int) -> list[tuple[str, str, bool]]:
    """(kind, text, answered) of the learner's own stored messages."""
    async with create_sessionmaker(engine)() as session:
        found = await session.scalars(
            select(MessageRow)
            .join(User, User.id == MessageRow.user_id)
            .where(User.telegram_id == uid, MessageRow.role == "learner")
            .order_by(MessageRow.id)
        )
        return [(row.kind, row.text, row.answered) for row in found]


async def keys(redis: FakeAsyncRedis, pattern: str) -> list[bytes]:
    return list(await redis.keys(pattern))


# ------------------------------------------------------------------ odd 200 answers


@pytest.mark.parametrize("oddity", ["html", "empty", "not-object", "no-choices"])
async def test_an_odd_completion_is_try_again_and_keeps_the_message(
    dp: Dispatcher,
    bot: Bot,
    recorder: RecordingSession,
    oa: FakeOpenAI,
    engine: AsyncEngine,
    fake_redis: FakeAsyncRedis,
    oddity: str,
) -> None:
    oa.garble_next("chat", oddity)

    await dp.feed_update(bot, updates.message("Dobrý den!", user=updates.learner(4101)))

    assert sent(recorder, 4101) == [texts.TRY_AGAIN]
    assert await rows(engine, 4101) == [("text", "Dobrý den!", False)]
    assert await keys(fake_redis, "honzik:*") == []
    assert oa.calls("speech") == []


@pytest.mark.parametrize("oddity", ["html", "empty", "not-object", "no-text"])
async def test_an_odd_transcription_is_try_again_and_keeps_the_voice(
    dp: Dispatcher,
    bot: Bot,
    recorder: RecordingSession,
    oa: FakeOpenAI,
    engine: AsyncEngine,
    fake_redis: FakeAsyncRedis,
    oddity: str,
) -> None:
    oa.garble_next("transcriptions", oddity)

    await dp.feed_update(bot, media_update(recorder, 4102, "voice", OGG, "audio/ogg"))

    assert sent(recorder, 4102) == [texts.TRY_AGAIN]
    assert await rows(engine, 4102) == [("voice", "", False)]
    assert await keys(fake_redis, "whisper:*") == []
    assert oa.calls("chat") == []


@pytest.mark.parametrize("oddity", ["html", "empty"])
async def test_odd_speech_is_neither_sent_nor_cached(
    dp: Dispatcher,
    bot: Bot,
    recorder: RecordingSession,
    oa: FakeOpenAI,
    engine: AsyncEngine,
    fake_redis: FakeAsyncRedis,
    oddity: str,
) -> None:
    oa.garble_next("speech", oddity)

    await dp.feed_update(bot, updates.message("Dobrý den!", user=updates.learner(4103)))

    (answer,) = sent(recorder, 4103)
    assert answer != texts.TRY_AGAIN and texts.SOMETHING_WENT_WRONG not in answer
    assert recorder.of(SendVoice) == [], "no voice without speech"
    assert await keys(fake_redis, "tts:*") == []
    assert await rows(engine, 4103) == [("text", "Dobrý den!", True)]


# ------------------------------------------------------------------ the upload's format


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (OGG, "ogg"),
        (MP3, "mp3"),
        (b"\xff\xfb\x90\x00" + bytes(8), "mp3"),
        (MP4, "mp4"),
        (b"RIFF\x24\0\0\0WAVEfmt ", "wav"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "webm"),
        (b"fLaC\0\0\0\x22", "flac"),
        (b"RIFF\x24\0\0\0WEBPVP8 ", None),
        (NOT_AUDIO, None),
        (b"", None),
    ],
    ids=["ogg", "mp3-id3", "mp3-frame", "mp4", "wav", "webm", "flac", "webp", "noise", "empty"],
)
def test_container_is_read_from_the_bytes(data: bytes, expected: str | None) -> None:
    assert container(data) == expected


@pytest.mark.parametrize(
    ("kind", "data", "mime_type", "upload"),
    [
        ("audio", MP3, "audio/mpeg", ("voice.mp3", "audio/mpeg")),
        ("video_note", MP4, None, ("voice.mp4", "audio/mp4")),
        # The sender's app said Ogg; the bytes are MP3, and they decide.
        ("audio", MP3, "audio/ogg", ("voice.mp3", "audio/mpeg")),
    ],
    ids=["mp3-audio", "mp4-video-note", "mp3-labelled-ogg"],
)
async def test_recordings_are_uploaded_as_what_they_are(
    dp: Dispatcher,
    bot: Bot,
    recorder: RecordingSession,
    oa: FakeOpenAI,
    engine: AsyncEngine,
    kind: str,
    data: bytes,
    mime_type: str | None,
    upload: tuple[str, str],
) -> None:
    oa.add_transcript(data, HEARD)

    await dp.feed_update(bot, media_update(recorder, 4104, kind, data, mime_type))

    (call,) = oa.calls("transcriptions")
    assert call.ok, str(call)
    file = call.body["file"]
    assert (file["filename"], file["content_type"]) == upload
    (answer,) = sent(recorder, 4104)
    assert HEARD in answer
    assert await rows(engine, 4104) == [("voice", HEARD, True)]


async def test_unknown_bytes_are_named_by_their_mime_type(
    dp: Dispatcher, bot: Bot, recorder: RecordingSession, oa: FakeOpenAI
) -> None:
    """OpenAI has the last word on bytes we do not recognise (here: refused)."""
    await dp.feed_update(bot, media_update(recorder, 4105, "audio", NOT_AUDIO, "audio/mpeg"))

    (call,) = oa.calls("transcriptions")
    assert call.body["file"]["filename"] == "voice.mp3" and call.status == 400
    assert sent(recorder, 4105) == [texts.CANT_HEAR]


async def test_unknown_bytes_without_a_mime_type_are_not_sent(
    dp: Dispatcher, bot: Bot, recorder: RecordingSession, oa: FakeOpenAI, engine: AsyncEngine
) -> None:
    await dp.feed_update(bot, media_update(recorder, 4106, "video_note", NOT_AUDIO))

    assert oa.calls("transcriptions") == []
    assert sent(recorder, 4106) == [texts.CANT_HEAR]
    assert await rows(engine, 4106) == [("voice", "", False)]


# ------------------------------------------------------------------ the stand-in, like OpenAI


async def test_the_stand_in_refuses_a_name_that_is_not_the_content(oa: FakeOpenAI) -> None:
    """OpenAI decodes by the file name: MP3 bytes named .ogg are "corrupted"."""
    async with openai.AsyncOpenAI(api_key="k", base_url=oa.base_url, max_retries=0) as client:
        with pytest.raises(openai.BadRequestError, match="corrupted or unsupported"):
            await client.audio.transcriptions.create(file=("voice.ogg", MP3), model="whisper-1")
        with pytest.raises(openai.BadRequestError, match="corrupted or unsupported"):
            await client.audio.transcriptions.create(file=("voice.mp3", MP4), model="whisper-1")
        for name, data in [("a.mpga", MP3), ("a.m4a", MP4), ("a.oga", OGG)]:
            await client.audio.transcriptions.create(file=(name, data), model="whisper-1")
