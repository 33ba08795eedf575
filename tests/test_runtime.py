"""The runtime core in process: per-chat order, the polling loop and its inbox, the webhook.

Polling runs the real `Poller` against the stand-in Telegram on loopback; the webhook runs
the real endpoint in an aiohttp test server in front of the real dispatcher.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendMessage
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fakeredis import FakeAsyncRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.app import Resources, build_dispatcher
from bot.cache import Cache
from bot.db.engine import create_sessionmaker
from bot.db.models import InboxUpdate, Message, User
from bot.runtime import parse
from bot.runtime.inbox import Inbox
from bot.runtime.order import ChatOrder
from bot.runtime.parse import loads
from bot.runtime.polling import Poller
from bot.runtime.webhook import SECRET_HEADER, WebhookEndpoint
from tests.conftest import make_config, make_resources
from tests.e2e._webhook import echo_reply
from tests.e2e.harness import eventually
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import DEFAULT_TOKEN, FakeTelegram
from tests.support import updates
from tests.support.recording import RecordingSession

SECRET = "s3cret-Token_for-tests"


# ------------------------------------------------------------------ per-chat order


async def test_one_chat_runs_in_order_while_other_chats_go_ahead() -> None:
    order = ChatOrder()
    ran: list[str] = []
    first_may_finish = asyncio.Event()

    async def step(name: str, gate: asyncio.Event | None = None) -> None:
        if gate is not None:
            await gate.wait()
        ran.append(name)

    order.submit(1, lambda: step("a1", first_may_finish))
    order.submit(1, lambda: step("a2"))
    order.submit(2, lambda: step("b1"))
    await eventually(lambda: "b1" in ran, timeout=5)
    assert ran == ["b1"]  # chat 2 is not held back by chat 1's slow update
    first_may_finish.set()
    await order.idle()
    assert ran == ["b1", "a1", "a2"]


async def test_a_failed_update_does_not_stop_its_chat() -> None:
    order = ChatOrder()
    ran: list[str] = []

    async def fail() -> None:
        raise RuntimeError("boom")

    async def ok() -> None:
        ran.append("next")

    order.submit(7, fail)
    order.submit(7, ok)
    await order.idle()
    assert ran == ["next"]


# ------------------------------------------------------------------ polling


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def live_bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url))
    async with Bot(DEFAULT_TOKEN, session=session) as client:
        yield client


async def inbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(InboxUpdate)) or 0)


ODD_TEXT = "Ahoj\x00, jak se \ud800máš?\udfff"
ODD_NAME = "An\x00na\ud83d"
"""A NUL (PostgreSQL refuses it) and lone surrogates (no encoder writes them), as JSON can
carry them; what is stored is the same text without the NUL and with U+FFFD."""
STORED_TEXT = "Ahoj, jak se \ufffdmáš?\ufffd"
STORED_NAME = "Anna\ufffd"


@pytest.fixture
async def oa() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.script_chat(echo_reply)
        yield server


async def stored(
    engine: AsyncEngine, telegram_id: int
) -> tuple[str | None, list[tuple[str, bool]]]:
    """The learner's first name and their (text, answered) messages."""
    async with create_sessionmaker(engine)() as session:
        user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
        assert user is not None, f"learner {telegram_id} was not stored"
        rows = await session.execute(
            select(Message.text, Message.answered)
            .where(Message.user_id == user.id, Message.role == "learner")
            .order_by(Message.id)
        )
        return user.first_name, [(text, answered) for text, answered in rows]


class Polling:
    """A poller running in the background of a test, stopped like SIGTERM would."""

    def __init__(self, dp: Dispatcher, bot: Bot, engine: AsyncEngine, resources: Resources):
        self.stop = asyncio.Event()
        self.poller = Poller(dp, bot, Inbox(engine), resources.metrics, long_poll=1)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.poller.run(self.stop))

    async def finish(self) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)


