"""The stand-ins are only useful if the real clients accept them: these tests drive them
with aiogram's `Bot` and the official `openai` client, exactly as the bot does."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import openai
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from aiohttp import web
from aiohttp.test_utils import TestServer
from openai.types.shared_params.response_format_json_schema import (
    JSONSchema,
    ResponseFormatJSONSchema,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tests.standins._common import Pulse, wait_until
from tests.standins.openai import AUDIO_DIR, FakeOpenAI, Refusal, schema_instance
from tests.standins.telegram import DEFAULT_TOKEN, DeliveryAttempt, FakeTelegram

USER = 4242
AHOJ = (AUDIO_DIR / "ahoj_jak_se_mas.ogg").read_bytes()
TTS = (AUDIO_DIR / "tts_reply.ogg").read_bytes()
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="A1", callback_data="level:A1")]]
)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_user(USER, "Olena", username="olena", language_code="uk")
        yield server


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url))
    async with Bot(DEFAULT_TOKEN, session=session) as client:
        yield client


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(oa: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=oa.base_url, api_key="test", max_retries=0) as c:
        yield c


# ------------------------------------------------------------------------- Telegram


@pytest.mark.asyncio
async def test_get_me_and_send_message_with_inline_keyboard(tg: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (123456789, True, "mluv_me_bot")

    sent = await bot.send_message(
        USER, "Ahoj <b>Oleno</b>!", parse_mode="HTML", reply_markup=KEYBOARD
    )

    assert sent.text == "Ahoj Oleno!"
    assert sent.chat.id == USER and sent.from_user is not None and sent.from_user.id == me.id
    assert isinstance(sent.reply_markup, InlineKeyboardMarkup)
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "level:A1"
    [call] = await tg.wait_for_method("sendMessage", chat_id=USER)
    assert call.params["text"] == "Ahoj <b>Oleno</b>!"
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "level:A1"
    assert tg.sent_messages(USER) == ["Ahoj Oleno!"]
    second = await bot.send_message(USER, "Další")
    assert second.message_id == sent.message_id + 1


@pytest.mark.asyncio
async def test_send_voice_upload_reuse_and_download(tg: FakeTelegram, bot: Bot) -> None:
    uploaded = await bot.send_voice(USER, BufferedInputFile(TTS, filename="reply.ogg"))

    assert uploaded.voice is not None and uploaded.voice.duration == 3
    call = (await tg.wait_for_method("sendVoice"))[0]
    assert call.params["voice"].startswith("attach://") and call.files["voice"].data == TTS

    reused = await bot.send_voice(USER, uploaded.voice.file_id)
    assert reused.voice is not None and reused.voice.file_unique_id == uploaded.voice.file_unique_id
    assert tg.sent_voices(USER) == [TTS, TTS]

    file = await bot.get_file(uploaded.voice.file_id)
    assert file.file_size == len(TTS) and file.file_path is not None
    downloaded = await bot.download_file(file.file_path)
    assert isinstance(downloaded, io.BytesIO) and downloaded.getvalue() == TTS


@pytest.mark.asyncio
async def test_user_voice_is_downloadable_by_the_bot(tg: FakeTelegram, bot: Bot) -> None:
    update_id = tg.send_voice(USER, AHOJ)

    [update] = await bot.get_updates(timeout=0)

    assert update.update_id == update_id and update.message is not None
    voice = update.message.voice
    assert voice is not None and voice.duration == 2 and voice.mime_type == "audio/ogg"
    assert update.message.from_user is not None and update.message.from_user.username == "olena"
    data = await bot.download(voice)
    assert isinstance(data, io.BytesIO) and data.getvalue() == AHOJ


@pytest.mark.asyncio
async def test_injected_errors_surface_as_aiogram_exceptions(tg: FakeTelegram, bot: Bot) -> None:
    tg.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(USER, "Ahoj")
    assert retry.value.retry_after == 7

    tg.fail_next("SENDMESSAGE", 500)
    with pytest.raises(TelegramServerError):
        await bot.send_message(USER, "Ahoj")

    await bot.send_message(USER, "Ahoj")
    assert tg.sent_messages(USER) == ["Ahoj"]
    assert [c.status for c in tg.calls if c.method == "sendMessage"] == [429, 500, 200]


@pytest.mark.asyncio
async def test_real_telegram_rejections(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "2 < 3", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(777, "Ahoj")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "a" * 4097)

    sent = await bot.send_message(USER, "Ahoj", reply_markup=KEYBOARD)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Ahoj", chat_id=USER, message_id=sent.message_id, reply_markup=KEYBOARD
        )
    edited = await bot.edit_message_text("Čau", chat_id=USER, message_id=sent.message_id)
    assert isinstance(edited, Message) and edited.text == "Čau" and edited.reply_markup is None

    tg.block_bot(USER)
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(USER, "Ahoj")


@pytest.mark.asyncio
async def test_invalid_inline_buttons_are_refused(tg: FakeTelegram, bot: Bot) -> None:
    def keyboard(**button: Any) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(**button)]])

    refused = {
        "BUTTON_DATA_INVALID": keyboard(text="A1", callback_data="č" * 32 + "x"),  # 65 bytes
        "BUTTON_TEXT_INVALID": keyboard(text=" ", callback_data="level:A1"),
        "Text buttons are unallowed": keyboard(text="A1", callback_data=""),
    }
    for description, markup in refused.items():
        with pytest.raises(TelegramBadRequest, match=description):
            await bot.send_message(USER, "Úroveň?", reply_markup=markup)

    sent = await bot.send_message(USER, "Úroveň?", reply_markup=keyboard(text="A1", url="tg://x"))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.edit_message_reply_markup(
            chat_id=USER, message_id=sent.message_id, reply_markup=refused["BUTTON_DATA_INVALID"]
        )
    await bot.send_message(USER, "64 B", reply_markup=keyboard(text="A1", callback_data="č" * 32))
    assert tg.sent_messages(USER) == ["Úroveň?", "64 B"]


async def raw_call(tg: FakeTelegram, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{tg.base_url}/bot{tg.token}/{method}", json=params) as response,
    ):
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_unknown_parameters_are_refused(tg: FakeTelegram) -> None:
    """Telegram would ignore a misspelt parameter; the stand-in makes it fail the test."""
    status, body = await raw_call(
        tg, "sendMessage", chat_id=USER, text="<b>Ahoj</b>", parse_mod="HTML"
    )
    assert (status, body) == (
        400,
        {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: unknown parameter parse_mod in request",
        },
    )
    status, body = await raw_call(tg, "SENDVOICE", chat_id=USER, voice="x", caption_html="Ahoj")
    assert (status, body["description"]) == (
        400,
        "Bad Request: unknown parameter caption_html in request",
    )
    assert tg.sent_messages(USER) == []

    # Deprecated parameters Telegram still accepts, and methods the stand-in does not model.
    status, _ = await raw_call(
        tg, "sendMessage", chat_id=USER, text="Ahoj", disable_web_page_preview=True
    )
    assert status == 200
    assert (await raw_call(tg, "setChatMenuButton", anything="goes"))[0] == 200


@pytest.mark.asyncio
async def test_button_press_and_callback_answer(tg: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Úroveň?", reply_markup=KEYBOARD)
    with pytest.raises(AssertionError, match="offers"):
        tg.press_button(USER, sent.message_id, "level:C2")

    tg.press_button(USER, None, "level:A1")
    [update] = await bot.get_updates(timeout=0)

    query = update.callback_query
    assert query is not None and query.data == "level:A1" and query.from_user.id == USER
    assert isinstance(query.message, Message) and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="OK")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)


@pytest.mark.asyncio
async def test_user_update_helpers_build_valid_updates(tg: FakeTelegram, bot: Bot) -> None:
    text_id = tg.send_text(USER, "Ahoj")
    tg.send_command(USER, "start", "ref42")
    tg.edit_text(USER, 1, "Ahoj!")
    tg.send_audio(USER, b"ID3 fake mp3", duration=3)
    tg.send_video_note(USER, b"\0\0\0\x18ftypmp42")
    tg.send_sticker(USER)
    tg.send_photo(USER, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x02\x80\0\0\x01\xe0", caption="Foto")
    tg.send_document(USER, b"%PDF-1.4", "lekce.pdf")
    tg.send_text(USER, "Ahoj všem", chat_id=-100123)

    updates = await bot.get_updates(timeout=0)

    assert [u.update_id for u in updates] == list(range(text_id, text_id + 9))
    command = updates[1].message
    assert command is not None and command.text == "/start ref42"
    assert command.entities is not None and command.entities[0].type == "bot_command"
    assert updates[2].edited_message is not None and updates[2].edited_message.text == "Ahoj!"
    kinds = [u.message.content_type for u in updates[3:8] if u.message is not None]
    assert kinds == ["audio", "video_note", "sticker", "photo", "document"]
    photo = updates[6].message
    assert photo is not None and photo.photo is not None and photo.photo[-1].width == 640
    group = updates[8].message
    assert group is not None and group.chat.type == "supergroup" and group.chat.id == -100123


@pytest.mark.asyncio
async def test_get_updates_offset_and_limit(tg: FakeTelegram, bot: Bot) -> None:
    first, second = tg.send_text(USER, "jedna"), tg.send_text(USER, "dva")

    assert [u.update_id for u in await bot.get_updates(limit=1, timeout=0)] == [first]
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [first, second]
    assert await bot.get_updates(offset=second + 1, timeout=0) == []
    third = tg.send_text(USER, "tři")
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [third]


@pytest.mark.asyncio
async def test_long_poll_returns_as_soon_as_an_update_arrives(tg: FakeTelegram, bot: Bot) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await tg.wait_for(lambda c: c.method == "getUpdates", pending=True)
    assert not poll.done()

    update_id = tg.send_text(USER, "Ahoj")

    updates = await asyncio.wait_for(poll, timeout=5)
    assert [u.update_id for u in updates] == [update_id]
    assert time.monotonic() - started < 5


@pytest.mark.asyncio
async def test_second_poller_terminates_the_first(tg: FakeTelegram, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=20))
    await tg.wait_for(lambda c: c.method == "getUpdates", pending=True)

    assert await bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, timeout=5)


@pytest.mark.asyncio
async def test_dispatcher_polling_round_trip(tg: FakeTelegram, bot: Bot) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(f"Řekl jsi: {message.text}")

    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        tg.send_text(USER, "Ahoj")
        await tg.wait_for_method("sendMessage", chat_id=USER)
        assert tg.sent_messages(USER) == ["Řekl jsi: Ahoj"]
    finally:
        await dispatcher.stop_polling()
        await polling


@pytest.mark.asyncio
async def test_wait_for_method_timeout_lists_recorded_calls(tg: FakeTelegram, bot: Bot) -> None:
    await bot.send_chat_action(USER, "typing")
    with pytest.raises(AssertionError, match=r"(?s)sendMessage.*sendChatAction.*typing"):
        await tg.wait_for_method("sendMessage", timeout=0.1)


@pytest.mark.asyncio
async def test_commands_webhook_and_unknown_methods(tg: FakeTelegram, bot: Bot) -> None:
    from aiogram.types import BotCommand

    await bot.set_my_commands([BotCommand(command="start", description="Začít")])
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert await bot.set_chat_menu_button()  # not modelled: recorded, answered ok
    assert tg.calls[-1].method == "setChatMenuButton"

    received: list[str | None] = []

    async def webhook(request: web.Request) -> web.Response:
        received.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", webhook)
    async with TestServer(app, host="127.0.0.1") as server:
        await bot.set_webhook(str(server.make_url("/hook")), secret_token="s3cret")
        with pytest.raises(TelegramConflictError):
            await bot.get_updates(timeout=0)
        update_id = tg.send_text(USER, "Ahoj")
        assert await tg.deliver_webhook(str(server.make_url("/hook")), update_id) == 200
    assert received == ["s3cret"]
    assert await bot.delete_webhook()


# ------------------------------------------------------------- Telegram: webhook push

OTHER = 4343
SECRET = "push_s3cret"
HANG = "hang"
"""A scripted answer: no answer at all (until the test ends), so the stand-in times out."""


class Hook:
    """A webhook on loopback that records what arrives and answers as the test scripts it.

    `answers[update_id]` lists the answers to that update's next requests (a status, a
    (status, Retry-After) pair, or HANG); unscripted requests get 200. While `hold` is
    clear, requests wait before answering.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.secrets: list[str | None] = []
        self.answers: dict[int, list[Any]] = {}
        self.hold = asyncio.Event()
        self.hold.set()
        self.in_flight: list[int] = []
        self.most_in_flight = 0
        self.pulse = Pulse()
        self._over = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        update_id = update["update_id"]
        self.received.append(update)
        self.secrets.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        self.in_flight.append(update_id)
        self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
        self.pulse.notify()
        try:
            script = self.answers.get(update_id)
            answer = script.pop(0) if script else 200
            if answer == HANG:
                await self._over.wait()
            await self.hold.wait()
            status, retry_after = answer if isinstance(answer, tuple) else (answer, None)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return web.Response(status=200 if answer == HANG else status, headers=headers)
        finally:
            self.in_flight.remove(update_id)
            self.pulse.notify()

    def ids(self) -> list[int]:
        return [u["update_id"] for u in self.received]

    async def until(self, check: Any, what: str, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        return await wait_until(self.pulse, check, timeout, lambda: f"{what}; got {self.ids()}")

    def end(self) -> None:
        self._over.set()
        self.hold.set()


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Hook, str]]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        try:
            yield receiver, str(server.make_url("/hook"))
        finally:
            receiver.end()


