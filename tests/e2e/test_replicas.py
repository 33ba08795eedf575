"""Prove it: two replicas in webhook mode on one PostgreSQL and one Redis.

Both `python -m bot` processes start at the same moment on a fresh database: the test holds
the migrations' advisory lock until both wait on it, then one migrates and the other finds
the schema at head; each registers its own webhook. Several learners then talk at once, with
texts and voice notes, and the Telegram stand-in pushes their updates as Telegram does: one
at a time per chat, chats concurrently, each attempt to a replica picked at random, so a
learner's messages are spread over both replicas. Honzík is scripted to echo what the
learner said, so every answer names the message it answers: each must be answered exactly
once, in the learner's order, and the numbers in PostgreSQL must agree with the messages
stored there. Finally the same update reaches both replicas at once, as when Telegram
retries after a timeout while the first attempt is still running: one replica handles it,
the other answers 503 (lease alive) or 200 (done), never a second answer.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import asyncpg
import pytest
import pytest_asyncio

from bot.db.migrate import MIGRATION_LOCK_ID
from tests.e2e._webhook import (
    SECRET,
    add_webhook_bot,
    echo_reply,
    echoed,
    handled,
    hook_url,
    ready_webhook,
)
from tests.e2e.harness import BotProcess, PostgresDatabase, Stack, eventually
from tests.standins.openai import AUDIO_DIR, FIXTURE_TRANSCRIPTS, FakeOpenAI
from tests.standins.telegram import DeliveryAttempt, FakeTelegram, TelegramCall

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LEARNERS = range(5001, 5009)
VOICES = ("ahoj_jak_se_mas.ogg", "dobry_den.ogg")
CONVERSATION_HANDLERS = (
    "bot.handlers.conversation.on_text",
    "bot.handlers.conversation.on_voice",
)
SLOW = 0.3
"""Seconds Honzík (and Whisper) take per request during the conversation: a voice note takes
longer than a text, so a text could overtake the voice before it if order were not kept."""

MIGRATED = "database schema is at head"

SPAWN_EARLY = ("_replicas",)


@dataclass(frozen=True)
class Said:
    """One message of a learner: a text, or a voice note (`audio`) with its transcript."""

    words: str
    audio: str | None = None


def script(learner: int) -> list[Said]:
    """Five messages, two of them voice notes; every text is unique to its learner."""
    return [
        Said(f"Žák {learner} píše první zprávu."),
        Said(FIXTURE_TRANSCRIPTS[VOICES[0]], VOICES[0]),
        Said(f"Žák {learner} píše třetí zprávu."),
        Said(FIXTURE_TRANSCRIPTS[VOICES[1]], VOICES[1]),
        Said(f"Žák {learner} píše poslední zprávu."),
    ]


class Replicas:
    """Two webhook replicas on one fresh PostgreSQL and one Redis."""

    def __init__(self, stack: Stack, database: PostgresDatabase) -> None:
        self.stack, self.database = stack, database
        self.tg, self.oa = stack.tg, stack.oa
        self.waited_on_the_lock = 0
        """How many replicas were seen waiting on the migrations' advisory lock together."""

    @property
    def bots(self) -> list[BotProcess]:
        return self.stack.fleet.bots

    def urls(self) -> list[str]:
        return [hook_url(bot) for bot in self.bots]

    def bot_at(self, url: str) -> BotProcess:
        (bot,) = [bot for bot in self.bots if hook_url(bot) == url]
        return bot


@dataclass
class Conversation:
    """What the learners sent, per learner: (update id, message) in their order."""

    sent: dict[int, list[tuple[int, Said]]]
    accepted: dict[int, DeliveryAttempt]
    """The accepting (2xx) delivery of each update."""
    mark: int
    """Where the conversation starts in the stand-in's calls."""

    @property
    def updates(self) -> list[int]:
        return [update for sent in self.sent.values() for update, _ in sent]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _replicas(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Replicas]:
    database = PostgresDatabase()
    async with (
        database.created() as url,
        Stack(tmp_path_factory.mktemp("replicas"), database_url=url) as stack,
    ):
        stack.oa.script_chat(echo_reply)
        replicas = Replicas(stack, database)
        replicas.waited_on_the_lock = await start_together(replicas)
        yield replicas


