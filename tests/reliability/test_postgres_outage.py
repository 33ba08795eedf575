"""PostgreSQL unreachable for a while: the learner is told, the bot waits calmly, then recovers.

The bot reaches its database only through a `TcpProxy`; cutting it drops the pool's
connections and then refuses new ones (a database that went away) or accepts and resets
them at once (a database that is restarting).
"""

from __future__ import annotations

import time

import pytest

from bot import texts
from tests.e2e.harness import eventually, same_text

from .invariants import assert_invariants
from .support import (
    Deployment,
    barrier,
    cpu_seconds,
    is_answer_to,
    learner_rows,
    sent_since,
    texts_since,
    wait_texts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

OUTAGE_SECONDS = 4.0
CPU_BUDGET = 1.0
"""CPU seconds the bot may use during the whole outage: it must wait, not spin."""


@pytest.mark.parametrize(
    ("mode", "user"),
    [("refused", 5201), ("reset", 5202)],
    ids=["new-connections-refused", "new-connections-reset"],
)
async def test_database_outage_is_survived_without_spinning(
    pg: Deployment, mode: str, user: int
) -> None:
    dep, tg, bot, proxy = pg, pg.tg, pg.bot, pg.proxy
    assert proxy is not None
    pid, newcomer = bot.pid, user + 50
    assert pid is not None
    before, during, after = (
        "Dobrý den, píšu poprvé.",
        "Ahoj, slyšíš mě i teď?",
        "Tak jsem tu zase, všechno v pořádku?",
    )

    mark = tg.mark()
    tg.send_text(user, before)
    (answer,) = await wait_texts(tg, user, mark, 1)
    assert is_answer_to(answer, before), answer
    await barrier(tg, user)

    cpu_before, cut_at = cpu_seconds(pid), time.monotonic()
    await proxy.cut(refuse=mode == "refused")
    try:
        _, body = await bot.wait_health(
            lambda status, _body: status == 503, what="/health 503 while the database is cut"
        )
        assert (body["status"], body["database"]) == ("unhealthy", "unavailable")

        for learner in (user, newcomer):  # known (cached) and never seen before
            mark = tg.mark()
            tg.send_text(learner, during)
            (answer,) = await wait_texts(tg, learner, mark, 1)
            assert same_text(answer, texts.TEMPORARILY_UNAVAILABLE), (learner, answer)
            # The newcomer's /help needs the database too (to create the learner).
            expect = texts.HELP if learner == user else texts.TEMPORARILY_UNAVAILABLE
            await barrier(tg, learner, expect=expect)
            assert texts_since(tg, learner, mark)[:-1] == [answer], "exactly one answer"

        async def outage_lasted() -> bool:
            status, body = await bot.health()
            assert status == 503, f"/health during the outage: {status} {body}"
            assert bot.running and bot.pid == pid, bot.describe()
            return time.monotonic() - cut_at >= OUTAGE_SECONDS

        await eventually(outage_lasted, timeout=OUTAGE_SECONDS + 15, interval=0.25)
        cpu_used = cpu_seconds(pid) - cpu_before
        assert cpu_used < CPU_BUDGET, f"{cpu_used:.2f}s CPU in a {OUTAGE_SECONDS:g}s outage"
    finally:
        await proxy.restore()

    await bot.wait_health(
        lambda status, body: status == 200 and body.get("database") == "healthy",
        what="/health 200 after the database is back",
    )
    for learner in (user, newcomer):
        mark = tg.mark()
        tg.send_text(learner, after)
        (answer,) = await wait_texts(tg, learner, mark, 1)
        assert is_answer_to(answer, after), (learner, answer)
        await barrier(tg, learner)
        assert len(sent_since(tg, "sendVoice", learner, mark)) == 1

    assert bot.running and bot.pid == pid, "the bot was restarted"
    stored = [text for _, text, _ in await learner_rows(dep.db_url, user)]
    assert stored == [before, after], "what was said during the outage could not be stored"
    assert [text for _, text, _ in await learner_rows(dep.db_url, newcomer)] == [after]
    await assert_invariants(dep)
