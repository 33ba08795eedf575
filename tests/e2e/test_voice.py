"""Voice conversations end to end: Telegram voice note -> Whisper -> Honzík -> TTS -> Telegram,
and the caches that keep repeated audio and repeated first phrases from costing OpenAI calls.

The OpenAI stand-in is scripted to echo the learner's words in Honzík's reply, so every
phrase has its own reply text and thus its own speech cache entry. Every test starts with an
empty Redis and its own learners, and counts only the OpenAI calls made since it began, so
the shared bot never links two tests.
"""

from __future__ import annotations

import hashlib
import signal
from typing import Any

import pytest
import pytest_asyncio

from bot import texts
from tests.e2e.harness import (
    BotProcess,
    Fleet,
    RedisServer,
    assert_voice_answered,
    eventually,
    exchange,
    texts_of,
)
from tests.standins.openai import AUDIO_DIR, FIXTURE_TRANSCRIPTS, FakeOpenAI, OpenAICall
from tests.standins.telegram import FakeTelegram, TelegramCall

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


def echo_reply(request: dict[str, Any]) -> dict[str, Any]:
    said = request["messages"][-1]["content"]
    return {
        "reply": f"Rozumím, říkáš: {said}",
        "corrected_text": said,
        "mistakes": [],
        "score": 90,
        "tip": None,
        "new_words": [],
    }


def audio(name: str) -> bytes:
    return (AUDIO_DIR / name).read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


SPAWN_EARLY = ("_voice",)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _voice(module_fleet: Fleet, module_oa: FakeOpenAI) -> BotProcess:
    module_oa.script_chat(echo_reply)
    return module_fleet.spawn("voice")


@pytest_asyncio.fixture(loop_scope="module")
async def voice_bot(_voice: BotProcess, module_redis: RedisServer) -> BotProcess:
    """The module's shared bot, ready (restarted if an earlier test stopped it), cache empty."""
    bot = await _voice.ready()
    await module_redis.flushall()
    return bot


class Since:
    """The OpenAI calls made from now on."""

    def __init__(self, oa: FakeOpenAI) -> None:
        self.oa, self.start = oa, len(oa.history)

    def __call__(self, endpoint: str) -> list[OpenAICall]:
        return [c for c in self.oa.history[self.start :] if c.endpoint == endpoint]


async def round_trip(tg: FakeTelegram, user: int, ogg: bytes) -> tuple[str, TelegramCall]:
    """The learner sends a voice note; returns Honzík's text and his sendVoice call."""
    mark = tg.mark()
    tg.send_voice(user, ogg)
    (voice,) = await tg.wait_for_method("sendVoice", since=mark, chat_id=user, timeout=15)
    (message,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user)
    assert message.seq < voice.seq, "the text comes first, then the voice"
    return message.result["text"], voice


def expected_text(heard: str) -> str:
    reply = echo_reply({"messages": [{"content": heard}]})
    return texts.reply_text(reply["reply"], reply["score"], [], None, [], heard=heard)


async def test_voice_round_trip(
    voice_bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
):
    ogg, heard = audio("ahoj_jak_se_mas.ogg"), FIXTURE_TRANSCRIPTS["ahoj_jak_se_mas.ogg"]
    calls = Since(module_oa)
    text, voice = await round_trip(module_tg, 3001, ogg)

    assert text.split() == expected_text(heard).split()
    upload = voice.files.get("voice")
    assert upload is not None, f"expected an upload, got params {voice.params}"
    assert upload.data.startswith(b"OggS")
    assert module_tg.sent_voices(3001) == [upload.data]

    (transcription,) = calls("transcriptions")
    assert transcription.audio_sha256 == sha(ogg)
    assert transcription.body["language"] == "cs"
    assert len(calls("chat")) == 1
    (speech,) = calls("speech")
    assert speech.body["input"] == echo_reply({"messages": [{"content": heard}]})["reply"]
    assert speech.body["response_format"] == "opus"


async def test_same_audio_again_is_not_transcribed_again(
    voice_bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
):
    user, ogg = 3002, audio("dobry_den.ogg")
    heard = FIXTURE_TRANSCRIPTS["dobry_den.ogg"]
    calls = Since(module_oa)

    first, _ = await round_trip(module_tg, user, ogg)
    second, voice = await round_trip(module_tg, user, ogg)

    assert f"„{heard}“" in first and f"„{heard}“" in second
    assert voice.ok
    assert len(calls("transcriptions")) == 1


