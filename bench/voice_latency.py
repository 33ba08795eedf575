"""Voice reply latency: from feeding a voice update to the text reply and to the voice reply.

    python -m bench.voice_latency [--quick]

The dispatcher of `bot.app.build_dispatcher` with the recording Bot session (the learner's
audio is registered in `files`, so the download is instant), the real Redis, a temporary
SQLite file, and the in-process OpenAI stand-in with injected latency: transcription 1.0 s,
completion 1.5 s, speech 1.0 s (a tenth of that with --quick). A reply's time is when the bot
made the SendMessage / SendVoice request.

- miss: a returning learner (context cached) sends a new recording: Whisper, Honzík and TTS
  are all called, so the text cannot come before 2.5 s and the voice before 3.5 s. The first
  miss after start-up pays one-time costs (first connections, first schema builds) and is
  not counted; the verdict uses the median of the misses after it;
- full hit: another learner with the same settings sends the same audio (a new Telegram file,
  the same bytes): transcript, answer and speech (by Telegram file_id) all come from Redis.

Targets: on a miss the bot adds under 50 ms beyond the upstream delays; a full hit answers in
under 100 ms.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass

from aiogram.methods import SendMessage, SendVoice
from aiogram.types import Update, Voice

from bench._common import Result, Stack, clean_redis, cli, median, ms, reply_per_request, stack
from tests.standins.openai import AUDIO_DIR, FakeOpenAI
from tests.support import updates

DELAYS = {"transcriptions": 1.0, "chat": 1.5, "speech": 1.0}
MISS_TARGET = 0.050
HIT_TARGET = 0.100
RECORDING = (AUDIO_DIR / "ahoj_jak_se_mas.ogg").read_bytes()

_file_ids = itertools.count(1)


def fresh_recording() -> bytes:
    """A valid Ogg recording with different bytes (so a different Whisper cache key)."""
    return RECORDING + os.urandom(64)


def voice_update(s: Stack, uid: int, audio: bytes) -> Update:
    file_id = f"learner-voice-{next(_file_ids)}"
    s.session.files[file_id] = audio
    voice = Voice(
        file_id=file_id,
        file_unique_id=f"u-{file_id}",
        duration=2,
        mime_type="audio/ogg",
        file_size=len(audio),
    )
    return updates.message(None, user=updates.learner(uid), voice=voice)


@dataclass
class Timed:
    text: float
    voice: float
    calls: int


async def timed_voice(s: Stack, oa: FakeOpenAI, uid: int, audio: bytes) -> Timed:
    update = voice_update(s, uid, audio)
    s.session.clear()
    calls = len(oa.history)
    started = time.perf_counter()
    await s.feed(update)
    text_at = s.session.first(SendMessage, uid, started)
    voice_at = s.session.first(SendVoice, uid, started)
    if text_at is None or voice_at is None:
        sent = [type(m).__name__ for m in s.session.requests]
        raise RuntimeError(f"the voice message was not answered in text and voice: {sent}")
    return Timed(text_at - started, voice_at - started, len(oa.history) - calls)


async def measure(quick: bool) -> list[Result]:
    scale, misses_wanted, hits_wanted = (0.1, 2, 3) if quick else (1.0, 6, 20)
    delays = {endpoint: seconds * scale for endpoint, seconds in DELAYS.items()}
    text_nominal = delays["transcriptions"] + delays["chat"]
    voice_nominal = text_nominal + delays["speech"]
    async with clean_redis(), FakeOpenAI() as oa:
        oa.script_chat(reply_per_request)
        oa.delay.update(delays)
        # The path without drafts: this stand-in answers a completion at once, while a streamed
        # one is paced like a model (bench.streaming measures that path).
        async with stack(
            openai_base_url=oa.base_url, openai_max_retries=0, stream_replies=False
        ) as s:
            misses: list[Timed] = []
            recordings: list[bytes] = []
            for i in range(1 + misses_wanted):
                uid = 8100 + i
                await s.feed(updates.message("/help", user=updates.learner(uid)))
                audio = fresh_recording()
                oa.add_transcript(audio, f"Ahoj, jmenuji se Petr a je mi {20 + i} let.")
                recordings.append(audio)
                misses.append(await timed_voice(s, oa, uid, audio))
            hits: list[Timed] = []
            for j in range(hits_wanted):
                uid = 8200 + j
                await s.feed(updates.message("/help", user=updates.learner(uid)))
                hits.append(await timed_voice(s, oa, uid, recordings[1 + j % misses_wanted]))
    counted = misses[1:]
    if any(m.calls != 3 for m in misses) or any(h.calls != 0 for h in hits):
        raise RuntimeError(
            f"OpenAI calls per miss {[m.calls for m in misses]}, per hit {[h.calls for h in hits]}"
        )
    text_over = median([m.text - text_nominal for m in counted])
    voice_over = median([m.voice - voice_nominal for m in counted])
    worst_hit = max(h.voice for h in hits)
    return [
        Result(
            f"voice, cache miss: the bot adds < {MISS_TARGET * 1000:g} ms to the upstream delays",
            f"text +{ms(text_over)}, voice +{ms(voice_over)} (medians of {len(counted)})",
            max(text_over, voice_over) < MISS_TARGET,
            f"upstream delays {', '.join(f'{k} {v:g} s' for k, v in delays.items())}; "
            f"worst voice reply +{ms(max(m.voice - voice_nominal for m in counted))}; "
            f"first miss after start-up (not counted) +{ms(misses[0].voice - voice_nominal)}",
        ),
        Result(
            f"voice, full cache hit: answered < {HIT_TARGET * 1000:g} ms",
            f"{ms(worst_hit)} (slowest of {len(hits)})",
            worst_hit < HIT_TARGET,
            f"voice reply median {ms(median([h.voice for h in hits]))}",
        ),
    ]


if __name__ == "__main__":
    cli(measure)