async def test_a_poison_update_is_skipped_and_everyone_else_answered(
    telegram: FakeTelegram,
    live_bot: Bot,
    engine: AsyncEngine,
    resources: Resources,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dp = build_dispatcher(resources)
    learners = range(3001, 3006)
    telegram.send_text(3001, "/help")
    poison = telegram.send_unparseable(3009, "Moje telefonní číslo je 777 123 456")
    for learner in learners[1:]:
        telegram.send_text(learner, "/help")
    polling = Polling(dp, live_bot, engine, resources)
    with caplog.at_level(logging.WARNING, logger="bot.runtime.parse"):
        polling.start()
        for learner in learners:
            await telegram.wait_for_method("sendMessage", chat_id=learner, timeout=15)
        await polling.finish()
    skipped = [r.getMessage() for r in caplog.records if str(poison) in r.getMessage()]
    assert len(skipped) == 1
    assert "message" in skipped[0] and "777" not in skipped[0]
    assert resources.metrics.updates_unparseable._value.get() == 1
    assert await inbox_rows(engine) == 0  # all finished and confirmed


async def test_updates_left_in_the_inbox_are_handled_first_and_once(
    telegram: FakeTelegram,
    live_bot: Bot,
    engine: AsyncEngine,
    resources: Resources,
) -> None:
    """A run that died after storing a batch: Telegram sends it again, it is handled once."""
    first = telegram.send_text(3101, "/help")
    second = telegram.send_text(3101, "/stats")
    batch = [json.loads(json.dumps(u)) for u in telegram._pending]  # as the dead run got them
    await Inbox(engine).add(batch)
    later = telegram.send_text(3101, "/help")
    dp = build_dispatcher(resources)
    polling = Polling(dp, live_bot, engine, resources)
    polling.start()
    await eventually(lambda: len(telegram.sent_messages(3101)) >= 3, timeout=20)
    await polling.finish()
    assert len(telegram.sent_messages(3101)) == 3  # nothing answered twice
    assert telegram.sent_messages(3101)[0] == texts.HELP  # the inbox's first update first
    assert first < second < later
    assert await inbox_rows(engine) == 0


async def test_a_fetched_batch_is_in_the_inbox_before_it_is_confirmed(
    telegram: FakeTelegram,
    live_bot: Bot,
    engine: AsyncEngine,
    resources: Resources,
) -> None:
    dp = build_dispatcher(resources)
    gate = asyncio.Event()
    seen_rows: list[int] = []

    async def slow_help(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        seen_rows.append(await inbox_rows(engine))
        await gate.wait()
        return await handler(event, data)

    dp.update.outer_middleware(slow_help)
    telegram.send_text(3201, "/help")
    polling = Polling(dp, live_bot, engine, resources)
    polling.start()
    await eventually(lambda: seen_rows or None, timeout=10)
    assert seen_rows == [1]  # the row exists while its update runs
    gate.set()
    await polling.finish()
    assert await inbox_rows(engine) == 0


async def test_polling_stores_and_answers_text_with_nul_and_lone_surrogates(
    telegram: FakeTelegram, live_bot: Bot, engine: AsyncEngine, tmp_path: Path, oa: FakeOpenAI
) -> None:
    resources = make_resources(
        make_config(tmp_path, openai_base_url=oa.base_url), engine, Cache(FakeAsyncRedis())
    )
    dp = build_dispatcher(resources)
    telegram.add_user(3401, ODD_NAME)
    telegram.send_text(3401, ODD_TEXT)
    polling = Polling(dp, live_bot, engine, resources)
    polling.start()
    (answer,) = await telegram.wait_for_method("sendMessage", chat_id=3401, timeout=15)
    await polling.finish()
    await resources.openai.close()
    assert STORED_TEXT in answer.result["text"]
    assert await stored(engine, 3401) == (STORED_NAME, [(STORED_TEXT, True)])
    assert await inbox_rows(engine) == 0


async def test_inbox_rows_with_escaped_nul_and_surrogates_come_back_clean(
    engine: AsyncEngine,
) -> None:
    """Rows a previous version stored raw are made storable when they are read back."""
    inbox = Inbox(engine)
    await inbox.add([{"update_id": 5, "message": {"text": ODD_TEXT, "\ud800": ODD_NAME}}])
    assert await inbox.pending() == [
        {"update_id": 5, "message": {"text": STORED_TEXT, "\ufffd": STORED_NAME}}
    ]


def test_loads_makes_nul_and_lone_surrogates_storable_wherever_they_are() -> None:
    assert loads(b'{"t": "\\uD800a\\u0000b\\udfff", "\\ud83d": ["\\u0000"]}') == {
        "t": "\ufffdab\ufffd",
        "\ufffd": [""],
    }
    assert loads(b'{"t": "\xed\xa0\x80"}') == {"t": "\ufffd"}  # unescaped, as bytes
    assert loads(b'["\\ud83d\\ude00", "\\ude00", "\\ud83d\\ude00\\ud83d"]') == [
        "😀",
        "\ufffd",
        "😀\ufffd",
    ]
    assert loads('{"t": "\\ud83d\\ude00 \\\\u0000"}') == {"t": "😀 \\u0000"}  # no NUL
    assert loads(nested(900, '"\\u0000"').encode()) == json.loads(nested(900, '""'))


def test_loads_walks_only_a_body_that_can_hold_odd_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-update cost of a clean body is one scan of its bytes, never a walk."""

    def walk(raw: Any) -> Any:
        raise AssertionError("walked a clean body")

    monkeypatch.setattr(parse, "clean", walk)
    update = {"message": {"text": "Ahoj 😀, jak se máš? \ud7ff\U0010ffff", "ř": "\\"}}
    for body in (json.dumps(update), json.dumps(update, ensure_ascii=False)):
        assert loads(body.encode("utf-8", "surrogatepass")) == update


# ------------------------------------------------------------------ webhook


@pytest.fixture
async def hook(
    tmp_path: Path, engine: AsyncEngine, fake_redis: FakeAsyncRedis, oa: FakeOpenAI
) -> AsyncIterator[tuple[TestClient[Any, Any], RecordingSession, Resources, Dispatcher]]:
    cache = Cache(fake_redis)
    config = make_config(tmp_path, openai_base_url=oa.base_url)
    resources = make_resources(config, engine, cache)
    dp = build_dispatcher(resources)
    recorder = RecordingSession()
    bot = Bot("42:TEST-token-for-tests", session=recorder)
    endpoint = WebhookEndpoint(dp, bot, cache, dp["keys"], resources.metrics, SECRET)
    app = web.Application()
    app.router.add_post("/telegram", endpoint.handle)
    async with TestClient(TestServer(app)) as client:
        yield client, recorder, resources, dp
    await resources.openai.close()


def body(update: Any) -> str:
    return str(update.model_dump_json(exclude_none=True))


async def post(client: TestClient[Any, Any], payload: str, secret: str = SECRET) -> int:
    response = await client.post(
        "/telegram",
        data=payload.encode("utf-8", "surrogatepass"),
        headers={SECRET_HEADER: secret, "Content-Type": "application/json"},
    )
    return response.status


async def test_webhook_answers_a_redelivered_done_update_without_handling_it(hook: Any) -> None:
    client, recorder, _, _ = hook
    update = updates.message("/help", user=updates.learner(3301))
    assert [await post(client, body(update)) for _ in range(3)] == [200, 200, 200]
    assert [r.text for r in recorder.of(SendMessage)] == [texts.HELP]


async def test_webhook_refuses_to_confirm_an_update_another_replica_holds(hook: Any) -> None:
    client, recorder, _, dp = hook
    gate, started = asyncio.Event(), asyncio.Event()

    async def held(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        started.set()
        await gate.wait()
        return await handler(event, data)

    dp.message.outer_middleware(held)
    update = updates.message("/help", user=updates.learner(3302))
    first = asyncio.create_task(post(client, body(update)))
    await asyncio.wait_for(started.wait(), 10)
    response = await client.post("/telegram", data=body(update), headers={SECRET_HEADER: SECRET})
    assert response.status == 503 and int(response.headers["Retry-After"]) >= 1
    gate.set()
    assert await first == 200
    assert [r.text for r in recorder.of(SendMessage)] == [texts.HELP]


async def test_redeliveries_of_an_update_in_flight_cost_no_rate_limit(
    hook: Any, fake_redis: FakeAsyncRedis
) -> None:
    """Telegram retries an update every second while its replica is slow (or dead): those
    refused retries are not the learner's messages and must not use up their minute."""
    client, recorder, _, dp = hook
    gate, started = asyncio.Event(), asyncio.Event()

    async def held(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        if not started.is_set():
            started.set()
            await gate.wait()
        return await handler(event, data)

    dp.message.outer_middleware(held)
    user = updates.learner(3310)
    update = updates.message("/help", user=user)
    first = asyncio.create_task(post(client, body(update)))
    await asyncio.wait_for(started.wait(), 10)
    for _ in range(25):  # more than RATE_LIMIT_PER_MINUTE (20)
        assert await post(client, body(update)) == 503
    gate.set()
    assert await first == 200
    assert await post(client, body(updates.message("/help", user=user))) == 200
    assert [r.text for r in recorder.of(SendMessage)] == [texts.HELP, texts.HELP]


async def test_webhook_releases_the_lease_of_a_failed_update(
    hook: Any, fake_redis: FakeAsyncRedis
) -> None:
    client, recorder, _, dp = hook
    failures = [RuntimeError("database restarting")]

    async def flaky(handler: Any, event: Any, data: dict[str, Any]) -> Any:
        if failures:
            raise failures.pop()
        return await handler(event, data)

    dp.update.outer_middleware(flaky)
    update = updates.message("/help", user=updates.learner(3303))
    assert await post(client, body(update)) == 200  # the learner was told; nothing to retry
    assert [r.text for r in recorder.of(SendMessage)] == [texts.SOMETHING_WENT_WRONG]
    assert not await fake_redis.keys("update:*")  # released: a redelivery is handled afresh
    assert await post(client, body(update)) == 200
    assert [r.text for r in recorder.of(SendMessage)][-1] == texts.HELP
    assert await fake_redis.get(f"update:42:{update.update_id}") == b"done"


async def test_webhook_skips_an_unreadable_update_with_200(hook: Any) -> None:
    client, recorder, resources, _ = hook
    poison = {
        "update_id": 77,
        "message": {
            "message_id": 1,
            "date": 1,
            "chat": {"id": 3304, "type": "private"},
            "from": {"id": 3304, "is_bot": False, "first_name": "A"},
            "text": "ahoj",
            "forward_origin": {"type": "hidden_user", "date": 1},
        },
    }
    assert await post(client, json.dumps(poison)) == 200
    assert resources.metrics.updates_unparseable._value.get() == 1
    assert not recorder.of(SendMessage)


@pytest.mark.parametrize("secret", ["", "wrong", "žluťoučký"])
async def test_webhook_without_the_right_secret_is_401(hook: Any, secret: str) -> None:
    client, recorder, _, _ = hook
    update = updates.message("/help", user=updates.learner(3305))
    response = await client.post(
        "/telegram",
        data=body(update),
        headers={SECRET_HEADER: secret.encode().decode("latin-1")},
    )
    assert response.status == 401
    assert not recorder.of(SendMessage)


async def test_webhook_with_a_secret_header_that_is_not_utf8_is_401(hook: Any) -> None:
    client, recorder, _, _ = hook
    payload = body(updates.message("/help", user=updates.learner(3306))).encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    head = (
        b"POST /telegram HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n"
        + SECRET_HEADER.encode()
        + b": \xff\xfe"
        + SECRET.encode()
        + b"\xc3\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
    )
    writer.write(head + payload)
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"401", status_line
    assert not recorder.of(SendMessage)


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


def help_with(field: str, value: str) -> str:
    """A /help whose message carries `field` (a raw JSON value) as well."""
    update = json.loads(body(updates.message("/help", user=updates.learner(3307))))
    return json.dumps(update)[:-2] + f', "{field}": {value}}}}}'


def replying_to(depth: int) -> str:
    """A message that replies to a reply to a reply … `depth` deep (JSON nests 2 per level)."""
    update = json.loads(body(updates.message("/help", user=updates.learner(3307))))
    inner = {k: update["message"][k] for k in ("message_id", "date", "chat")}
    message = dict(inner)
    for _ in range(depth):
        message = {**inner, "reply_to_message": message}
    return json.dumps({**update, "message": {**update["message"], "reply_to_message": message}})


@pytest.mark.parametrize(
    ("payload", "status", "answered"),
    [
        (nested(100_000), 400, False),  # beyond `json.loads`
        (help_with("extra", nested(900)), 200, True),  # parseable; aiogram keeps the extra
        (help_with("extra", nested(900, '"\\u0000"')), 200, True),  # and walks it to clean
        (replying_to(400), 200, False),  # beyond pydantic's recursion limit: unreadable
        ('{"update_id": 1, "message": ' * 5000, 400, False),
    ],
    ids=["lists", "deep-extra", "deep-extra-with-nul", "deep-replies", "truncated"],
)
async def test_webhook_answers_deeply_nested_json_with_a_clean_status(
    hook: Any, caplog: pytest.LogCaptureFixture, payload: str, status: int, answered: bool
) -> None:
    client, recorder, _, _ = hook
    assert await post(client, payload) == status
    assert [r.text for r in recorder.of(SendMessage)] == ([texts.HELP] if answered else [])
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


async def test_webhook_stores_and_answers_text_with_nul_and_lone_surrogates(
    hook: Any, engine: AsyncEngine
) -> None:
    client, recorder, _, _ = hook
    update = updates.message(ODD_TEXT, user=updates.learner(3308, first_name=ODD_NAME))
    payload = json.dumps(update.model_dump(mode="json", exclude_none=True))
    assert "\\ud800" in payload and "\\u0000" in payload  # as Telegram escapes them
    assert await post(client, payload) == 200
    (answer,) = [r.text for r in recorder.of(SendMessage)]
    assert STORED_TEXT in answer
    assert await stored(engine, 3308) == (STORED_NAME, [(STORED_TEXT, True)])
