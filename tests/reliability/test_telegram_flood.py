"""Telegram's flood control (429 with retry_after) on the bot's own sends.

The bot must wait what Telegram asked for and send again, once: the learner gets the answer
late, but exactly one copy of it.
"""

from __future__ import annotations

import time

import pytest

from bot import texts
from tests.e2e.harness import same_text

from .invariants import assert_invariants
from .support import Deployment, barrier, is_answer_to, learner_rows, sent_since, texts_since

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

RETRY_AFTER = 1


@pytest.mark.parametrize(("method", "user"), [("sendMessage", 5401), ("sendVoice", 5402)])
async def test_flood_control_delays_the_answer_without_duplicating_it(
    main: Deployment, method: str, user: int
) -> None:
    tg, bot = main.tg, main.bot
    words = f"Ahoj, tady {user}, zkouším, jestli Telegram nezdrží {method}."
    log_mark = len(bot.log_text())

    tg.fail_next(method, error_code=429, retry_after=RETRY_AFTER)
    mark = tg.mark()
    tg.send_text(user, words)
    refused = await tg.wait_for(
        lambda c: c.method == method and c.status == 429, since=mark, timeout=15
    )
    refused_at = time.monotonic()
    (delivered, *_) = await tg.wait_for_method(method, since=refused.seq, chat_id=user, timeout=15)
    waited = time.monotonic() - refused_at
    await barrier(tg, user)

    assert str(refused.params.get("chat_id")) == str(user), "the flood limit hit another chat"
    assert waited >= RETRY_AFTER - 0.1, f"sent again after {waited:.2f}s, before retry_after"
    received = texts_since(tg, user, mark)
    assert same_text(received[-1], texts.HELP)
    assert len(received[:-1]) == 1, f"exactly one answer, got {received[:-1]}"
    assert is_answer_to(received[0], words), received[0]
    assert len(sent_since(tg, "sendVoice", user, mark)) == 1, "exactly one voice"
    refusals = [c for c in tg.calls[mark:] if c.method == method and c.status == 429]
    assert refusals == [refused]
    assert delivered.ok
    assert [text for _, text, _ in await learner_rows(main.db_url, user)] == [words]
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)
