"""The runtime core end to end: how updates get in, and how none is lost or doubled.

Polling: the bot reads getUpdates as raw JSON, skips (logs once, counts) an update its
aiogram cannot parse, keeps every fetched batch in the `inbox` table until each update is
finished, and after a crash handles what is still there. Webhook: two replicas behind the
stand-in's own delivery (one update at a time per chat, retried like Telegram, each attempt
to the next replica); a replica answers only once the update is handled, and an update's
lease in Redis keeps a redelivery from being handled twice, even when the replica holding
it is killed. And a slow Redis slows the bot down without stopping it.

Honzík is scripted to echo what the learner said, so every answer names the message it
answers. Each deployment is module-scoped (spawned together before the first test, see
`SPAWN_EARLY`); tests use learners of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from bot import texts
from tests.e2e._webhook import add_webhook_bot, echo_reply, echoed, hook_url, ready_webhook, scrape
from tests.e2e.harness import (
    BotProcess,
    PostgresDatabase,
    Stack,
    eventually,
    exchange,
    free_port,
    same_text,
    texts_of,
)
from tests.standins.openai import AUDIO_DIR, FIXTURE_TRANSCRIPTS, FakeOpenAI
from tests.standins.telegram import FakeTelegram, TelegramCall

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

UNPARSEABLE = "mluv_updates_unparseable_total"
SECRET_WORDS = "Heslo k trezoru je modrá velryba"
"""The poison message's text: what a learner wrote never reaches the log."""
VOICE = "ahoj_jak_se_mas.ogg"
LEASE_LAPSE = 35.0
"""Upper bound from a kill to the answer by the next owner: the dead process's lease
(about 10-15 s) and its other locks in Redis must lapse first."""
REDIS_LATENCY = 0.45
"""Added to every Redis reply: just under the bot's 0.5 s socket timeout."""

SPAWN_EARLY = ("_polling", "_replicas", "_slow_redis")