async def start_together(replicas: Replicas) -> int:
    """Spawn both replicas while holding the migrations' advisory lock, and release it once
    both wait on it (or have got past their migrations without it, or died), so that they
    migrate at the same moment. Returns how many were seen waiting on the lock together."""
    conn = await asyncpg.connect(replicas.database.url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1::bigint)", MIGRATION_LOCK_ID)
        for name in ("replica1", "replica2"):
            add_webhook_bot(replicas.stack.fleet, name).spawn()

        async def waiting() -> int | None:
            found = await conn.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE d.datname = current_database() AND l.locktype = 'advisory'"
                " AND l.objid = $1 AND NOT l.granted",
                MIGRATION_LOCK_ID,
            )
            past = all(MIGRATED in bot.log_text() or not bot.running for bot in replicas.bots)
            return found if found == len(replicas.bots) or past else None

        try:
            return await eventually(waiting, timeout=30, what="both replicas at the lock")
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1::bigint)", MIGRATION_LOCK_ID)
    finally:
        await conn.close()


async def replicas_ready(replicas: Replicas) -> Replicas:
    await asyncio.gather(*(ready_webhook(replicas.tg, bot) for bot in replicas.bots))
    return replicas


@pytest_asyncio.fixture(loop_scope="module")
async def replicas(_replicas: Replicas) -> Replicas:
    return await replicas_ready(_replicas)


@asynccontextmanager
async def delivering(
    replicas: Replicas,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109
    balance: Literal["round_robin", "random"] = "round_robin",
    seed: int | None = None,
) -> AsyncIterator[None]:
    """The stand-in pushes queued updates to the replicas, as Telegram does, meanwhile."""
    replicas.tg.start_webhook_delivery(
        replicas.urls(), timeout=timeout, retry_delay=0.1, balance=balance, seed=seed
    )
    try:
        yield
    finally:
        await replicas.tg.stop_webhook_delivery()


@asynccontextmanager
async def slowed(oa: FakeOpenAI, seconds: float, *endpoints: str) -> AsyncIterator[None]:
    for endpoint in endpoints:
        oa.delay[endpoint] = seconds
    try:
        yield
    finally:
        for endpoint in endpoints:
            oa.delay.pop(endpoint, None)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def talked(_replicas: Replicas) -> Conversation:
    """All learners write their five messages at once, as fast as Telegram lets them through.

    Every message is queued at the start; the stand-in sends a learner's next one only once
    the previous was answered with a 2xx, and picks a replica at random for each attempt.
    """
    replicas = await replicas_ready(_replicas)
    tg = replicas.tg
    sent: dict[int, list[tuple[int, Said]]] = {}
    for learner in LEARNERS:
        tg.add_user(learner, f"Žák {learner}", language_code="uk")
    mark = tg.mark()
    for step in range(len(script(LEARNERS[0]))):
        for learner in LEARNERS:
            said = script(learner)[step]
            if said.audio is None:
                update = tg.send_text(learner, said.words)
            else:
                update = tg.send_voice(learner, (AUDIO_DIR / said.audio).read_bytes())
            sent.setdefault(learner, []).append((update, said))
    updates = [update for messages in sent.values() for update, _ in messages]
    async with (
        slowed(replicas.oa, SLOW, "chat", "transcriptions"),
        delivering(replicas, balance="random", seed=20240611),
    ):
        accepted = await tg.wait_delivered(updates, timeout=40)
    return Conversation(sent, accepted, mark)


def replies(tg: FakeTelegram, learner: int, since: int) -> list[TelegramCall]:
    """The bot's sendMessage and sendVoice calls to the learner, in the order they arrived."""
    return [
        c
        for c in tg.calls[since:]
        if c.ok and c.method in ("sendMessage", "sendVoice") and c.params.get("chat_id") == learner
    ]


def answers(tg: FakeTelegram, learner: int, since: int) -> list[str | None]:
    """What the learner said, as Honzík's answers echo it, in the order they arrived."""
    return [
        echoed(c.result["text"]) for c in replies(tg, learner, since) if c.method == "sendMessage"
    ]


async def stored_texts(database: PostgresDatabase, learner: int) -> list[tuple[str, str]]:
    """(kind, text) of the learner's stored messages, in the order they were stored."""
    conn = await asyncpg.connect(database.url)
    try:
        rows = await conn.fetch(
            "SELECT m.kind, m.text FROM messages m JOIN users u ON u.id = m.user_id"
            " WHERE u.telegram_id = $1 AND m.role = 'learner' ORDER BY m.created_at, m.id",
            learner,
        )
    finally:
        await conn.close()
    return [(row["kind"], row["text"]) for row in rows]


def stored_form(said: Sequence[Said]) -> list[tuple[str, str]]:
    return [("text" if s.audio is None else "voice", s.words) for s in said]


