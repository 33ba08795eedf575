"""Streamed replies end to end: `python -m bot` against an OpenAI stand-in streaming
server-sent events at a set pace and a Telegram stand-in that records sendMessageDraft."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from bot import texts
from tests.e2e.harness import BotProcess, Fleet, RedisServer
from tests.standins.openai import AUDIO_DIR, FIXTURE_TRANSCRIPTS, FakeOpenAI
from tests.standins.telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SPAWN_EARLY = ("_streaming",)
RECORDING = "ahoj_jak_se_mas.ogg"


def answer(request: dict[str, Any]) -> dict[str, Any]:
    said = request["messages"][-1]["content"]
    return {
        "reply": f"Rozumím, říkáš: {said} To je hezké, povídej mi o tom víc, prosím.",
        "corrected_text": said,
        "mistakes": [],
        "score": 90,
        "tip": "Mluvíš moc hezky, jen tak dál a nezapomínej na délky samohlásek.",
        "new_words": [],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _streaming(module_fleet: Fleet, module_oa: FakeOpenAI) -> BotProcess:
    module_oa.script_chat(answer)
    module_oa.first_token = 0.2
    module_oa.tokens_per_second = 120.0
    return module_fleet.spawn("streaming")


@pytest_asyncio.fixture(loop_scope="module")
async def bot(
    _streaming: BotProcess, module_redis: RedisServer, module_tg: FakeTelegram
) -> BotProcess:
    ready = await _streaming.ready()
    await module_redis.flushall()
    module_tg.refuse_drafts = False
    return ready


def drafts(tg: FakeTelegram, user: int, since: int) -> list[Any]:
    return [
        call
        for call in tg.calls[since:]
        if call.method == "sendMessageDraft" and str(call.params.get("chat_id")) == str(user)
    ]


async def test_a_voice_answer_is_drafted_while_written_then_sent_whole(
    bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
) -> None:
    tg, user = module_tg, 9101
    tg.add_user(user, "Ivana")
    mark, calls = tg.mark(), len(module_oa.history)
    tg.send_voice(user, (AUDIO_DIR / RECORDING).read_bytes(), 2)
    (message,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user, timeout=15)
    (voice,) = await tg.wait_for_method("sendVoice", since=mark, chat_id=user, timeout=15)
    heard = texts.HEARD.format(text=FIXTURE_TRANSCRIPTS[RECORDING])
    shown = [call.params.get("text", "") for call in drafts(tg, user, mark) if call.ok]
    assert shown and all(text.startswith(heard) for text in shown)  # what he heard, at once
    assert shown[0] == heard
    assert any("Rozumím" in text for text in shown)  # the reply, while being written
    chat = next(c for c in module_oa.history[calls:] if c.endpoint == "chat")
    assert chat.body["stream"] is True and chat.finished is not None
    first_reply_draft = next(c for c in drafts(tg, user, mark) if "Rozumím" in c.params["text"])
    assert first_reply_draft.seq < message.seq < voice.seq
    assert message.params["text"].startswith(heard)
    assert "Rozumím, říkáš" in message.params["text"] and "délky" in message.params["text"]
    bot.assert_no_traceback()


async def test_a_cached_answer_comes_without_drafts(
    bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
) -> None:
    tg = module_tg
    tg.add_user(9102, "Petr")
    tg.add_user(9103, "Olga")
    mark = tg.mark()
    tg.send_text(9102, "Dobrý den, jak se máte?")
    await tg.wait_for_method("sendMessage", since=mark, chat_id=9102, timeout=15)
    assert drafts(tg, 9102, mark)
    chats = sum(c.endpoint == "chat" for c in module_oa.history)
    mark = tg.mark()
    tg.send_text(9103, "Dobrý den, jak se máte?")
    (message,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=9103, timeout=15)
    assert "Rozumím, říkáš" in message.params["text"]
    assert sum(c.endpoint == "chat" for c in module_oa.history) == chats
    assert not drafts(tg, 9103, mark)


async def test_a_stream_cut_in_the_middle_says_try_again_and_caches_nothing(
    bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
) -> None:
    tg, user = module_tg, 9104
    tg.add_user(user, "Jana")
    module_oa.cut_next_stream(after_characters=80)
    mark = tg.mark()
    tg.send_text(user, "Včera jsem byl v kině.")
    (failed,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user, timeout=15)
    assert failed.params["text"] == texts.TRY_AGAIN
    mark = tg.mark()
    tg.send_text(user, "Včera jsem byl v kině.")
    (answered,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user, timeout=15)
    assert "Rozumím, říkáš: Včera jsem byl v kině." in answered.params["text"]
    assert drafts(tg, user, mark)  # asked again: nothing was cached
    bot.assert_no_traceback()


async def test_refused_drafts_fall_back_to_the_answer_as_before(
    bot: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
) -> None:
    tg, user = module_tg, 9105
    tg.add_user(user, "Karel")
    tg.refuse_drafts = True
    mark = tg.mark()
    tg.send_text(user, "Mám rád knedlíky.")
    (first,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user, timeout=15)
    assert "Rozumím, říkáš: Mám rád knedlíky." in first.params["text"]
    assert len(drafts(tg, user, mark)) == 1 and not drafts(tg, user, mark)[0].ok
    mark = tg.mark()
    tg.send_text(user, "A taky guláš.")
    (second,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user, timeout=15)
    assert "Rozumím, říkáš: A taky guláš." in second.params["text"]
    assert not drafts(tg, user, mark)  # off for a while: no draft tried
    await tg.wait_for_method("sendVoice", since=mark, chat_id=user, timeout=15)
    bot.assert_no_traceback()
