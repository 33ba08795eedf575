"""OpenAI failing on each endpoint: bounded retries, then a kind fallback, never a duplicate.

The `main` bot runs with OPENAI_TIMEOUT=2 and OPENAI_MAX_RETRIES=1, so every OpenAI request
is tried at most twice. For each endpoint (chat, transcriptions, speech) and each fault
(429 with Retry-After: 1, 500, a response slower than the timeout):

- one transient failure: the learner gets the normal answer, and the endpoint saw exactly
  two requests (the failed one and the retry);
- a persistent failure: chat or transcription failing gets `texts.TRY_AGAIN`, speech failing
  gets the text without a voice; still exactly two requests, one answer per message, and
  what the learner said is stored.

Every case has its own learner and its own words (and audio), so no cache links two cases.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot import texts
from tests.e2e.harness import same_text
from tests.standins.openai import FakeOpenAI

from .invariants import assert_invariants
from .support import (
    Deployment,
    barrier,
    is_answer_to,
    learner_rows,
    sent_since,
    texts_since,
    unique_ogg,
    wait_texts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ENDPOINTS = ("chat", "transcriptions", "speech")
FAULTS = ("429", "500", "timeout")
SLOWER_THAN_TIMEOUT = 5.0
"""Seconds the stand-in stalls for a "timeout": well past the bot's OPENAI_TIMEOUT=2."""
CASES = list(itertools.product(ENDPOINTS, FAULTS, (False, True)))
USERS = {case: 5300 + i for i, case in enumerate(CASES)}


class OnceEach(dict[str, float]):
    """An `oa.delay` table whose entries stall one request each, then are gone."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self.pop(key, default)


def inject(oa: FakeOpenAI, endpoint: str, fault: str, persistent: bool) -> None:
    if fault == "429":
        oa.fail_next(endpoint, 429, retry_after=1, times=100 if persistent else 1)
    elif fault == "500":
        if persistent:
            oa.fail_always(endpoint, 500)
        else:
            oa.fail_next(endpoint, 500, retry_after=None)
    elif persistent:
        oa.delay = {endpoint: SLOWER_THAN_TIMEOUT}
    else:
        oa.delay = OnceEach({endpoint: SLOWER_THAN_TIMEOUT})


def case_id(case: tuple[str, str, bool]) -> str:
    endpoint, fault, persistent = case
    return f"{endpoint}-{fault}-{'persistent' if persistent else 'once'}"


@pytest.mark.parametrize(("endpoint", "fault", "persistent"), CASES, ids=map(case_id, CASES))
async def test_openai_fault(main: Deployment, endpoint: str, fault: str, persistent: bool) -> None:
    tg, oa, bot = main.tg, main.oa, main.bot
    user = USERS[(endpoint, fault, persistent)]
    words = f"Zkouška {user}: {endpoint} vrací {fault}, {'pořád' if persistent else 'jednou'}."
    log_mark = len(bot.log_text())
    history = len(oa.history)

    inject(oa, endpoint, fault, persistent)
    mark = tg.mark()
    if endpoint == "transcriptions":
        recording = unique_ogg("dobry_den.ogg", str(user))
        oa.add_transcript(recording, words)
        tg.send_voice(user, recording)
        heard: str | None = words
    else:
        tg.send_text(user, words)
        heard = None

    (answer, *_) = await wait_texts(tg, user, mark, 1, timeout=30)
    await barrier(tg, user)  # the update is completely handled: no request is still to come
    oa.recover()
    oa.delay = {}

    received = texts_since(tg, user, mark)
    assert same_text(received[-1], texts.HELP)
    assert received[:-1] == [answer], f"exactly one answer per message, got {received[:-1]}"
    made = {e: [c for c in oa.history[history:] if c.endpoint == e] for e in ENDPOINTS}
    calls = made[endpoint]
    assert len(calls) == 2, f"bounded retries: {[str(c) for c in calls]}"
    if fault != "timeout":  # a stalled request is answered (200) after the bot gave up on it
        failed = [c.status for c in calls[: 2 if persistent else 1]]
        assert failed == [int(fault)] * len(failed), [str(c) for c in calls]
    voices = sent_since(tg, "sendVoice", user, mark)

    fails_the_answer = persistent and endpoint in ("chat", "transcriptions")
    if not persistent:
        assert calls[1].status == 200, str(calls[1])
        assert is_answer_to(answer, words, heard), answer
        assert len(voices) == 1
    elif fails_the_answer:
        assert same_text(answer, texts.TRY_AGAIN), answer
        assert voices == [], "no voice without an answer"
        assert made["speech"] == []
        if endpoint == "transcriptions":
            assert made["chat"] == [], "nothing to ask Honzík about"
    else:  # speech keeps failing: the text still arrives, alone
        assert is_answer_to(answer, words, heard), answer
        assert voices == [], "no voice when speech fails"

    stored = await learner_rows(main.db_url, user)
    kind = "voice" if endpoint == "transcriptions" else "text"
    stored_text = "" if fails_the_answer and endpoint == "transcriptions" else words
    assert stored == [(kind, stored_text, not fails_the_answer)], stored
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)
