"""Prove it: two replicas in webhook mode on one PostgreSQL and one Redis.

Both `python -m bot` processes start at the same moment on a fresh database (migrations under
the advisory lock), then several learners talk at once, each sending texts and voice notes
in quick succession without waiting for answers. Every update is POSTed to BOTH replicas
concurrently, in a random order per update, as if Telegram had delivered it twice. Honzík is
scripted to echo what the learner said, so every answer names the message it answers:
each must be answered exactly once, in the learner's order, and the numbers in PostgreSQL
must agree with the messages stored there.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from tests.e2e._webhook import (
    add_webhook_bot,
    deliver,
    echo_reply,
    echoed,
    handled,
    hook_exchange,
    hook_url,
    ready_webhook,
)
from tests.e2e.harness import BotProcess, Fleet, PostgresDatabase, RedisServer, eventually
from tests.standins.openai import AUDIO_DIR, FIXTURE_TRANSCRIPTS, FakeOpenAI
from tests.standins.telegram import FakeTelegram, TelegramCall

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LEARNERS = range(5001, 5009)
WARM_UP = (5091, 5092)
VOICES = ("ahoj_jak_se_mas.ogg", "dobry_den.ogg")
CONVERSATION_HANDLERS = (
    "bot.handlers.conversation.on_text",
    "bot.handlers.conversation.on_voice",
)

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


@dataclass
class Replicas:
    tg: FakeTelegram
    oa: FakeOpenAI
    database: PostgresDatabase
    bots: list[BotProcess]


@dataclass
class Conversation:
    """What the learners sent, per learner: (update id, message) in their order."""

    sent: dict[int, list[tuple[int, Said]]]
    mark: int
    """Where the conversation starts in the stand-in's calls."""

    @property
    def total(self) -> int:
        return sum(len(messages) for messages in self.sent.values())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _replicas(
    tmp_path_factory: pytest.TempPathFactory,
    module_tg: FakeTelegram,
    module_oa: FakeOpenAI,
    module_redis: RedisServer,
) -> AsyncIterator[Replicas]:
    database = PostgresDatabase()
    try:
        url = await database.create()
    except Exception as exc:
        message = f"PostgreSQL is not reachable: {exc!r}"
        if os.environ.get("MLUV_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    module_oa.script_chat(echo_reply)
    workdir: Path = tmp_path_factory.mktemp("replicas")
    fleet = Fleet(
        workdir, tg=module_tg, oa=module_oa, redis_url=module_redis.url(), database_url=url
    )
    try:
        # Spawned together: both run the migrations at the same moment.
        bots = [add_webhook_bot(fleet, name).spawn() for name in ("replica1", "replica2")]
        yield Replicas(module_tg, module_oa, database, bots)
    finally:
        await fleet.close()
        await database.drop()


@pytest_asyncio.fixture(loop_scope="module")
async def replicas(_replicas: Replicas) -> Replicas:
    return await replicas_ready(_replicas)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def talked(_replicas: Replicas) -> Conversation:
    """All learners talk at once (see `learner_talks`); done once every update is handled.

    Honzík takes 0.3 s per answer, so each learner's later messages are all waiting (on one
    replica or the other) while the first is answered, as when someone sends several voice
    notes in a row.
    """
    replicas = await replicas_ready(_replicas)
    # Each replica first answers a learner of its own: both are warm when the race starts.
    for bot, learner in zip(replicas.bots, WARM_UP, strict=True):
        await hook_exchange(
            replicas.tg, bot, learner, partial(replicas.tg.send_command, learner, "help")
        )
    conversation = Conversation({}, replicas.tg.mark())
    rng = random.Random(20240611)
    seeds = {learner: rng.random() for learner in LEARNERS}
    replicas.oa.delay["chat"] = 0.3
    try:
        await asyncio.gather(
            *(
                learner_talks(replicas, conversation, learner, random.Random(seeds[learner]))
                for learner in LEARNERS
            )
        )

        async def settled() -> tuple[float, float] | None:
            done, in_flight = await handled(replicas.bots, *CONVERSATION_HANDLERS)
            return (done, in_flight) if done >= conversation.total and in_flight == 0 else None

        await eventually(
            settled,
            timeout=40,
            what=lambda: f"{conversation.total} updates handled by the replicas, none in flight",
        )
    finally:
        replicas.oa.delay.pop("chat", None)
    return conversation


async def replicas_ready(replicas: Replicas) -> Replicas:
    await asyncio.gather(*(ready_webhook(replicas.tg, bot) for bot in replicas.bots))
    return replicas


async def learner_talks(
    replicas: Replicas, conversation: Conversation, learner: int, rng: random.Random
) -> None:
    """Send the learner's messages one after another, each to both replicas at once.

    As Telegram does, the next update goes out once the previous one was accepted (HTTP
    200), without waiting for Honzík's answer.
    """
    tg, sent = replicas.tg, conversation.sent.setdefault(learner, [])
    tg.add_user(learner, f"Žák {learner}", language_code="uk")
    for said in script(learner):
        if said.audio is None:
            update = tg.send_text(learner, said.words)
        else:
            update = tg.send_voice(learner, (AUDIO_DIR / said.audio).read_bytes())
        sent.append((update, said))
        order = rng.sample(replicas.bots, k=len(replicas.bots))
        statuses = await asyncio.gather(*(deliver(tg, bot, update) for bot in order))
        assert statuses == [200] * len(order), f"update {update}: {statuses}"


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


async def learner_rows(database: PostgresDatabase) -> dict[int, list[asyncpg.Record]]:
    """Each learner's stored messages (learner role) by Telegram id, in the order stored."""
    conn = await asyncpg.connect(database.url)
    try:
        rows = await conn.fetch(
            "SELECT u.telegram_id, m.kind, m.text, m.telegram_message_id FROM messages m"
            " JOIN users u ON u.id = m.user_id WHERE m.role = 'learner'"
            " ORDER BY m.created_at, m.id"
        )
    finally:
        await conn.close()
    found: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        found.setdefault(row["telegram_id"], []).append(row)
    return found


# ------------------------------------------------------------------ tests


async def test_both_replicas_start_together_and_register_their_own_webhook(replicas: Replicas):
    for bot in replicas.bots:
        status, body = await bot.health()
        assert (status, body["database"], body["redis"]) == (200, "healthy", "healthy")
        bot.assert_no_traceback()
    registered = {c.params["url"] for c in replicas.tg.calls if c.method == "setWebhook" and c.ok}
    assert registered == {hook_url(bot) for bot in replicas.bots}
    conn = await asyncpg.connect(replicas.database.url)
    try:
        versions = await conn.fetch("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    assert len(versions) == 1, versions


async def test_every_update_is_answered_exactly_once(replicas: Replicas, talked: Conversation):
    for learner, sent in talked.sent.items():
        calls = replies(replicas.tg, learner, talked.mark)
        said = [s.words for _, s in sent]
        answered = answers(replicas.tg, learner, talked.mark)
        assert sorted(map(str, answered)) == sorted(said), f"learner {learner}: {answered}"
        # One update at a time per learner: each text is followed by its own voice.
        assert [c.method for c in calls] == ["sendMessage", "sendVoice"] * len(sent), (
            f"learner {learner}: {[str(c) for c in calls]}"
        )


async def test_each_update_was_handled_by_one_replica_and_refused_by_the_other(
    replicas: Replicas, talked: Conversation
):
    per_bot = [(await handled([bot], *CONVERSATION_HANDLERS))[0] for bot in replicas.bots]
    assert sum(per_bot) == talked.total, per_bot
    # Each replica lost the claim on exactly the updates the other one handled.
    refused = [refused_updates(bot) for bot in replicas.bots]
    updates = [update for sent in talked.sent.values() for update, _ in sent]
    for update in updates:
        assert sum(update in ids for ids in refused) == 1, f"update {update}: {refused}"
    assert [len(updates) - len(set(updates) & ids) for ids in refused] == per_bot
    # Both replicas serve learners (each answered its warm-up learner alone).
    assert all(done > 0 for done, _ in [await handled([bot]) for bot in replicas.bots])


def refused_updates(bot: BotProcess) -> set[int]:
    """The update ids whose claim this replica lost, from its log."""
    return {
        int(m[1]) for m in re.finditer(r"update (\d+) is already being handled", bot.log_text())
    }


async def test_stats_agree_with_the_stored_messages(replicas: Replicas, talked: Conversation):
    stored = await learner_rows(replicas.database)
    conn = await asyncpg.connect(replicas.database.url)
    try:
        users = dict(
            await conn.fetch(
                "SELECT telegram_id, id FROM users WHERE telegram_id = ANY($1::bigint[])",
                list(LEARNERS),
            )
        )
        teacher = dict(
            await conn.fetch(
                "SELECT user_id, count(*) FROM messages WHERE role = 'teacher' GROUP BY user_id"
            )
        )
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
        user_id, rows = users[learner], stored[learner]
        assert sorted(row["text"] for row in rows) == sorted(s.words for _, s in sent), learner
        voice = sum(row["kind"] == "voice" for row in rows)
        assert voice == sum(s.audio is not None for _, s in sent)
        assert stats[user_id]["messages"] == len(rows), (learner, dict(stats[user_id]), len(rows))
        assert stats[user_id]["voice"] == voice
        assert teacher[user_id] == len(rows)


async def conversation_order(replicas: Replicas, talked: Conversation) -> dict[int, object]:
    """The learners of the conversation whose answers or stored messages are out of order."""
    stored = await learner_rows(replicas.database)
    wrong: dict[int, object] = {}
    for learner, sent in talked.sent.items():
        said = [s.words for _, s in sent]
        answered = answers(replicas.tg, learner, talked.mark)
        kept = [row["text"] for row in stored[learner]]
        if answered != said or kept != said:
            wrong[learner] = {"said": said, "answered": answered, "stored": kept}
    return wrong


async def overtaking(replicas: Replicas, learner: int) -> list[str | None] | None:
    """The smallest case, behind a load balancer (each update reaches one replica).

    Message 1 goes to replica 2 and keeps Honzík busy; message 2 then goes to replica 1 and
    waits for the chat; message 3 goes to replica 2 and waits too. When message 1 is done,
    message 2 must go next. Returns the answers if they came out of order, else None.
    """
    tg, oa = replicas.tg, replicas.oa
    first, second = replicas.bots[1], replicas.bots[0]
    said = [f"Žák {learner} říká {n}." for n in ("jedna", "dvě", "tři")]
    mark, chats = tg.mark(), len(oa.calls("chat"))

    async def send(bot: BotProcess, n: int) -> None:
        assert await deliver(tg, bot, tg.send_text(learner, said[n])) == 200

    async def in_flight(bot: BotProcess, count: int) -> bool:
        return (await handled([bot]))[1] >= count

    oa.delay["chat"] = 0.6
    try:
        await send(first, 0)
        await eventually(lambda: len(oa.calls("chat")) > chats, what="Honzík thinking")
        await send(second, 1)
        await eventually(lambda: in_flight(second, 1), what="message 2 waiting")
        await send(first, 2)
        await eventually(lambda: in_flight(first, 2), what="message 3 waiting")
        assert not tg.sent_messages(learner), "too slow to set up the race"
        await tg.wait_for_method("sendVoice", 3, 20, since=mark, chat_id=learner)
    finally:
        oa.delay.pop("chat", None)
    got = answers(tg, learner, mark)
    return None if got == said else got


async def test_a_message_waiting_on_the_other_replica_keeps_its_place(replicas: Replicas):
    """Message 3 of a learner, queued on the replica that holds the chat, does not overtake
    message 2, queued on the other replica (two learners, one after the other)."""
    got = {learner: await overtaking(replicas, learner) for learner in (5101, 5102)}
    assert got == {5101: None, 5102: None}


async def busy_replica(replicas: Replicas, learner: int, crowd: range) -> list[str | None] | None:
    """Replica 1 accepts message 1 while it is busy with a crowd of other learners; message
    2 then goes to the idle replica 2 (sent once message 1 was accepted, as Telegram does).
    Returns the answers if they came out of order, else None.
    """
    tg = replicas.tg
    busy, idle = replicas.bots
    said = [f"Žák {learner} píše nejdřív tohle.", f"Žák {learner} píše potom tohle."]
    mark = tg.mark()
    others = [
        asyncio.ensure_future(deliver(tg, busy, tg.send_command(other, "help"))) for other in crowd
    ]
    # Replica 1 has taken half the crowd's updates: it is busy handling them.
    await eventually(lambda: sum(f.done() for f in others) >= len(others) // 2, what="crowd")
    assert await deliver(tg, busy, tg.send_text(learner, said[0])) == 200
    assert await deliver(tg, idle, tg.send_text(learner, said[1])) == 200
    assert await asyncio.gather(*others) == [200] * len(crowd)
    await tg.wait_for_method("sendVoice", 2, 20, since=mark, chat_id=learner)
    got = answers(tg, learner, mark)
    return None if got == said else got


class OutOfOrder(AssertionError):
    """Answers came in another order than the messages (anything else fails the test)."""


async def test_each_learner_is_answered_in_the_order_they_wrote(
    replicas: Replicas, talked: Conversation
):
    """In the conversation above, and with one busy replica (`busy_replica`, four learners
    one after the other), where a later message would otherwise overtake an earlier one."""
    problems = {
        "conversation": await conversation_order(replicas, talked),
        "busy replica": {
            n: await busy_replica(replicas, n, range(6000 + 100 * i, 6040 + 100 * i))
            for i, n in enumerate((5201, 5202, 5203, 5204))
        },
    }
    problems["busy replica"] = {k: v for k, v in problems["busy replica"].items() if v}
    if any(problems.values()):
        raise OutOfOrder(problems)


async def test_sigterm_stops_both_replicas_cleanly(replicas: Replicas):
    for bot in replicas.bots:
        bot.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(bot.wait_exit(30) for bot in replicas.bots))
    assert codes == [0, 0]
    for bot in replicas.bots:
        bot.assert_no_traceback()
        assert "stopped" in bot.log_text().splitlines()[-1]
