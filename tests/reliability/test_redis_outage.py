"""Redis killed under traffic and brought back: nobody notices but /health.

Five learners keep writing in waves while the bot's Redis is SIGKILLed in the middle of a
wave and started again (empty) in the middle of a later one. Every message must be answered
once, stored once, and the same bot process must go back to caching by itself.
"""

from __future__ import annotations

import asyncio

import pytest

from bot import texts
from tests.e2e.harness import eventually, same_text

from .invariants import assert_invariants
from .support import (
    Deployment,
    barrier,
    is_answer_to,
    learner_rows,
    sent_since,
    texts_since,
    wait_texts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

LEARNERS = tuple(range(5101, 5106))
WAVES = 6
HONZIK_THINKS = 0.5
"""Seconds the OpenAI stand-in takes per chat completion in the waves that span a change."""


def said(user: int, wave: int) -> str:
    return f"Ahoj, tady je žák {user} a tohle je moje zpráva číslo {wave}."


def send_wave(dep: Deployment, wave: int) -> int:
    """Every learner sends one message at once; returns the mark before them."""
    mark = dep.tg.mark()
    for user in LEARNERS:
        dep.tg.send_text(user, said(user, wave))
    return mark


async def wave_in_flight(dep: Deployment, since: int) -> None:
    """Until every update of the wave is being handled: all asked Honzík, none answered yet."""

    def asked() -> bool:
        return sum(c.endpoint == "chat" for c in dep.oa.history[since:]) >= len(LEARNERS)

    await eventually(asked, timeout=20, what="the whole wave asking Honzík")


async def all_answered(dep: Deployment, wave: int, mark: int) -> None:
    async def one(user: int) -> None:
        (answer, *_) = await wait_texts(dep.tg, user, mark, 1, timeout=30)
        assert is_answer_to(answer, said(user, wave)), f"learner {user}, wave {wave}: {answer!r}"

    await asyncio.gather(*(one(user) for user in LEARNERS))


async def user_keys_cached(dep: Deployment) -> bool:
    present = await dep.redis.keys("user:*")
    wanted = {f"user:{u}:{part}" for u in LEARNERS for part in ("profile", "settings")}
    return wanted <= set(present)


async def test_redis_killed_mid_traffic_and_restarted(outage: Deployment) -> None:
    dep, tg, bot = outage, outage.tg, outage.bot
    pid, start = bot.pid, tg.mark()
    for user in LEARNERS:
        tg.add_user(user, f"Žák{user}")

    try:
        # 1: all healthy.
        await all_answered(dep, 1, send_wave(dep, 1))
        assert await user_keys_cached(dep), await dep.redis.keys("*")

        # 2: Redis dies while the wave is in flight (Honzík is slow, so none is done yet).
        dep.oa.delay = {"chat": HONZIK_THINKS}
        history, mark = len(dep.oa.history), send_wave(dep, 2)
        await wave_in_flight(dep, history)
        await dep.redis.kill()
        await all_answered(dep, 2, mark)
        status, body = await bot.wait_health(
            lambda _status, body: body.get("redis") == "unavailable",
            what="/health reporting redis unavailable",
        )
        assert (status, body["status"], body["database"]) == (200, "healthy", "healthy")

        # 3: a whole wave without Redis.
        await all_answered(dep, 3, send_wave(dep, 3))

        # 4: Redis comes back (empty) while the wave is in flight.
        history, mark = len(dep.oa.history), send_wave(dep, 4)
        await wave_in_flight(dep, history)
        await dep.redis.start()
        await all_answered(dep, 4, mark)
        dep.oa.delay = {}
        status, body = await bot.wait_health(
            lambda status, body: status == 200 and body.get("redis") == "healthy",
            what="/health reporting redis healthy again",
        )
        assert body["status"] == "healthy"

        # 5, 6: back to normal, and the learners are cached again.
        await all_answered(dep, 5, send_wave(dep, 5))
        await all_answered(dep, 6, send_wave(dep, 6))
        await eventually(
            lambda: user_keys_cached(dep), timeout=10, what="user:* keys written again"
        )
    finally:
        dep.oa.delay = {}
        if not dep.redis.running:
            await dep.redis.start()

    assert bot.running and bot.pid == pid, "the bot was restarted"
    await asyncio.gather(*(barrier(tg, user) for user in LEARNERS))
    for user in LEARNERS:
        received = [t for t in texts_since(tg, user, start) if not same_text(t, texts.HELP)]
        expected = [said(user, wave) for wave in range(1, WAVES + 1)]
        assert len(received) == WAVES, f"learner {user} got {len(received)} answers: {received}"
        assert all(is_answer_to(t, s) for t, s in zip(received, expected, strict=True)), received
        assert len(sent_since(tg, "sendVoice", user, start)) == WAVES
        stored = await learner_rows(dep.db_url, user)
        assert [text for _, text, _ in stored] == expected, f"learner {user}: {stored}"
    for user in LEARNERS:
        for part in ("profile", "settings"):
            ttl = await dep.redis.ttl(f"user:{user}:{part}")
            assert 0 < ttl <= dep.user_ttl
    await assert_invariants(dep)
