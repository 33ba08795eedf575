"""Streamed replies: how much sooner a voice message's answer shows and speaks.

    python -m bench.streaming [--quick]

Two dispatchers of `bot.app.build_dispatcher`, one with `stream_replies=True` (drafts while
Honzík writes, his voice synthesised as soon as the `reply` string is complete) and one with
`stream_replies=False` (one completion, then the text, then the voice), each with the
recording Bot session, the real Redis, a temporary SQLite file and an OpenAI stand-in of its
own. Transcription takes 1.0 s and speech 1.0 s. The streamed completion starts after 0.5 s
and then writes, at 40 tokens a second (a token is 4 characters), an answer in the real
schema's order: a 60-word reply first, then the corrected text, two mistakes, a tip and three
words, about 1,160 characters in all. The non-streamed completion of the same answer is held
back for as long as that round's stream really took (from the request to its last chunk, as
measured on the stand-in), so both paths wait for the same generation. With --quick
everything runs 10x faster, and fewer times. A reply's time is when the bot made the Telegram
request.

- miss: a returning learner (context cached) sends a new recording, on each path in turn;
  the first round after start-up pays one-time costs and is not counted, the verdicts use
  the medians of the rounds after it;
- hit: another learner with the same settings sends the same audio (a new Telegram file,
  the same bytes): transcript, answer and voice all come from Redis.

Targets: on a miss, the first visible text (the first SendMessageDraft, or SendMessage when
there is none) ≤ Whisper + first token + 0.3 s, and the voice (SendVoice) at least 30 %
sooner than without streaming; a hit on the streaming path unchanged: the final message in
< 100 ms and no drafts.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from aiogram.methods import SendMessage, SendMessageDraft, SendVoice

from bench._common import Result, Stack, clean_redis, cli, median, ms, stack
from bench.voice_latency import fresh_recording, voice_update
from bot import texts
from tests.standins.openai import FakeOpenAI
from tests.support import updates

WHISPER, SPEECH = 1.0, 1.0
FIRST_TOKEN, TOKENS_PER_SECOND = 0.5, 40.0
CHARS_PER_TOKEN = 4  # the stand-in's token
FIRST_TEXT_SLACK = 0.3
VOICE_SOONER = 0.30
HIT_TARGET = 0.100
REPLY = (
    "Ahoj Petře, to je skvělé, že se učíš česky! Je ti dvacet let a bydlíš v Praze? "
    "Praha je krásné město, hlavně na jaře, když kvetou stromy na Petříně. Co rád děláš ve "
    "volném čase? Já chodím každou sobotu na dlouhou procházku podél Vltavy a potom si dám "
    "kávu v malé kavárně. Řekni mi, jaké je tvoje oblíbené místo."
)
"""59 words; the request's digest makes the 60th, so every answer is spoken anew."""

_ages = itertools.count(10)


def sixty_word_answer(body: dict[str, Any]) -> dict[str, Any]:
    """A full HonzikReply, keys in the schema's order (strict outputs write them so)."""
    digest = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
    return {
        "reply": f"{REPLY} ({digest[:8]})",
        "corrected_text": "Ahoj, jmenuji se Petr a je mi dvacet let. Bydlím v Praze.",
        "mistakes": [
            {
                "original": "je mi dvacet roky",
                "corrected": "je mi dvacet let",
                "explanation": "After numbers from five up, Czech uses the genitive plural: let.",
                "category": "case",
            },
            {
                "original": "bydlím v Praha",
                "corrected": "bydlím v Praze",
                "explanation": "The preposition 'v' (in) takes the locative case: v Praze.",
                "category": "case",
            },
        ],
        "score": 78,
        "tip": "Ages are said with 'je mi … let', literally 'to me it is … years'; the number "
        "decides the form: rok, roky, let.",
        "new_words": [
            {"word": "procházka", "translation": "a walk", "example": "Jdeme na procházku."},
            {"word": "kavárna", "translation": "a café", "example": "Sedíme v kavárně."},
            {"word": "oblíbený", "translation": "favourite", "example": "To je můj oblíbený film."},
        ],
    }


ANSWER_CHARS = len(json.dumps(sixty_word_answer({"messages": []}), ensure_ascii=False))
REPLY_CHARS = len(json.dumps({"reply": f"{REPLY} (01234567)"}, ensure_ascii=False))


@dataclass(frozen=True)
class Pace:
    """Upstream latencies of one run (all scaled together for --quick)."""

    whisper: float
    speech: float
    first_token: float
    tokens_per_second: float

    def generation(self, chars: int) -> float:
        return self.first_token + chars / CHARS_PER_TOKEN / self.tokens_per_second

    def describe(self) -> str:
        return (
            f"Whisper {self.whisper:g} s, speech {self.speech:g} s, first token "
            f"{self.first_token:g} s, then {self.tokens_per_second:g} tokens/s; answer "
            f"{ANSWER_CHARS} characters ({self.generation(ANSWER_CHARS):.2f} s to write), "
            f"its reply {REPLY_CHARS} ({self.generation(REPLY_CHARS):.2f} s)"
        )


