"""Input the bot cannot use: each gets one clear answer (a texts.py constant), no traceback.

Every case has its own learner; after the input, a /help from the same chat is a barrier
(a chat's updates are handled in order), so "exactly these answers" is checked after the
bot has completely finished with the input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot import texts
from bot.domain import OPTIONS
from bot.i18n import speaking
from tests.e2e.harness import same_text
from tests.standins.telegram import DOWNLOAD, FakeTelegram

from .invariants import assert_invariants
from .support import (
    Deployment,
    audio,
    barrier,
    is_answer_to,
    learner_rows,
    texts_since,
    wait_texts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

MAX_TEXT = 2000
MAX_VOICE_SECONDS = 120
"""The bot's limits: MAX_TEXT in bot/handlers/conversation.py, MAX_VOICE_SECONDS' default."""


@dataclass(frozen=True)
class Case:
    name: str
    user: int
    send: Callable[[FakeTelegram, int], object]
    answer: str | tuple[str, ...]
    """The expected answer (or any one of several)."""
    stored: list[tuple[str, str, bool]]
    """The learner's messages rows afterwards: (kind, text, answered)."""
    downloads: bool = False
    """Whether the bot may fetch the file from Telegram."""


# Read as the default test learner reads them: in English (see tests/conftest.py).
with speaking("en"):
    CASES = [
        Case(
            "empty-text",
            5501,
            lambda tg, u: tg.send_text(u, ""),
            # Telegram itself never delivers an empty text; either hint is a clear answer.
            (texts.NO_WORDS, texts.UNSUPPORTED_MEDIA),
            [],
        ),
        Case("whitespace-only", 5502, lambda tg, u: tg.send_text(u, " \n\t  "), texts.NO_WORDS, []),
        Case(
            "5000-characters",
            5503,
            lambda tg, u: tg.send_text(u, ("Ahoj, jak se máš? " * 300)[:5000]),
            texts.TEXT_TOO_LONG.format(limit=MAX_TEXT),
            [],
        ),
        Case("emoji-only", 5504, lambda tg, u: tg.send_text(u, "😀🎉👍🇨🇿"), texts.NO_WORDS, []),
        Case(
            "voice-of-0-seconds",
            5505,
            lambda tg, u: tg.send_voice(u, audio("silence.ogg"), duration=0),
            texts.DIDNT_CATCH,
            [("voice", "", False)],
            downloads=True,
        ),
        Case(
            "voice-over-the-limit",
            5506,
            lambda tg, u: tg.send_voice(u, audio("ahoj_jak_se_mas.ogg"), MAX_VOICE_SECONDS + 1),
            texts.VOICE_TOO_LONG.format(seconds=MAX_VOICE_SECONDS + 1, limit=MAX_VOICE_SECONDS),
            [],
        ),
        Case(
            "not-audio-sent-as-audio",
            5507,
            lambda tg, u: tg.send_audio(u, audio("corrupt.ogg"), 3, file_name="nahravka.ogg"),
            texts.CANT_HEAR,
            [("voice", "", False)],
            downloads=True,
        ),
        Case(
            "document",
            5508,
            lambda tg, u: tg.send_document(u, b"%PDF-1.4\n%%EOF\n", "ukol.pdf"),
            texts.UNSUPPORTED_MEDIA,
            [],
        ),
        Case("sticker", 5509, lambda tg, u: tg.send_sticker(u, "🐻"), texts.UNSUPPORTED_MEDIA, []),
        Case(
            "bad-setting-value",
            5510,
            lambda tg, u: tg.send_command(u, "level", "galactic"),
            texts.SETTING_BAD_VALUE.format(values=" | ".join(OPTIONS["level"].values)),
            [],
        ),
    ]


def downloads_since(tg: FakeTelegram, mark: int) -> list[str]:
    return [c.method for c in tg.calls[mark:] if c.method in ("getFile", DOWNLOAD)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_input_gets_a_clear_answer(main: Deployment, case: Case) -> None:
    tg, oa, bot, user = main.tg, main.oa, main.bot, case.user
    log_mark, history, mark = len(bot.log_text()), len(oa.history), tg.mark()

    case.send(tg, user)
    (answer, *_) = await wait_texts(tg, user, mark, 1)
    await barrier(tg, user)

    expected = case.answer if isinstance(case.answer, tuple) else (case.answer,)
    assert any(same_text(answer, text) for text in expected), answer
    received = texts_since(tg, user, mark)
    assert received[:-1] == [answer], f"exactly one answer, got {received[:-1]}"
    assert [c for c in oa.history[history:] if c.endpoint == "chat"] == [], "nothing for Honzík"
    if not case.downloads:
        assert downloads_since(tg, mark) == [], "nothing downloaded"
    assert await learner_rows(main.db_url, user) == case.stored
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)


