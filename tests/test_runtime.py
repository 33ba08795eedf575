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
from bot.db.models import InboxUpdate
from bot.runtime.inbox import Inbox
from bot.runtime.order import ChatOrder
from bot.runtime.polling import Poller
from bot.runtime.webhook import SECRET_HEADER, WebhookEndpoint
from tests.conftest import make_config, make_resources
from tests.e2e.harness import eventually
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


# ------------------------------------------------------------------ webhook


@pytest.fixture
async def hook(
    tmp_path: Path, engine: AsyncEngine, fake_redis: FakeAsyncRedis
) -> AsyncIterator[tuple[TestClient[Any, Any], RecordingSession, Resources, Dispatcher]]:
    cache = Cache(fake_redis)
    config = make_config(tmp_path)
    resources = make_resources(config, engine, cache)
    dp = build_dispatcher(resources)
    recorder = RecordingSession()
    bot = Bot("42:TEST-token-for-tests", session=recorder)
    endpoint = WebhookEndpoint(dp, bot, cache, dp["keys"], resources.metrics, SECRET)
    app = web.Application()
    app.router.add_post("/telegram", endpoint.handle)
    async with TestClient(TestServer(app)) as client:
        yield client, recorder, resources, dp


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