def accepted(tg: FakeTelegram, update_id: int) -> DeliveryAttempt:
    [attempt] = [a for a in tg.deliveries_of(update_id) if a.ok]
    return attempt


def assert_one_at_a_time(tg: FakeTelegram, chat_updates: list[int]) -> None:
    """Each update of a chat went out only after the previous one was accepted."""
    for earlier, later in itertools.pairwise(chat_updates):
        first_try = tg.deliveries_of(later)[0]
        done = accepted(tg, earlier).finished
        assert done is not None and first_try.started >= done, (earlier, later)


@pytest.mark.asyncio
async def test_webhook_push_is_sequential_per_chat_and_concurrent_across_chats(
    tg: FakeTelegram, bot: Bot, hook: tuple[Hook, str]
) -> None:
    receiver, url = hook
    await bot.set_webhook(url, secret_token=SECRET)
    receiver.hold.clear()
    tg.start_webhook_delivery()
    olena = [tg.send_text(USER, f"zpráva {n}") for n in range(3)]
    other = [tg.send_text(OTHER, f"jiná {n}") for n in range(3)]

    # Both chats' first updates are in flight at once; neither chat's second one is sent.
    await receiver.until(lambda: len(receiver.in_flight) == 2 or None, "two updates in flight")
    assert sorted(receiver.in_flight) == sorted([olena[0], other[0]])
    receiver.hold.set()
    await tg.wait_delivered(olena + other)

    assert [i for i in receiver.ids() if i in olena] == olena
    assert [i for i in receiver.ids() if i in other] == other
    assert sorted(receiver.ids()) == sorted(olena + other), "each delivered once"
    assert set(receiver.secrets) == {SECRET}
    assert receiver.received[0] == tg._updates[olena[0]]
    assert_one_at_a_time(tg, olena)
    assert_one_at_a_time(tg, other)
    # Accepted updates are confirmed: nothing is left for getUpdates or webhook info.
    info = await bot.get_webhook_info()
    assert (info.pending_update_count, info.max_connections) == (0, 40)


