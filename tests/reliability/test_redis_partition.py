"""Redis unreachable for a moment but not restarted: it still holds what it held before.

Unlike a killed Redis, which comes back empty (test_redis_outage.py), a partition (or the
one-second cool-down after any single Redis error) leaves every entry in place, so whatever
the bot could not write or delete meanwhile is still there when Redis answers again:

cached values a committed write could not overwrite (`Cache.put_many`) or invalidate
(`Cache.bump`): both return at once while Redis is unusable.

The `main` bot reaches its Redis through a `TcpProxy`, which these tests cut and restore.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest

from bot import texts
from bot.domain import OPTIONS, Level, UiLanguage, ui_language_of
from bot.i18n import speaking
from tests.e2e.harness import same_text

from .invariants import assert_invariants
from .support import Deployment, barrier, is_answer_to, wait_texts

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

PROMPT_ANSWER = 10.0
"""Seconds within which a learner gets an answer once Redis is healthy again."""
TELEGRAM_STALLS = 2.0
"""Seconds the stand-in holds the bot's sendMessage: the window in which Redis is cut."""


class StaleRead(AssertionError):
    """The bot served a cached value older than what it had committed."""


async def ask(dep: Deployment, user: int, command: str, args: str = "") -> str:
    mark = dep.tg.mark()
    dep.tg.send_command(user, command, args)
    (text, *_) = await wait_texts(dep.tg, user, mark, 1)
    return text


async def say(dep: Deployment, user: int, words: str) -> None:
    mark = dep.tg.mark()
    dep.tg.send_text(user, words)
    (text, *_) = await wait_texts(dep.tg, user, mark, 1)
    assert is_answer_to(text, words), text
    await barrier(dep.tg, user)


async def partition(dep: Deployment) -> None:
    assert dep.proxy is not None
    await dep.proxy.cut()
    await dep.bot.wait_health(
        lambda _status, body: body.get("redis") == "unavailable", what="redis unavailable"
    )


async def heal(dep: Deployment) -> None:
    assert dep.proxy is not None
    await dep.proxy.restore()
    await dep.bot.wait_health(
        lambda status, body: status == 200 and body.get("redis") == "healthy",
        what="redis healthy again",
    )


def read_at(level: str) -> AbstractContextManager[None]:
    """The bot's language for an English-speaking learner at `level` (Czech from advanced)."""
    czech = ui_language_of(Level(level), None) is UiLanguage.CZECH
    return speaking("cs" if czech else "en")


def current_level(level: str) -> str:
    with read_at(level):
        return texts.SETTING_CURRENT.format(
            label=texts.OPTION_LABELS["level"],
            value=texts.value_label("level", level),
            name="level",
            values=" | ".join(OPTIONS["level"].values),
        )


def saved_level(level: str) -> str:
    with read_at(level):
        return texts.SETTING_SAVED.format(
            label=texts.OPTION_LABELS["level"], value=texts.value_label("level", level)
        )


async def test_partition_is_survived(main: Deployment) -> None:
    """The basics, without the known bugs below: answers throughout, caching again after."""
    user, pid = 5700, main.bot.pid
    await say(main, user, "Ahoj, jsem tady před výpadkem.")
    await partition(main)
    try:
        await say(main, user, "Teď Redis neodpovídá, ale já ano.")
        assert await main.redis.keys(f"user:{user}:*"), "the entries from before are kept"
    finally:
        await heal(main)
    await say(main, user, "A zase je všechno v pořádku.")
    assert main.bot.pid == pid and main.bot.running
    await assert_invariants(main)


async def test_setting_changed_during_a_partition_is_not_forgotten(main: Deployment) -> None:
    user = 5701
    assert same_text(await ask(main, user, "level"), current_level("beginner"))  # now cached

    await partition(main)
    try:
        assert same_text(await ask(main, user, "level", "advanced"), saved_level("advanced"))
    finally:
        await heal(main)

    shown = await ask(main, user, "level")
    await assert_invariants(main)
    if not same_text(shown, current_level("advanced")):
        raise StaleRead(f"after the partition /level shows {shown!r}; 'advanced' was saved")


async def test_stats_count_a_message_sent_during_a_partition(main: Deployment) -> None:
    user = 5702
    await say(main, user, "Ahoj, dneska poprvé.")
    before = await ask(main, user, "stats")  # today's numbers are now cached
    assert texts.messages_count(1) in before, before
    await barrier(main.tg, user)  # the chart too

    await partition(main)
    try:
        await say(main, user, "A tohle je moje druhá zpráva.")
    finally:
        await heal(main)

    after = await ask(main, user, "stats")
    await barrier(main.tg, user)
    await assert_invariants(main)  # the database has both messages
    if texts.messages_count(2) not in after:
        raise StaleRead(f"after the partition /stats still says:\n{after}")