@dataclass(frozen=True)
class Timed:
    """One voice message's answer, in seconds after the update was fed."""

    first_text: float
    first_words: float | None
    """The first draft showing Honzík's words (after the transcript heading); None: no drafts."""
    final: float
    voice: float
    speech_ready: float | None
    """When the stand-in's speech answer went out; None: no speech call (a hit)."""
    generation: float | None
    """How long the stand-in took to write the completion; None: no chat call (a hit)."""
    drafts: int
    calls: Counter[str]


async def timed_voice(s: Stack, oa: FakeOpenAI, uid: int, audio: bytes, transcript: str) -> Timed:
    update = voice_update(s, uid, audio)
    s.session.clear()
    seen = len(oa.history)
    clock = time.monotonic()
    started = time.perf_counter()
    await s.feed(update)
    sent = [(moment - started, method) for moment, method in s.session.times]
    drafts = [(at, m) for at, m in sent if isinstance(m, SendMessageDraft) and m.chat_id == uid]
    messages = [at for at, m in sent if isinstance(m, SendMessage) and m.chat_id == uid]
    voices = [at for at, m in sent if isinstance(m, SendVoice) and m.chat_id == uid]
    if not messages or not voices:
        names = [type(m).__name__ for _, m in sent]
        raise RuntimeError(f"the voice message was not answered in text and voice: {names}")
    heading = texts.HEARD.format(text=transcript)
    calls = oa.history[seen:]
    by_endpoint = {call.endpoint: call for call in calls}

    def took(endpoint: str) -> float | None:
        call = by_endpoint.get(endpoint)
        return None if call is None or call.finished is None else call.finished - call.arrived

    speech = by_endpoint.get("speech")
    return Timed(
        first_text=min([at for at, _ in drafts] + messages),
        first_words=next((at for at, m in drafts if m.text != heading), None),
        final=messages[-1],
        voice=voices[0],
        speech_ready=None if speech is None or speech.finished is None else speech.finished - clock,
        generation=took("chat"),
        drafts=len(drafts),
        calls=Counter(call.endpoint for call in calls),
    )


@contextlib.asynccontextmanager
async def paths(pace: Pace) -> AsyncIterator[tuple[Stack, FakeOpenAI, Stack, FakeOpenAI]]:
    """The streaming and the non-streaming bot, each with its own stand-in at `pace`."""
    async with FakeOpenAI() as streamed_ai, FakeOpenAI() as plain_ai:
        for oa in (streamed_ai, plain_ai):
            oa.script_chat(sixty_word_answer)
            oa.delay.update(transcriptions=pace.whisper, speech=pace.speech)
        streamed_ai.first_token = pace.first_token
        streamed_ai.tokens_per_second = pace.tokens_per_second
        common = {"openai_max_retries": 0}
        async with (
            stack(openai_base_url=streamed_ai.base_url, stream_replies=True, **common) as streamed,
            stack(openai_base_url=plain_ai.base_url, stream_replies=False, **common) as plain,
        ):
            yield streamed, streamed_ai, plain, plain_ai


async def miss(s: Stack, oa: FakeOpenAI, uid: int) -> tuple[Timed, bytes]:
    await s.feed(updates.message("/help", user=updates.learner(uid)))
    audio = fresh_recording()
    transcript = f"Ahoj, jmenuji se Petr a je mi {next(_ages)} let."  # one length for all
    oa.add_transcript(audio, transcript)
    return await timed_voice(s, oa, uid, audio, transcript), audio


async def hit(s: Stack, oa: FakeOpenAI, uid: int, audio: bytes) -> Timed:
    await s.feed(updates.message("/help", user=updates.learner(uid)))
    transcript = oa.transcripts[hashlib.sha256(audio).hexdigest()]
    return await timed_voice(s, oa, uid, audio, transcript)


def check_calls(label: str, timed: list[Timed], expected: dict[str, int]) -> None:
    wrong = [dict(t.calls) for t in timed if t.calls != Counter(expected)]
    if wrong:
        raise RuntimeError(f"{label}: OpenAI calls {wrong}, expected {expected} each")


def seconds(values: Iterable[float | None]) -> str:
    """The median of the values measured (a hit has no speech or chat call to time)."""
    return f"{median([v for v in values if v is not None]):.2f} s"