# ------------------------------------------------------------------ the rest of the table


def bot_messages(tg: FakeTelegram, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in tg.messages(chat_id) if m["from"]["id"] == tg.bot_user["id"]]


def press_forged(tg: FakeTelegram, user: int, message: dict[str, Any], data: str) -> str:
    """A callback query with data no button of `message` carries (a forged client)."""
    query_id = f"forged-{user}-{tg.mark()}"
    # The stand-in only lets the bot answer queries it handed out; this one it did.
    tg._open_queries.add(query_id)
    query = {
        "id": query_id,
        "from": tg.add_user(user),
        "message": message,
        "chat_instance": str(user),
        "data": data,
    }
    tg.enqueue({"callback_query": query})
    return query_id


async def alert_for(tg: FakeTelegram, mark: int, query_id: str) -> dict[str, Any]:
    (call,) = await tg.wait_for_method(
        "answerCallbackQuery", since=mark, callback_query_id=query_id, timeout=10
    )
    return call.params


FORGED = [
    "rv:good:999999",
    "set:level:galactic",
    "no-such-button",
    "rv:good:" + "9" * 30,  # an id no integer column holds: OverflowError / DataError once
    "ob:mood:happy",
    "reset:everything",
]


@pytest.mark.parametrize("data", FORGED)
async def test_forged_button_gets_a_stale_alert(main: Deployment, data: str) -> None:
    tg, bot = main.tg, main.bot
    user = 5520 + FORGED.index(data)
    log_mark = len(bot.log_text())
    await barrier(tg, user)  # a bot message (the help) to hang the button on
    message = bot_messages(tg, user)[-1]

    mark = tg.mark()
    query_id = press_forged(tg, user, message, data)
    params = await alert_for(tg, mark, query_id)
    await barrier(tg, user)

    assert same_text(params["text"], texts.STALE_BUTTON), params
    assert params.get("show_alert") in (True, "true"), params
    assert texts_since(tg, user, mark)[:-1] == [], "an alert, no message"
    assert [m["text"] for m in bot_messages(tg, user)][-2] == message["text"], "nothing edited"
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)


async def test_stale_review_button_gets_a_stale_alert(main: Deployment) -> None:
    """A card's button pressed after the learner deleted all their words."""
    tg, bot, user = main.tg, main.bot, 5530
    log_mark = len(bot.log_text())

    async def say(command: str, args: str = "") -> str:
        mark = tg.mark()
        tg.send_command(user, command, args)
        (text, *_) = await wait_texts(tg, user, mark, 1)
        return text

    async def press(data: str) -> str:
        """Press and wait for the message to change; returns its new text."""
        mark = tg.mark()
        tg.press_button(user, None, data)
        (edit,) = await tg.wait_for_method("editMessageText", since=mark, timeout=10)
        return str(edit.result["text"])

    assert same_text(
        await say("save", "pivo - beer"), texts.WORD_SAVED.format(word="pivo", translation="beer")
    )
    await say("review")
    card = bot_messages(tg, user)[-1]
    (show,) = [
        b["callback_data"]
        for row in card["reply_markup"]["inline_keyboard"]
        for b in row
        if b["callback_data"].startswith("rv:show:")
    ]
    await say("reset")
    assert same_text(await press("reset:data"), texts.RESET_CONFIRM)
    assert same_text(await press("reset:confirm"), texts.RESET_DATA_DONE)

    mark = tg.mark()
    tg.press_button(user, card["message_id"], show)
    (call,) = await tg.wait_for_method("answerCallbackQuery", since=mark, timeout=10)
    await barrier(tg, user)

    assert same_text(call.params["text"], texts.STALE_BUTTON), call.params
    assert call.params.get("show_alert") in (True, "true"), call.params
    assert texts_since(tg, user, mark)[:-1] == []
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)


