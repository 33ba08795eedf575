"""OpenAI failing on each endpoint: bounded retries, then a kind fallback, never a duplicate.

The `main` bot runs with OPENAI_TIMEOUT=2 and OPENAI_MAX_RETRIES=1, so every OpenAI request
is tried at most twice. For each endpoint (chat, transcriptions, speech) and each fault
(429 with Retry-After: 1, 500, a response slower than the timeout):

- one transient failure: the learner gets the normal answer, and the endpoint saw exactly
  two requests (the failed one and the retry);
- a persistent failure: chat or transcription failing gets `texts.TRY_AGAIN`, speech failing
  gets the text without a voice; still exactly two requests, one answer per message, and
  what the learner said is stored.

A 200 that is not what the endpoint promises (an HTML page from a proxy, an empty body,
JSON of the wrong shape) is a failure too, just not a retried one: one request, the same
fallback, and nothing cached, so the learner's next try is answered normally.

Recordings reach Whisper named as what they are (OpenAI decodes by the file name, and the
stand-in refuses a name that is not the content): MP3 audio files and MP4 video notes are
transcribed like voice notes. A download from Telegram that fails keeps the voice message
and asks to try again, and the log says what failed without the download URL, which holds
the bot token.

Every case has its own learner and its own words (and audio), so no cache links two cases.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot import texts
from tests.e2e.harness import same_text
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import DOWNLOAD

from .invariants import assert_invariants
from .support import (
    Deployment,
    audio,
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


# ------------------------------------------------------------------ odd 200 answers

ODD_CASES = [
    ("chat", "html"),
    ("chat", "no-choices"),
    ("transcriptions", "html"),
    ("transcriptions", "no-text"),
    ("speech", "html"),
    ("speech", "empty"),
]
ODD_USERS = {case: 5350 + i for i, case in enumerate(ODD_CASES)}


async def say(main: Deployment, user: int, words: str, recording: bytes | None) -> str:
    """The learner sends `words` (as `recording`, if given); returns the one answer."""
    tg = main.tg
    mark = tg.mark()
    if recording is None:
        tg.send_text(user, words)
    else:
        tg.send_voice(user, recording)
    (answer, *_) = await wait_texts(tg, user, mark, 1, timeout=30)
    await barrier(tg, user)
    received = texts_since(tg, user, mark)
    assert received[:-1] == [answer], f"exactly one answer per message, got {received[:-1]}"
    return answer


@pytest.mark.parametrize(("endpoint", "oddity"), ODD_CASES, ids=map("-".join, ODD_CASES))
async def test_odd_openai_answer(main: Deployment, endpoint: str, oddity: str) -> None:
    tg, oa, bot = main.tg, main.oa, main.bot
    user = ODD_USERS[(endpoint, oddity)]
    words = f"Zkouška {user}: {endpoint} odpovídá divně ({oddity})."
    log_mark, history = len(bot.log_text()), len(oa.history)
    recording = None
    if endpoint == "transcriptions":
        recording = unique_ogg("dobry_den.ogg", str(user))
        oa.add_transcript(recording, words)
    heard, kind = (words, "voice") if recording else (None, "text")

    oa.garble_next(endpoint, oddity)
    mark = tg.mark()
    answer = await say(main, user, words, recording)

    calls = [c for c in oa.history[history:] if c.endpoint == endpoint]
    assert len(calls) == 1 and calls[0].ok, f"a 200 is not retried: {[str(c) for c in calls]}"
    assert sent_since(tg, "sendVoice", user, mark) == [], "no voice without speech"
    if endpoint == "speech":
        assert is_answer_to(answer, words, heard), answer
    else:
        assert same_text(answer, texts.TRY_AGAIN), answer
    first = (kind, "" if recording else words, endpoint == "speech")
    assert await learner_rows(main.db_url, user) == [first]

    # Nothing was cached from the odd answer: the same again asks OpenAI again, and works.
    again, mark = len(oa.history), tg.mark()
    answer = await say(main, user, words, recording)
    assert is_answer_to(answer, words, heard), answer
    assert [c.ok for c in oa.history[again:] if c.endpoint == endpoint] == [True]
    assert len(sent_since(tg, "sendVoice", user, mark)) == 1
    assert tg.sent_voices(user)[-1].startswith(b"OggS")
    assert await learner_rows(main.db_url, user) == [first, (kind, words, True)]
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)


# ------------------------------------------------------------------ recordings, by format

MP4_HEAD = b"\0\0\0\x18ftypmp42\0\0\0\0isommp42\0\0\0\x08free"
"""How an MP4 file (a video note) starts: its ftyp box, then an empty free box."""


@pytest.mark.parametrize("kind", ["mp3-audio", "mp4-video-note"])
async def test_recording_formats(main: Deployment, kind: str) -> None:
    tg, oa, bot = main.tg, main.oa, main.bot
    user = {"mp3-audio": 5370, "mp4-video-note": 5371}[kind]
    words = f"Zkouška {user}: nahrávka jako {kind}."
    head = audio("tts_reply.mp3") if kind == "mp3-audio" else MP4_HEAD
    recording = head + f"\0{user}".encode()
    oa.add_transcript(recording, words)
    log_mark, history, mark = len(bot.log_text()), len(oa.history), tg.mark()

    if kind == "mp3-audio":
        tg.send_audio(user, recording, 2, file_name="nahravka.mp3")
    else:
        tg.send_video_note(user, recording, 2)
    (answer, *_) = await wait_texts(tg, user, mark, 1, timeout=30)
    await barrier(tg, user)

    assert is_answer_to(answer, words, words), answer
    (call,) = [c for c in oa.history[history:] if c.endpoint == "transcriptions"]
    extension = "mp3" if kind == "mp3-audio" else "mp4"
    assert call.ok and call.body["file"]["filename"] == f"voice.{extension}", str(call)
    assert len(sent_since(tg, "sendVoice", user, mark)) == 1
    assert await learner_rows(main.db_url, user) == [("voice", words, True)]
    assert "Traceback" not in bot.log_text()[log_mark:], bot.describe()
    await assert_invariants(main)


async def test_failed_download_keeps_the_message_and_the_token_out_of_the_log(
    main: Deployment,
) -> None:
    tg, oa, bot, user = main.tg, main.oa, main.bot, 5372
    log_mark, history, mark = len(bot.log_text()), len(oa.history), tg.mark()

    tg.fail_next(DOWNLOAD, 502)
    tg.send_voice(user, unique_ogg("dobry_den.ogg", str(user)))
    (answer, *_) = await wait_texts(tg, user, mark, 1, timeout=30)
    await barrier(tg, user)

    assert same_text(answer, texts.TRY_AGAIN), answer
    (download,) = [c for c in tg.calls[mark:] if c.method == DOWNLOAD]
    assert download.status == 502
    assert [c for c in oa.history[history:] if c.endpoint == "transcriptions"] == []
    assert await learner_rows(main.db_url, user) == [("voice", "", False)]
    log = bot.log_text()[log_mark:]
    assert "could not download the voice message" in log and "502" in log, log
    # Neither the token nor the URL it is part of (a redacting filter would leave the rest).
    assert tg.token not in log and download.params["file_path"] not in log, log
    assert "Traceback" not in log, bot.describe()
    await assert_invariants(main)