async def test_second_learner_same_first_phrase_reuses_answer_and_voice(
    voice_bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
):
    ogg = audio("tts_reply.ogg")
    first_text, first_voice = await round_trip(module_tg, 3003, ogg)
    assert "voice" in first_voice.files, "the first learner's voice is uploaded"
    file_id = first_voice.result["voice"]["file_id"]

    calls = Since(module_oa)
    second_text, second_voice = await round_trip(module_tg, 3004, ogg)

    assert second_text == first_text
    assert calls("chat") == [], "no second completion"
    assert calls("speech") == [], "no second speech"
    assert calls("transcriptions") == [], "no second transcription"
    assert not second_voice.files, "nothing uploaded the second time"
    assert isinstance(second_voice.params["voice"], str)
    assert second_voice.params["voice"] == file_id
    assert module_tg.sent_voices(3004) == module_tg.sent_voices(3003)


async def test_text_turn_gets_text_and_voice(
    voice_bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
):
    """A typed message takes the same path minus Whisper."""
    tg, user = module_tg, 3005
    calls = Since(module_oa)
    sent = await exchange(tg, user, lambda: tg.send_text(user, "Dobrý den, jmenuji se Petr."))
    (text,) = texts_of(sent)
    assert "Rozumím, říkáš: Dobrý den, jmenuji se Petr." in text
    await tg.wait_for_method("sendVoice", since=sent[0].seq, chat_id=user, timeout=10)
    assert calls("transcriptions") == []
    assert len(calls("chat")) == len(calls("speech")) == 1


async def test_an_overlong_reply_arrives_whole_across_messages_with_its_voice(
    voice_bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
) -> None:
    """Telegram takes 4096 characters a message and OpenAI speaks 4096 a request."""
    tg, user = module_tg, 3006
    reply = " ".join(f"věta{i}." for i in range(800))  # about 6000 characters
    module_oa.script_chat(lambda request: {**echo_reply(request), "reply": reply})
    try:
        mark = tg.mark()
        tg.send_text(user, "Vyprávěj mi pohádku.")
        (voice,) = await tg.wait_for_method("sendVoice", since=mark, chat_id=user, timeout=15)
    finally:
        module_oa.script_chat(echo_reply)

    attempts = await tg.wait_for_method(
        "sendMessage", since=mark, chat_id=user, include_failed=True
    )
    assert all(call.ok for call in attempts), [str(call) for call in attempts]
    shown = texts_of(attempts)
    assert len(shown) > 1 and all(call.seq < voice.seq for call in attempts)
    assert " ".join(shown).split() == texts.reply_text(reply, 90, [], None, []).split()
    assert tg.sent_voices(user)[0].startswith(b"OggS")


# ------------------------------------------------------------------ last: stops the shared bot


async def test_sigterm_during_a_voice_round_trip_finishes_it(
    voice_bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
):
    tg, oa, user = module_tg, module_oa, 3101
    calls = Since(oa)
    oa.delay["chat"] = 2
    try:
        mark = tg.mark()
        update_id = tg.send_voice(user, audio("ahoj_jak_se_mas.ogg"))
        await eventually(
            lambda: [c for c in calls("transcriptions") if c.status is not None] or None,
            timeout=10,
            what="the transcription",
        )
        # Honzík is still thinking (the completion takes 2 s) when the signal arrives.
        pending = await eventually(
            lambda: calls("chat") or None, timeout=5, what="the completion request"
        )
        assert pending[0].status is None

        voice_bot.send_signal(signal.SIGTERM)
        code = await voice_bot.wait_exit(30)
    finally:
        oa.delay.pop("chat", None)

    voice = await assert_voice_answered(tg, user, mark)
    assert code == 0
    voice_bot.assert_no_traceback()
    # The finished update was confirmed, so a restarted bot would not answer it twice.
    confirmed = [
        c
        for c in tg.calls[voice.seq :]
        if c.method == "getUpdates" and int(c.params.get("offset", 0)) > update_id
    ]
    assert confirmed, "the drained update was not confirmed with getUpdates(offset=...)"