@pytest.mark.asyncio
async def test_webhook_push_respects_max_connections(
    tg: FakeTelegram, bot: Bot, hook: tuple[Hook, str]
) -> None:
    receiver, url = hook
    await bot.set_webhook(url, secret_token=SECRET, max_connections=2)
    receiver.hold.clear()
    tg.start_webhook_delivery()
    updates = [tg.send_text(user, "Ahoj") for user in range(7001, 7006)]

    await receiver.until(lambda: len(receiver.in_flight) == 2 or None, "two in flight")
    for served in range(2, len(updates)):
        receiver.hold.set()
        receiver.hold.clear()
        await receiver.until(lambda n=served: len(receiver.received) > n or None, "the next one")
    receiver.hold.set()
    await tg.wait_delivered(updates)

    assert receiver.most_in_flight == 2
    assert sorted(receiver.ids()) == updates


@pytest.mark.asyncio
async def test_webhook_redelivers_after_errors_and_timeouts_and_the_chat_waits(
    tg: FakeTelegram, bot: Bot, hook: tuple[Hook, str]
) -> None:
    receiver, url = hook
    await bot.set_webhook(url, secret_token=SECRET)
    first, second = tg.send_text(USER, "jedna"), tg.send_text(USER, "dva")
    elsewhere = tg.send_text(OTHER, "jinde")
    receiver.answers[first] = [500, (503, 0.05), HANG]
    tg.start_webhook_delivery(timeout=0.3, retry_delay=0.05)

    await tg.wait_delivered([first, second, elsewhere])

    attempts = tg.deliveries_of(first)
    assert [(a.status, a.error) for a in attempts] == [
        (500, None),
        (503, None),
        (None, "timeout"),
        (200, None),
    ]
    assert attempts[1].retry_after == 0.05
    assert receiver.ids().count(first) == 4 and receiver.ids().count(second) == 1
    assert_one_at_a_time(tg, [first, second])
    # The other chat did not wait for the troubled one.
    assert accepted(tg, elsewhere).started < accepted(tg, first).started