async def measure(quick: bool) -> list[Result]:
    scale, rounds, hits_wanted = (0.1, 1, 2) if quick else (1.0, 4, 10)
    pace = Pace(WHISPER * scale, SPEECH * scale, FIRST_TOKEN * scale, TOKENS_PER_SECOND / scale)
    streamed: list[Timed] = []
    plain: list[Timed] = []
    recordings: dict[str, list[bytes]] = {"streamed": [], "plain": []}
    async with clean_redis(), paths(pace) as (s_stack, s_ai, p_stack, p_ai):
        for i in range(1 + rounds):
            timed, audio = await miss(s_stack, s_ai, 8300 + i)
            assert timed.generation is not None
            streamed.append(timed)
            recordings["streamed"].append(audio)
            p_ai.delay["chat"] = timed.generation  # the same generation, not streamed
            timed, audio = await miss(p_stack, p_ai, 8400 + i)
            plain.append(timed)
            recordings["plain"].append(audio)
        streamed_hits = [
            await hit(s_stack, s_ai, 8500 + j, recordings["streamed"][1 + j % rounds])
            for j in range(hits_wanted)
        ]
        plain_hits = [
            await hit(p_stack, p_ai, 8600 + j, recordings["plain"][1 + j % rounds])
            for j in range(hits_wanted)
        ]
    each_miss = {"transcriptions": 1, "chat": 1, "speech": 1}
    check_calls("streamed miss", streamed, each_miss)
    check_calls("non-streamed miss", plain, each_miss)
    check_calls("hit", streamed_hits + plain_hits, {})
    s_counted, p_counted = streamed[1:], plain[1:]
    if any(t.first_words is None for t in s_counted) or any(t.drafts for t in plain):
        raise RuntimeError("drafts: none on the streaming path, or some without streaming")

    first_target = pace.whisper + pace.first_token + FIRST_TEXT_SLACK
    first_text = median([t.first_text for t in s_counted])
    s_voice = median([t.voice for t in s_counted])
    p_voice = median([t.voice for t in p_counted])
    sooner = (p_voice - s_voice) / p_voice
    s_final = median([t.final for t in s_counted])
    s_ready = median([t.speech_ready for t in s_counted if t.speech_ready is not None])
    held = (
        f"; the voice, ready {s_final - s_ready:.2f} s before the final message, is sent after "
        "it, and that message waits for the whole answer"
        if s_ready < s_final
        else ""
    )
    worst_hit = max(t.final for t in streamed_hits)
    hit_drafts = sum(t.drafts for t in streamed_hits)
    counted = f"medians of {rounds} round" + ("" if rounds == 1 else "s")
    return [
        Result(
            f"voice, streamed miss: first text ≤ Whisper + first token "
            f"+ {FIRST_TEXT_SLACK:g} s (= {first_target:.2f} s)",
            f"{first_text:.2f} s ({counted})",
            first_text <= first_target,
            f"{pace.describe()}; streaming: first draft (the transcript) {first_text:.2f} s, "
            f"first draft with Honzík's words {seconds(t.first_words for t in s_counted)}, "
            f"{median([t.drafts for t in s_counted]):g} drafts, final message {s_final:.2f} s; "
            f"without streaming: the message at {seconds(t.first_text for t in p_counted)}",
        ),
        Result(
            f"voice, streamed miss: SendVoice of a 60-word answer ≥ {VOICE_SOONER:.0%} sooner "
            "than without streaming",
            f"{s_voice:.2f} s vs {p_voice:.2f} s: {sooner:.0%} sooner ({counted})",
            sooner >= VOICE_SOONER,
            f"the completion took {seconds(t.generation for t in s_counted)} to stream "
            f"({pace.generation(ANSWER_CHARS):.2f} s nominal), the non-streamed one as long; "
            f"streaming: speech ready at {s_ready:.2f} s, final message {s_final:.2f} s, "
            f"voice {s_voice:.2f} s; without streaming: speech ready at "
            f"{seconds(t.speech_ready for t in p_counted)}, final message "
            f"{seconds(t.final for t in p_counted)}, voice {p_voice:.2f} s{held}",
        ),
        Result(
            f"voice, cache hit with streaming on: final message < {HIT_TARGET * 1000:g} ms, "
            "no drafts",
            f"{ms(worst_hit)} (slowest of {len(streamed_hits)}), {hit_drafts} drafts",
            worst_hit < HIT_TARGET and hit_drafts == 0,
            f"streaming: final message median {ms(median([t.final for t in streamed_hits]))}, "
            f"voice median {ms(median([t.voice for t in streamed_hits]))}; without streaming: "
            f"final message median {ms(median([t.final for t in plain_hits]))} (slowest "
            f"{ms(max(t.final for t in plain_hits))}), voice median "
            f"{ms(median([t.voice for t in plain_hits]))}",
        ),
    ]


if __name__ == "__main__":
    cli(measure)