async def conversations_handled(bots: Sequence[BotProcess]) -> float:
    return (await handled(bots, *CONVERSATION_HANDLERS))[0]


# ------------------------------------------------------------------ tests


async def test_both_replicas_start_together_and_register_their_own_webhook(replicas: Replicas):
    # Both waited on the migrations' advisory lock at the same moment; once it was free, one
    # replica migrated and the other then found the schema at head.
    assert replicas.waited_on_the_lock == 2
    for bot in replicas.bots:
        status, body = await bot.health()
        assert (status, body["database"], body["redis"]) == (200, "healthy", "healthy")
        assert MIGRATED in bot.log_text()
        bot.assert_no_traceback()
    migrated = [bot.name for bot in replicas.bots if "Running upgrade" in bot.log_text()]
    assert len(migrated) == 1, migrated
    registered = [c.params["url"] for c in replicas.tg.calls if c.method == "setWebhook" and c.ok]
    assert sorted(registered) == sorted(replicas.urls())
    conn = await asyncpg.connect(replicas.database.url)
    try:
        versions = await conn.fetch("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    assert len(versions) == 1, versions


async def test_every_update_is_answered_exactly_once_in_the_learners_order(
    replicas: Replicas, talked: Conversation
):
    tg = replicas.tg
    for learner, sent in talked.sent.items():
        said = [s for _, s in sent]
        calls = replies(tg, learner, talked.mark)
        shown = [str(c) for c in calls]
        assert answers(tg, learner, talked.mark) == [s.words for s in said], shown
        # Each text answer is followed by its own voice, never by the next message's answer.
        assert [c.method for c in calls] == ["sendMessage", "sendVoice"] * len(said), shown
        assert await stored_texts(replicas.database, learner) == stored_form(said), learner
    # Each update was accepted at its first attempt: no refusal, no failure, no retry.
    for update in talked.updates:
        assert [a.status for a in tg.deliveries_of(update)] == [200], update


async def test_the_learners_were_served_by_both_replicas(replicas: Replicas, talked: Conversation):
    """The order above held across replicas: learners had their messages handled by both."""
    serving = {
        learner: [talked.accepted[update].url for update, _ in sent]
        for learner, sent in talked.sent.items()
    }
    switched = [learner for learner, urls in serving.items() if len(set(urls)) > 1]
    assert switched, serving
    per_bot = {bot.name: await conversations_handled([bot]) for bot in replicas.bots}
    by_url = {
        replicas.bot_at(url).name: sum(a.url == url for a in talked.accepted.values())
        for url in replicas.urls()
    }
    assert all(by_url.values()), by_url
    # A replica's handlers ran for exactly the updates it accepted (and none it did not).
    assert per_bot == by_url


async def test_stats_agree_with_the_stored_messages(replicas: Replicas, talked: Conversation):
    conn = await asyncpg.connect(replicas.database.url)
    try:
        users = dict(
            await conn.fetch(
                "SELECT telegram_id, id FROM users WHERE telegram_id = ANY($1::bigint[])",
                list(LEARNERS),
            )
        )
        counts = {
            (row["user_id"], row["role"], row["kind"]): row["n"]
            for row in await conn.fetch(
                "SELECT user_id, role, kind, count(*) AS n FROM messages"
                " GROUP BY user_id, role, kind"
            )
        }
        stats = {
            row["user_id"]: row
            for row in await conn.fetch(
                "SELECT user_id, sum(messages) AS messages, sum(voice_messages) AS voice"
                " FROM daily_stats GROUP BY user_id"
            )
        }
        duplicates = await conn.fetch(
            "SELECT user_id, telegram_message_id, count(*) FROM messages WHERE role = 'learner'"
            " GROUP BY user_id, telegram_message_id HAVING count(*) > 1"
        )
    finally:
        await conn.close()

    assert sorted(users) == sorted(LEARNERS), "one row per learner, created once"
    assert duplicates == [], f"learner messages stored twice: {duplicates}"
    for learner, sent in talked.sent.items():
        user_id = users[learner]
        voices = sum(s.audio is not None for _, s in sent)
        texts = len(sent) - voices
        assert counts.get((user_id, "learner", "voice"), 0) == voices, learner
        assert counts.get((user_id, "learner", "text"), 0) == texts, learner
        teacher = sum(n for (u, role, _), n in counts.items() if u == user_id and role == "teacher")
        assert teacher == len(sent), learner
        assert (stats[user_id]["messages"], stats[user_id]["voice"]) == (len(sent), voices), (
            learner,
            dict(stats[user_id]),
        )


async def test_one_update_posted_to_both_replicas_at_once_is_answered_once(
    replicas: Replicas,
):
    """Four learners' messages (two texts, two voice notes), each POSTed to both replicas at
    the same moment, all at once: the lease lets one replica handle each; the other answers
    503 while that one is still running (or 200 once it is done)."""
    tg, oa = replicas.tg, replicas.oa
    learners = {
        5201: Said("Žák 5201 to posílá dvakrát."),
        5202: Said(FIXTURE_TRANSCRIPTS[VOICES[0]], VOICES[0]),
        5203: Said("Žák 5203 to posílá dvakrát."),
        5204: Said(FIXTURE_TRANSCRIPTS[VOICES[1]], VOICES[1]),
    }
    rng = random.Random(5200)
    before = await conversations_handled(replicas.bots)
    mark = tg.mark()
    updates = {
        learner: tg.send_text(learner, said.words)
        if said.audio is None
        else tg.send_voice(learner, (AUDIO_DIR / said.audio).read_bytes())
        for learner, said in learners.items()
    }

    async def both_at_once(update: int) -> list[int]:
        order = rng.sample(replicas.urls(), k=2)
        return await asyncio.gather(
            *(tg.deliver_webhook(url, update, secret_token=SECRET) for url in order)
        )

    async with slowed(oa, 0.5, "chat"):
        statuses = await asyncio.gather(*(both_at_once(u) for u in updates.values()))

    outcomes = dict(zip(updates, map(sorted, statuses), strict=True))
    assert all(o in ([200, 503], [200, 200]) for o in outcomes.values()), outcomes
    assert any(o == [200, 503] for o in outcomes.values()), f"no lease was contended: {outcomes}"
    # Both requests of each update have been answered, and a replica answers only once it is
    # done: whatever either replica sent the learner is there by now.
    for learner, said in learners.items():
        calls = replies(tg, learner, mark)
        assert [c.method for c in calls] == ["sendMessage", "sendVoice"], [str(c) for c in calls]
        assert answers(tg, learner, mark) == [said.words]
        assert await stored_texts(replicas.database, learner) == stored_form([said])
    assert await conversations_handled(replicas.bots) - before == len(learners)


async def test_a_retry_after_a_timeout_waits_for_the_first_attempt_and_keeps_the_order(
    replicas: Replicas,
):
    """Telegram gives up on a slow answer after `timeout` and retries while the first
    attempt is still being handled; the retries reach the other replica too. They are
    refused with 503 and Retry-After until the first attempt is done, then get 200 without
    a second answer, and the learner's next message waits its turn."""
    tg, oa = replicas.tg, replicas.oa
    learner = 5301
    said = [f"Žák {learner} čeká na odpověď.", f"Žák {learner} píše znovu."]
    before = await conversations_handled(replicas.bots)
    mark = tg.mark()
    async with delivering(replicas, timeout=1.0):
        async with slowed(oa, 2.5, "chat"):
            first, second = (tg.send_text(learner, words) for words in said)
            # Telegram gave up on the first attempt while Honzík's slow completion for the
            # first message runs; the second message's completion is not slowed.
            await eventually(
                lambda: any(a.error == "timeout" for a in tg.deliveries_of(first)),
                what="the first attempt to time out",
            )
        accepted = await tg.wait_delivered([first, second], timeout=20)

    attempts = tg.deliveries_of(first)
    shown = [str(a) for a in attempts]
    assert attempts[0].error == "timeout", shown
    assert [a.ok for a in attempts].count(True) == 1 and attempts[-1].ok, shown
    for refused in attempts[1:-1]:
        assert refused.status == 503 and refused.retry_after is not None, shown
    assert any(a.status == 503 and a.url != attempts[0].url for a in attempts), shown
    finished = accepted[first].finished
    assert finished is not None and tg.deliveries_of(second)[0].started > finished, shown
    calls = replies(tg, learner, mark)
    assert answers(tg, learner, mark) == said, [str(c) for c in calls]
    assert [c.method for c in calls] == ["sendMessage", "sendVoice"] * 2, [str(c) for c in calls]
    assert await stored_texts(replicas.database, learner) == [("text", w) for w in said]
    assert await conversations_handled(replicas.bots) - before == len(said)


async def test_sigterm_stops_both_replicas_cleanly(replicas: Replicas):
    for bot in replicas.bots:
        bot.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(bot.wait_exit(30) for bot in replicas.bots))
    assert codes == [0, 0]
    for bot in replicas.bots:
        bot.assert_no_traceback()
        assert "stopped" in bot.log_text().splitlines()[-1]