@pytest.mark.asyncio
async def test_webhook_retry_goes_to_the_next_replica(
    tg: FakeTelegram, bot: Bot, hook: tuple[Hook, str]
) -> None:
    receiver, url = hook
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    await bot.set_webhook(url, secret_token=SECRET)
    tg.start_webhook_delivery([dead, url], retry_delay=0.01)
    update_id = tg.send_text(USER, "Ahoj")

    await tg.wait_delivered([update_id])

    refused, delivered = tg.deliveries_of(update_id)
    assert (refused.url, refused.status) == (dead, None)
    assert refused.error is not None and "Connect" in refused.error
    assert (delivered.url, delivered.status) == (url, 200)
    assert receiver.ids() == [update_id]


async def raw_get_updates(tg: FakeTelegram, **params: Any) -> list[dict[str, Any]]:
    """getUpdates as plain JSON: what a poller gets before any parsing."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{tg.base_url}/bot{tg.token}/getUpdates", json=params) as response,
    ):
        body = await response.json()
    assert body["ok"], body
    return list(body["result"])


@pytest.mark.asyncio
async def test_get_updates_keeps_updates_until_an_offset_confirms_them(tg: FakeTelegram) -> None:
    first, second = tg.send_text(USER, "jedna"), tg.send_text(USER, "dva")

    batch = await raw_get_updates(tg, timeout=0)
    # The poller dies before confirming: the next one gets the same batch.
    assert [u["update_id"] for u in batch] == [first, second]
    assert await raw_get_updates(tg, timeout=0) == batch
    assert [u["update_id"] for u in await raw_get_updates(tg, offset=first + 1)] == [second]
    assert [u["update_id"] for u in await raw_get_updates(tg)] == [second]
    assert await raw_get_updates(tg, offset=second + 1) == []
    assert await raw_get_updates(tg) == []


@pytest.mark.asyncio
async def test_unparseable_updates_are_queued_and_returned_verbatim(tg: FakeTelegram) -> None:
    hidden = tg.send_unparseable(USER, "Tajná zpráva")
    martian = tg.send_unparseable(USER, origin={"type": "martian", "date": 1})
    raw = {"message": {"message_id": 99, "date": 1, "chat": {"id": USER}, "weird": [1, "č"]}}
    odd = tg.enqueue({"update_id": 1, **raw})

    updates = await raw_get_updates(tg, timeout=0)

    assert [u["update_id"] for u in updates] == [hidden, martian, odd]
    assert updates[0]["message"]["forward_origin"]["type"] == "hidden_user"
    assert "sender_user_name" not in updates[0]["message"]["forward_origin"]
    assert updates[1]["message"]["forward_origin"] == {"type": "martian", "date": 1}
    assert updates[2] == {"update_id": odd, **raw}
    assert list(updates[2]) == ["update_id", "message"]
    for update in updates:
        assert json.loads(json.dumps(update)) == tg._updates[update["update_id"]]
        with pytest.raises(ValidationError):
            Update.model_validate(update)


# --------------------------------------------------------------------------- OpenAI


class Mistake(BaseModel):
    model_config = ConfigDict(extra="forbid")
    original: str
    corrected: str = Field(min_length=3)


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reply: str
    score: int = Field(ge=0, le=100)
    confidence: float = Field(gt=0, lt=1)
    level: Literal["A1", "A2", "B1"]
    mistakes: list[Mistake] = Field(min_length=2, max_length=3)
    tip: str | None


def strict_format(model: type[BaseModel]) -> ResponseFormatJSONSchema:
    schema = model.model_json_schema()
    spec: JSONSchema = {"name": model.__name__, "schema": schema, "strict": True}
    return {"type": "json_schema", "json_schema": spec}


MESSAGES: list[Any] = [{"role": "user", "content": "Ahoj, jak se máš?"}]


@pytest.mark.asyncio
async def test_structured_completion_validates_against_the_schema(
    oa: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        response_format=strict_format(Reply),
    )

    assert completion.object == "chat.completion" and completion.model == "gpt-4o-mini"
    message = completion.choices[0].message
    assert message.role == "assistant" and message.refusal is None
    assert completion.choices[0].finish_reason == "stop"
    reply = Reply.model_validate_json(message.content or "")
    assert reply.score == 50 and 0 < reply.confidence < 1 and len(reply.mistakes) == 2
    assert reply.tip is not None
    assert completion.usage is not None and completion.usage.total_tokens > 0
    [call] = await oa.wait_for_calls("chat")
    assert call.body["response_format"]["json_schema"]["name"] == "Reply"


@pytest.mark.asyncio
async def test_parse_helper_with_scripted_answers_and_refusal(
    oa: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    class Plain(BaseModel):  # no extra="forbid": the client's parse() makes it strict
        reply: str
        score: int = Field(ge=0, le=10)

    parsed = await client.chat.completions.parse(
        model="m", messages=MESSAGES, response_format=Plain
    )
    assert parsed.choices[0].message.parsed == Plain(reply="ukázka reply", score=5)

    oa.script_chat(lambda request: {"reply": request["messages"][-1]["content"], "score": 9})
    parsed = await client.chat.completions.parse(
        model="m", messages=MESSAGES, response_format=Plain
    )
    assert parsed.choices[0].message.parsed == Plain(reply="Ahoj, jak se máš?", score=9)

    oa.script_chat(lambda request: Refusal("To nemohu."))
    parsed = await client.chat.completions.parse(
        model="m", messages=MESSAGES, response_format=Plain
    )
    message = parsed.choices[0].message
    assert message.parsed is None and message.refusal == "To nemohu."

    oa.script_chat(None)
    plain = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert plain.choices[0].message.content == oa.default_reply


@pytest.mark.asyncio
async def test_non_strict_schema_is_rejected_like_openai(client: openai.AsyncOpenAI) -> None:
    class Loose(BaseModel):
        reply: str

    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        await client.chat.completions.create(
            model="m",
            messages=MESSAGES,
            response_format=strict_format(Loose),
        )


def test_schema_instance_covers_refs_nullables_and_bounds() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Word": {"type": "object", "properties": {"w": {"type": "string", "maxLength": 4}}}
        },
        "properties": {
            "words": {"type": "array", "items": {"$ref": "#/$defs/Word"}, "minItems": 2},
            "maybe": {
                "type": ["null", "integer"],
                "exclusiveMinimum": 0,
                "maximum": 9,
                "multipleOf": 3,
            },
            "kind": {"enum": ["noun", "verb"]},
            "fixed": {"const": 7},
            "when": {"type": "string", "format": "date"},
            "padded": {"type": "string", "minLength": 20},
            "flag": {"type": "boolean"},
            "empty": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
        },
    }

    value = schema_instance(schema)

    assert value == {
        "words": [{"w": "ukáz"}, {"w": "ukáz"}],
        "maybe": 3,
        "kind": "noun",
        "fixed": 7,
        "when": "2025-01-15",
        "padded": "ukázka paddedaaaaaaa",
        "flag": True,
        "empty": [],
    }


@pytest.mark.asyncio
async def test_transcriptions_use_the_transcript_table(
    oa: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    result = await client.audio.transcriptions.create(
        file=("voice.ogg", AHOJ, "audio/ogg"), model="whisper-1", language="cs"
    )
    assert result.text == "Ahoj, jak se máš?"

    dobry_den = (AUDIO_DIR / "dobry_den.ogg").read_bytes()
    oa.add_transcript(dobry_den, "Dobrý den!")
    text = await client.audio.transcriptions.create(
        file=("voice.oga", dobry_den), model="whisper-1", response_format="text"
    )
    assert text.strip() == "Dobrý den!"

    oa.default_transcript = "Neznámá nahrávka"
    unknown = await client.audio.transcriptions.create(file=("a.ogg", TTS[:-10]), model="whisper-1")
    assert unknown.text == "Neznámá nahrávka"

    calls = await oa.wait_for_calls("transcriptions", 3)
    assert calls[0].body["language"] == "cs" and calls[0].body["file"]["filename"] == "voice.ogg"
    assert calls[0].audio_sha256 in oa.transcripts


@pytest.mark.asyncio
async def test_transcriptions_reject_bad_audio(client: openai.AsyncOpenAI) -> None:
    corrupt = (AUDIO_DIR / "corrupt.ogg").read_bytes()
    with pytest.raises(openai.BadRequestError, match="corrupted or unsupported"):
        await client.audio.transcriptions.create(file=("voice.ogg", corrupt), model="whisper-1")
    with pytest.raises(openai.BadRequestError, match="Invalid file format"):
        await client.audio.transcriptions.create(file=("voice", AHOJ), model="whisper-1")
    with pytest.raises(openai.BadRequestError, match="corrupted or unsupported"):
        await client.audio.transcriptions.create(file=("voice.ogg", b""), model="whisper-1")


@pytest.mark.asyncio
async def test_speech_returns_real_ogg_opus(oa: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    speech = await client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="coral", input="Výborně!", response_format="opus", speed=0.85
    )
    assert speech.content.startswith(b"OggS") and b"OpusHead" in speech.content
    assert speech.response.headers["content-type"] == "audio/ogg"

    mp3 = await client.audio.speech.create(model="tts-1", voice="alloy", input="Ahoj")
    assert mp3.content.startswith(b"ID3") or mp3.content[0] == 0xFF
    with pytest.raises(openai.BadRequestError, match="Invalid value: 'robot'"):
        await client.audio.speech.create(model="tts-1", voice="robot", input="Ahoj")
    assert [c.body["voice"] for c in oa.calls("speech")] == ["coral", "alloy", "robot"]


@pytest.mark.asyncio
async def test_openai_fault_and_latency_injection(
    oa: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    oa.fail_next("chat", 429, retry_after=2)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.code == "rate_limit_exceeded"
    assert oa.calls("chat")[0].body["messages"] == MESSAGES  # recorded despite the failure

    oa.fail_always("speech", 503)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await client.audio.speech.create(model="tts-1", voice="alloy", input="Ahoj")
    oa.recover()
    assert (await client.audio.speech.create(model="tts-1", voice="alloy", input="Ahoj")).content

    oa.delay["chat"] = 1.0
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=MESSAGES, timeout=0.2)
    assert [c.status for c in oa.calls("chat")][:1] == [429]
