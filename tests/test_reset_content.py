""" "Delete all my data" also deletes the cache entries made from what the learner said.

Whisper transcripts, Honzík's answers and their voice are cached by content hash for a day;
each learner's content index lists the ones their messages made or used, and delete-all
deletes those, and only those.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Voice
from fakeredis import FakeAsyncRedis
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cache import Cache, CacheTTLs, Family, Keys
from bot.handlers.keyboards import ResetCb
from tests.conftest import dispatcher_against
from tests.standins.openai import AUDIO_DIR, FakeOpenAI
from tests.support import updates
from tests.support.recording import RecordingSession

KEYS = Keys(CacheTTLs())
ANNA, BOB = 7101, 7102
ANNA_AUDIO = (AUDIO_DIR / "ahoj_jak_se_mas.ogg").read_bytes()
BOB_AUDIO = (AUDIO_DIR / "dobry_den.ogg").read_bytes()
CONTENT = ("whisper:*", "honzik:response:*", "tts:*")


class Value(BaseModel):
    text: str


def echo(body: dict[str, Any]) -> dict[str, Any]:
    said = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    reply = f"Slyšel jsem: {said}"
    return {
        "reply": reply,
        "corrected_text": said,
        "mistakes": [],
        "score": 90,
        "tip": None,
        "new_words": [],
    }


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.script_chat(echo)
        server.add_transcript(ANNA_AUDIO, "Jmenuji se Anna, telefon 777 123 456.")
        yield server


@pytest.fixture
async def dp(
    tmp_path: Path, engine: AsyncEngine, cache: Cache, oa: FakeOpenAI
) -> AsyncIterator[Dispatcher]:
    async with dispatcher_against(oa.base_url, tmp_path, engine, cache) as dispatcher:
        yield dispatcher


async def content_keys(redis: FakeAsyncRedis) -> set[str]:
    found: set[str] = set()
    for pattern in CONTENT:
        found |= {k.decode() for k in await redis.keys(pattern) if not k.endswith(b":lock")}
    return found


def roots(names: set[str]) -> Counter[str]:
    return Counter(name.split(":")[0] for name in names)


async def members(redis: FakeAsyncRedis, telegram_id: int) -> set[str]:
    return {m.decode() for m in await redis.smembers(KEYS.content(telegram_id).name)}


async def voice_turn(dp: Dispatcher, bot: Bot, recorder: RecordingSession, uid: int) -> None:
    audio = ANNA_AUDIO if uid == ANNA else BOB_AUDIO
    file_id = f"voice-of-{uid}"
    recorder.files[file_id] = audio
    voice = Voice(file_id=file_id, file_unique_id=file_id, duration=2, file_size=len(audio))
    await dp.feed_update(bot, updates.message(None, user=updates.learner(uid), voice=voice))


async def test_delete_all_removes_the_learners_transcripts_answers_and_voices_only(
    dp: Dispatcher, bot: Bot, recorder: RecordingSession, fake_redis: FakeAsyncRedis
) -> None:
    # Both learners' updates run in this one task: one learner's turn must not name the
    # other as the owner of what it cached.
    await voice_turn(dp, bot, recorder, ANNA)
    await dp.feed_update(bot, updates.message("Bydlím v Brně.", user=updates.learner(ANNA)))
    annas = await content_keys(fake_redis)
    await voice_turn(dp, bot, recorder, BOB)
    bobs = await content_keys(fake_redis) - annas

    # Anna: a transcript, two answers and their voices; Bob: a transcript, an answer, a voice
    assert roots(annas) == {"whisper": 1, "honzik": 2, "tts": 2}
    assert roots(bobs) == {"whisper": 1, "honzik": 1, "tts": 1}
    assert await members(fake_redis, ANNA) == annas
    assert await members(fake_redis, BOB) == bobs
    index_ttl = await fake_redis.ttl(KEYS.content(ANNA).name)
    assert KEYS.ttl.openai - 60 < index_ttl <= KEYS.ttl.openai

    confirm = ResetCb(action="confirm").pack()
    await dp.feed_update(bot, updates.callback(confirm, user=updates.learner(ANNA)))

    assert await content_keys(fake_redis) == bobs
    assert not await fake_redis.exists(KEYS.content(ANNA).name)
    assert await members(fake_redis, BOB) == bobs


async def test_names_go_into_the_index_with_the_turns_pipeline(
    cache: Cache, fake_redis: FakeAsyncRedis
) -> None:
    async def load() -> Value:
        return Value(text="777 123 456")

    whisper = KEYS.whisper("a", Value)
    await cache.fetch(whisper, load, shared=True)
    index = KEYS.content(ANNA)
    assert not await fake_redis.exists(index.name)  # nothing extra before the turn is stored

    await cache.put_many([], bump=[KEYS.stats_version(1)], content=index)
    assert await members(fake_redis, ANNA) == {whisper.name}

    # Honzík's voice comes after the turn was stored: indexed at once, hit or miss.
    tts = KEYS.tts("t", "onyx", Value)
    await fake_redis.set(tts.name, Value(text="cached").model_dump_json())
    await cache.fetch(tts, load, shared=True)
    assert await members(fake_redis, ANNA) == {whisper.name, tts.name}

    assert await cache.content_of(index) == sorted([tts.name, whisper.name])


async def test_a_bypassed_family_is_not_indexed(fake_redis: FakeAsyncRedis) -> None:
    cache = Cache(fake_redis, bypass={Family.WHISPER})

    async def load() -> Value:
        return Value(text="x")

    await cache.fetch(KEYS.whisper("a", Value), load, shared=True)
    await cache.put_many([], content=KEYS.content(ANNA))
    assert await fake_redis.keys("*") == []