async def test_edited_message_is_not_read(main: Deployment) -> None:
    tg, oa, bot, user = main.tg, main.oa, main.bot, 5540
    log_mark = len(bot.log_text())
    mark = tg.mark()
    tg.send_text(user, "🙂")
    (first,) = await wait_texts(tg, user, mark, 1)
    assert same_text(first, texts.NO_WORDS)
    (mine,) = [m for m in tg.messages(user) if m["from"]["id"] == user]

    mark, history = tg.mark(), len(oa.history)
    tg.edit_text(user, mine["message_id"], "Ahoj, tady je opravená zpráva.")
    (answer,) = await wait_texts(tg, user, mark, 1)
    await barrier(tg, user)

    assert same_text(answer, texts.EDITED), answer
    assert texts_since(tg, user, mark)[:-1] == [answer]
    assert oa.history[history:] == [], "an edit is not a new message for Honzík"
    assert await learner_rows(main.db_url, user) == []
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)


async def test_group_chat_gets_pointed_to_a_private_chat(main: Deployment) -> None:
    tg, oa, bot, user, group = main.tg, main.oa, main.bot, 5550, -1005550
    log_mark, history = len(bot.log_text()), len(oa.history)
    tg.add_user(user, "Skupinový")
    tg.add_group(group, "Čeština v Brně")

    mark = tg.mark()
    tg.send_text(user, "Ahoj všichni, jak se máte?", chat_id=group)
    tg.send_command(user, "help", chat_id=group)
    (call,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=group, timeout=10)
    # The command is handled after the text (same chat, in order), so nothing else will come.

    assert same_text(call.result["text"], texts.GROUP_CHAT), call.result["text"]
    assert call.result.get("reply_to_message"), "the command is answered as a reply"
    assert texts_since(tg, group, mark) == [call.result["text"]], "the plain text is ignored"
    assert texts_since(tg, user, mark) == [], "nothing in private"
    assert oa.history[history:] == []
    assert await learner_rows(main.db_url, user) == []
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)


async def test_nul_and_lone_surrogates_are_stored_and_answered(main: Deployment) -> None:
    await stored_and_answered(main, 5560)


async def test_nul_and_lone_surrogates_are_stored_and_answered_on_postgres(
    pg: Deployment,
) -> None:
    await stored_and_answered(pg, 5561)


async def stored_and_answered(dep: Deployment, user: int) -> None:
    """JSON can carry NUL (PostgreSQL refuses it) and lone surrogates (nothing encodes them):
    the learner's message is kept without the NUL and with U+FFFD, and answered."""
    tg, oa, bot = dep.tg, dep.oa, dep.bot
    log_mark, history = len(bot.log_text()), len(oa.history)
    tg.add_user(user, "Zde\x00něk\udc00")
    mark = tg.mark()
    tg.send_text(user, "Dobrý\x00 den, \ud800jak se máte?")
    (answer,) = await wait_texts(tg, user, mark, 1)
    await barrier(tg, user)

    said = "Dobrý den, \ufffdjak se máte?"
    assert is_answer_to(answer, said), answer
    assert len([c for c in oa.history[history:] if c.endpoint == "chat"]) == 1
    assert await learner_rows(dep.db_url, user) == [("text", said, True)]
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(dep)


async def test_service_messages_are_ignored_and_an_album_gets_one_hint(main: Deployment) -> None:
    tg, oa, bot, user = main.tg, main.oa, main.bot, 5570
    log_mark, history = len(bot.log_text()), len(oa.history)
    tg.add_user(user)
    mark = tg.mark()
    pinned = {"message_id": 1, "date": 0, "chat": {"id": user, "type": "private"}}
    tg.send_service(user, {"pinned_message": pinned})
    tg.send_service(user, {"message_auto_delete_timer_changed": {"message_auto_delete_time": 60}})
    tg.send_service(user, {"write_access_allowed": {"from_request": True}})
    tg.send_album(user, [b"\x89PNG\r\n\x1a\n" + bytes([n]) * 16 for n in range(6)])
    (hint,) = await wait_texts(tg, user, mark, 1)
    await barrier(tg, user)

    assert same_text(hint, texts.UNSUPPORTED_MEDIA), hint
    assert texts_since(tg, user, mark)[:-1] == [hint], "one hint, nothing else"
    assert oa.history[history:] == []
    assert await learner_rows(main.db_url, user) == []
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)