# ------------------------------------------------------------------ deployments


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _polling(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One polling bot on its own SQLite file (`fleet.sqlite3` in the stack's directory)."""
    async with Stack(tmp_path_factory.mktemp("polling")) as stack:
        stack.oa.script_chat(echo_reply)
        stack.fleet.spawn("poller")
        yield stack


@pytest_asyncio.fixture(loop_scope="module")
async def polling(_polling: Stack) -> Stack:
    await _polling.fleet.bots[0].ready()
    return _polling


class Replicas:
    """Two webhook replicas on one PostgreSQL and one Redis, fed by the stand-in's delivery."""

    def __init__(self, stack: Stack, database: PostgresDatabase) -> None:
        self.stack, self.database = stack, database
        self.tg, self.oa = stack.tg, stack.oa

    @property
    def bots(self) -> list[BotProcess]:
        return self.stack.fleet.bots


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _replicas(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Replicas]:
    database = PostgresDatabase()
    async with database.created() as url:
        workdir = tmp_path_factory.mktemp("replicas")
        async with Stack(workdir, database_url=url) as stack:
            stack.oa.script_chat(echo_reply)
            for name in ("replica1", "replica2"):
                add_webhook_bot(stack.fleet, name).spawn()
            yield Replicas(stack, database)


@pytest_asyncio.fixture(loop_scope="module")
async def replicas(_replicas: Replicas) -> AsyncIterator[Replicas]:
    """Both replicas registered; the stand-in delivers to them in turn during the test."""
    tg = _replicas.tg
    await asyncio.gather(*(ready_webhook(tg, bot) for bot in _replicas.bots))
    tg.start_webhook_delivery([hook_url(bot) for bot in _replicas.bots], retry_delay=0.2)
    try:
        yield _replicas
    finally:
        await tg.stop_webhook_delivery()


class LatencyProxy:
    """A TCP proxy that hands every reply of its target to the client `latency` s late.

    Requests pass at once; each chunk coming back is held until `latency` seconds after it
    arrived, in order, so one slow reply does not add to the next one's delay.
    """

    def __init__(self, target_port: int, latency: float) -> None:
        self.target_port, self.latency = target_port, latency
        self.port = free_port()
        self.connections = 0
        """Client connections accepted so far."""
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> LatencyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.cancel()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = asyncio.current_task()
        assert link is not None
        self._links.add(link)
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            replies: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
            await asyncio.gather(
                self._pipe(reader, up_writer),
                self._receive(up_reader, replies),
                self._hand_back(replies, writer),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(link)
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    @staticmethod
    async def _receive(reader: asyncio.StreamReader, replies: asyncio.Queue) -> None:
        while data := await reader.read(65536):
            replies.put_nowait((time.monotonic(), data))
        replies.put_nowait((time.monotonic(), b""))

    async def _hand_back(self, replies: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        while True:
            arrived, data = await replies.get()
            if not data:
                return
            await asyncio.sleep(max(0.0, arrived + self.latency - time.monotonic()))
            writer.write(data)
            await writer.drain()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _slow_redis(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Stack, LatencyProxy]]:
    """A polling bot whose Redis answers every call 0.45 s late."""
    stack = Stack(tmp_path_factory.mktemp("slow_redis"))
    async with LatencyProxy(stack.redis.port, REDIS_LATENCY) as proxy, stack:
        stack.fleet.spawn("slow", env={"REDIS_URL": proxy.url()})
        yield stack, proxy


# ------------------------------------------------------------------ helpers


def lines_naming(bots: Iterable[BotProcess], update_id: int) -> list[str]:
    """Log lines (of all these bots) that mention the update id."""
    pattern = re.compile(rf"\b{update_id}\b")
    return [line for bot in bots for line in bot.log_text().splitlines() if pattern.search(line)]


async def unparseable(bots: Iterable[BotProcess]) -> float:
    return sum([(await scrape(bot)).value(UNPARSEABLE) for bot in bots])


def answered_texts(tg: FakeTelegram, learner: int, since: int) -> list[str | None]:
    """What the learner said, as Honzík's answers since `since` echo it, in arrival order."""
    return [
        echoed(c.result["text"])
        for c in tg.calls[since:]
        if c.ok and c.method == "sendMessage" and c.params.get("chat_id") == learner
    ]


async def wait_answers(
    tg: FakeTelegram,
    learners: dict[int, list[str]],
    since: int,
    timeout: float = 20.0,  # noqa: ASYNC109
) -> None:
    """Until every learner has an echoed answer to each of their messages."""

    def complete() -> bool:
        return all(
            len([a for a in answered_texts(tg, learner, since) if a is not None]) >= len(said)
            for learner, said in learners.items()
        )

    await eventually(
        complete,
        timeout=timeout,
        what=lambda: (
            "answers to "
            + str({learner: answered_texts(tg, learner, since) for learner in learners})
        ),
    )


def replies_to(tg: FakeTelegram, learner: int, since: int) -> list[TelegramCall]:
    return [
        c
        for c in tg.calls[since:]
        if c.ok and c.method in ("sendMessage", "sendVoice") and c.params.get("chat_id") == learner
    ]


def sqlite_rows(stack: Stack, sql: str, *params: object) -> list[tuple[object, ...]]:
    path = Path(stack.fleet.database_url.split(":///", 1)[1])
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as conn:
        return list(conn.execute(sql, params))


def learner_messages(placeholder: str) -> str:
    """(kind, text) of a learner's stored messages, oldest first; the Telegram id is bound."""
    return (
        "SELECT m.kind, m.text FROM messages m JOIN users u ON u.id = m.user_id"
        f" WHERE u.telegram_id = {placeholder} AND m.role = 'learner' ORDER BY m.id"
    )


async def postgres_rows(database: PostgresDatabase, sql: str, *params: object) -> list[tuple]:
    conn = await asyncpg.connect(database.url)
    try:
        return [tuple(row) for row in await conn.fetch(sql, *params)]
    finally:
        await conn.close()


async def voice_in_flight(oa: FakeOpenAI, since: int) -> None:
    """Until the voice is transcribed and Honzík's (slowed) completion is under way."""
    await eventually(
        lambda: any(c.endpoint == "transcriptions" and c.ok for c in oa.history[since:]),
        timeout=15,
        what="the transcription of the voice",
    )
    pending = await eventually(
        lambda: [c for c in oa.history[since:] if c.endpoint == "chat"] or None,
        timeout=10,
        what="Honzík's completion request",
    )
    assert pending[0].status is None, "the completion finished before the kill"


THANKS = "Děkuji, to je všechno."


async def then_thanks(tg: FakeTelegram, learner: int) -> None:
    """The learner writes once more and is answered: a duplicate of what came before in the
    chat would have had its turn by then."""
    mark = tg.mark()
    tg.send_text(learner, THANKS)
    await wait_answers(tg, {learner: [THANKS]}, mark, timeout=LEASE_LAPSE)
    await tg.wait_for_method("sendVoice", since=mark, chat_id=learner)


def voice_then_thanks_answered_once(tg: FakeTelegram, learner: int, since: int) -> None:
    """A text answer and a voice for the voice note, then for the thanks: nothing doubled."""
    calls = replies_to(tg, learner, since)
    shown = [str(c) for c in calls]
    assert answered_texts(tg, learner, since) == [FIXTURE_TRANSCRIPTS[VOICE], THANKS], shown
    assert [c.method for c in calls] == ["sendMessage", "sendVoice"] * 2, shown


def send_with_poison(
    tg: FakeTelegram, learners: dict[int, list[str]], poisoned: int
) -> tuple[int, list[int]]:
    """Each learner writes their one message; `poisoned` forwards an unparseable one first,
    so the chat's own message comes right after it. Returns the unparseable update's id
    and the ids of all the updates."""
    ids = []
    for learner, (words,) in learners.items():
        if learner == poisoned:
            ids.append(tg.send_unparseable(learner, SECRET_WORDS))
        ids.append(tg.send_text(learner, words))
    return ids[list(learners).index(poisoned)], ids


# ------------------------------------------------------------------ polling


async def test_polling_skips_an_unparseable_update_and_answers_everyone_else(polling: Stack):
    tg, bot = polling.tg, polling.fleet.bots[0]
    learners = {n: [f"Žák {n} se ptá, jak se máš."] for n in range(8001, 8006)}
    mark = tg.mark()
    poison, ids = send_with_poison(tg, learners, poisoned=8003)

    await wait_answers(tg, learners, mark)

    for learner, said in learners.items():
        assert answered_texts(tg, learner, mark) == said
    logged = lines_naming([bot], poison)
    assert len(logged) == 1, logged
    assert "skipping update" in logged[0] and "message" in logged[0]
    assert SECRET_WORDS not in bot.log_text()
    assert await unparseable([bot]) == 1
    bot.assert_no_traceback()
    # Rows leave the inbox once their updates are finished and confirmed, which the next
    # getUpdates does: another learner's message ends the long poll.
    await exchange(tg, 8099, lambda: tg.send_command(8099, "help"))

    def left() -> list[int]:
        rows = sqlite_rows(polling, "SELECT update_id FROM inbox")
        return [update_id for (update_id,) in rows if update_id in ids]

    await eventually(lambda: not left(), what=lambda: f"an inbox without {left()}")


async def test_polling_sigkill_mid_voice_then_restart_answers_it_once(polling: Stack):
    tg, oa, bot = polling.tg, polling.oa, polling.fleet.bots[0]
    learner, mark, asked = 8101, tg.mark(), len(oa.history)
    oa.delay["chat"] = 5
    try:
        tg.send_voice(learner, (AUDIO_DIR / VOICE).read_bytes())
        await voice_in_flight(oa, asked)
        bot.send_signal(signal.SIGKILL)
        await bot.wait_exit()
    finally:
        oa.delay.pop("chat", None)
    assert not replies_to(tg, learner, mark), "answered before the kill: too late to test"

    await bot.ready()  # the same database: the voice is still in its inbox
    await tg.wait_for_method("sendVoice", since=mark, chat_id=learner, timeout=LEASE_LAPSE)
    await then_thanks(tg, learner)

    voice_then_thanks_answered_once(tg, learner, mark)
    stored = sqlite_rows(polling, learner_messages("?"), learner)
    assert stored == [("voice", FIXTURE_TRANSCRIPTS[VOICE]), ("text", THANKS)]
    bot.assert_no_traceback()


# ------------------------------------------------------------------ webhook replicas


async def test_webhook_registers_max_connections(replicas: Replicas):
    for bot in replicas.bots:
        [call, *_] = await replicas.tg.wait_for_method("setWebhook", url=hook_url(bot))
        assert call.params.get("max_connections") == 100, call


async def test_webhook_skips_an_unparseable_update_with_200(replicas: Replicas):
    tg, bots = replicas.tg, replicas.bots
    learners = {n: [f"Žák {n} píše přes webhook."] for n in range(8201, 8206)}
    mark = tg.mark()
    poison, ids = send_with_poison(tg, learners, poisoned=8203)

    await tg.wait_delivered(ids, timeout=20)
    await wait_answers(tg, learners, mark)

    assert [(a.status, a.error) for a in tg.deliveries_of(poison)] == [(200, None)]
    for learner, said in learners.items():
        assert answered_texts(tg, learner, mark) == said
    logged = lines_naming(bots, poison)
    assert len(logged) == 1, logged
    assert "skipping update" in logged[0] and "message" in logged[0]
    assert not any(SECRET_WORDS in bot.log_text() for bot in bots)
    assert await unparseable(bots) == 1
    for bot in bots:
        bot.assert_no_traceback()


async def test_webhook_replicas_answer_every_update_once_in_order(replicas: Replicas):
    """Four learners write four messages each at once; the stand-in hands each update to the
    next replica. A 2xx comes only once the update is handled, so the answers are all there
    when the last update is accepted."""
    tg, database = replicas.tg, replicas.database
    learners = {
        n: [f"Žák {n} píše zprávu číslo {k}." for k in range(1, 5)] for n in range(8301, 8305)
    }
    mark = tg.mark()
    ids = [tg.send_text(learner, said[k]) for k in range(4) for learner, said in learners.items()]

    accepted = await tg.wait_delivered(ids, timeout=40)

    for learner, said in learners.items():
        assert answered_texts(tg, learner, mark) == said, learner
    assert {a.url for a in accepted.values()} == {hook_url(bot) for bot in replicas.bots}
    for update_id in ids:
        assert [a.status for a in tg.deliveries_of(update_id)] == [200], update_id
    for learner, said in learners.items():
        stored = await postgres_rows(database, learner_messages("$1"), learner)
        assert stored == [("text", words) for words in said], learner


async def test_a_redelivered_finished_update_gets_200_without_a_second_answer(
    replicas: Replicas,
):
    tg, learner = replicas.tg, 8401
    update_id = tg.send_command(learner, "help")
    await tg.wait_delivered([update_id])
    (help_text,) = tg.sent_messages(learner)
    assert same_text(help_text, texts.HELP)
    mark = tg.mark()

    for bot in replicas.bots:
        assert await tg.deliver_webhook(hook_url(bot), update_id) == 200
    await then_thanks(tg, learner)

    assert [c.method for c in replies_to(tg, learner, mark)] == ["sendMessage", "sendVoice"]


async def test_sigkill_of_a_replica_mid_voice_hands_the_update_to_the_other(replicas: Replicas):
    tg, oa, database = replicas.tg, replicas.oa, replicas.database
    learner, mark, asked = 8501, tg.mark(), len(oa.history)
    oa.delay["chat"] = 5
    try:
        update_id = tg.send_voice(learner, (AUDIO_DIR / VOICE).read_bytes())
        await voice_in_flight(oa, asked)
        (first,) = tg.deliveries_of(update_id)
        [victim] = [bot for bot in replicas.bots if hook_url(bot) == first.url]
        [survivor] = [bot for bot in replicas.bots if bot is not victim]
        victim.send_signal(signal.SIGKILL)
        await victim.wait_exit()
    finally:
        oa.delay.pop("chat", None)
    assert not replies_to(tg, learner, mark), "answered before the kill: too late to test"

    await tg.wait_for_method("sendVoice", since=mark, chat_id=learner, timeout=LEASE_LAPSE)
    # The stand-in may have given up on the request that handled it (it answers only when
    # done); the retry after that finds the update done.
    accepted = await tg.wait_delivered([update_id], timeout=15)
    await then_thanks(tg, learner)

    assert accepted[update_id].url == hook_url(survivor)
    voice_then_thanks_answered_once(tg, learner, mark)
    # While a lease was alive the survivor refused with 503 and Retry-After, never with 200.
    attempts = tg.deliveries_of(update_id)
    assert [a.ok for a in attempts].count(True) == 1 and attempts[-1].ok, attempts
    for refused in [a for a in attempts[:-1] if a.url == hook_url(survivor)]:
        refusal = refused.status == 503 and refused.retry_after is not None
        assert refusal or refused.error == "timeout", refused
    stored = await postgres_rows(database, learner_messages("$1"), learner)
    assert stored == [("voice", FIXTURE_TRANSCRIPTS[VOICE]), ("text", THANKS)]
    survivor.assert_no_traceback()


# ------------------------------------------------------------------ slow Redis


async def test_a_warm_help_is_answered_with_a_slow_redis(
    _slow_redis: tuple[Stack, LatencyProxy],
):
    stack, proxy = _slow_redis
    tg, bot = stack.tg, await stack.fleet.bots[0].ready()
    learner = 8601
    for _ in range(2):  # the first one warms the learner's cache entries
        calls = await exchange(tg, learner, lambda: tg.send_command(learner, "help"), timeout=30)
        (answer,) = texts_of(calls)
        assert same_text(answer, texts.HELP)
    assert proxy.connections > 0, "the bot never reached Redis through the slow link"
    bot.assert_no_traceback()
