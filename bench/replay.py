"""A replayed day of traffic through the real cache helpers: hit rates and OpenAI calls saved.

    python -m bench.replay

1,000 learners' day is generated (seeded, so every run replays the same day) and replayed in
time order through the bot's own helpers with the real Redis (database 12): the learner
context (`UserService.context`, on a temporary SQLite file), Whisper (`Whisper.transcribe`),
Honzík (`Honzik.answer`, with the conversation history the bot would send) and TTS
(`Voice.speak`, then `remember_upload` with a Telegram file id, as the handler does). OpenAI is
the in-process stand-in with no delay. Telegram is left out (the helpers are called directly).

The replay runs in about a minute, but the day it models is 16 hours long, so time is
simulated: every entry the cache writes is noted with the simulated time and deleted once the
simulated clock passes its TTL (learner context 1 h, OpenAI entries 24 h), and a conversation
starts afresh after 30 quiet minutes (CONVERSATION_WINDOW_MINUTES).

By default one day is replayed from an empty cache, which understates a running bot: at 07:00
it would still hold yesterday's answers. `python -m bench.replay --days 2` replays two days
(about twice as long) and reports the second, the steady state.

Assumptions (state them with any figure quoted from here):
- sessions per learner and day: 1, 2, 3 or 4 with probabilities 45/30/15/10 %, starting
  uniformly between 07:00 and 23:00; turns per session geometric with mean 3.3; 30–150 s
  between turns. A session that starts less than 30 min after the last turn continues the
  conversation; otherwise its first turn is a conversation opener (empty history).
- openers are drawn from 500 phrases with Zipf weights 1/k^1.1; every other turn is unique.
- 60 % of learners mostly speak (85 % of their turns are voice), 40 % mostly write (25 %).
- 20 % of voice messages are re-sent audio (the same bytes again): half the learner's own
  earlier recording, half one forwarded from another learner; the rest are new recordings,
  transcribed to what the learner meant to say.
- settings: level beginner/intermediate/advanced/native 45/35/15/5 %; native language
  ru/uk/en/de/pl/sk/vi 30/25/20/8/7/5/5 %; style friendly/tutor/casual 75/15/10 %;
  corrections balanced/minimal/detailed 80/8/12 %; character Honzík/Nováková 85/15 %;
  voice speed normal/slow/very slow/native 70/20/5/5 %; voice replies on for 85 %.
- a different Honzík request gets a different reply (as from a real model), so TTS can only
  hit where Honzík's answer was shared and the voice and speed match.
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from dataclasses import dataclass, field
from typing import Any

from aiogram.types import User as TelegramUser
from sqlalchemy import insert

from bench._common import (
    banner,
    redis_db12,
    reply_per_request,
    run,
    stack,
    table,
)
from bot.ai.prompt import Turn
from bot.cache import Family
from bot.db.models import User, UserSettings
from bot.domain import (
    Character,
    Corrections,
    LearnerSettings,
    Level,
    NativeLanguage,
    Style,
    VoiceSpeed,
)
from tests.standins.openai import AUDIO_DIR, FakeOpenAI

SEED = 20250601
LEARNERS = 1_000
PHRASES = 500
ZIPF_S = 1.1
RESENT_SHARE = 0.20
WINDOW = 30 * 60.0
HISTORY = 6
RECORDING = (AUDIO_DIR / "ahoj_jak_se_mas.ogg").read_bytes()

GREETINGS = [
    "Ahoj",
    "Dobrý den",
    "Čau",
    "Nazdar",
    "Dobré ráno",
    "Dobrý večer",
    "Zdravím",
    "Ahoj Honzíku",
    "Dobrý den, paní Nováková",
    "Ahojky",
]
OPENING = [
    "jak se máš?",
    "jak se dnes máte?",
    "co děláš?",
    "jsem tady znovu.",
    "mám hlad.",
    "dneska je hezky.",
    "jsem unavený.",
    "chci mluvit česky.",
    "učím se česky.",
    "jak se řekne 'thank you' česky?",
    "co je nového?",
    "byl jsem v Praze.",
    "jdu do práce.",
    "mám rád pivo.",
    "kde je nádraží?",
    "mám novou práci.",
    "jak bylo o víkendu?",
    "prší.",
    "je mi zima.",
    "chci si procvičit češtinu.",
    "co budeme dělat dnes?",
    "jsem z Ukrajiny.",
    "bydlím v Brně.",
    "mám psa.",
    "zítra mám zkoušku.",
    "jedu na výlet.",
    "nerozumím.",
    "můžeš mluvit pomaleji?",
    "dnes mám narozeniny.",
    "potřebuju pomoc.",
    "chci objednat kávu.",
    "jsem nemocný.",
    "kolik je hodin?",
    "jaké je počasí?",
    "co vaříš?",
    "mám rád Českou republiku.",
    "jsem student.",
    "pracuju jako programátor.",
    "jdu nakupovat.",
    "mám dva bratry.",
    "jsem v tramvaji.",
    "čtu knihu.",
    "dívám se na film.",
    "hraju fotbal.",
    "poslouchám hudbu.",
    "jsem doma.",
    "jdu spát.",
    "mám dovolenou.",
    "jsem šťastný.",
    "učím se slovíčka.",
]

WEIGHTS: dict[str, list[tuple[Any, float]]] = {
    "level": [
        (Level.BEGINNER, 45),
        (Level.INTERMEDIATE, 35),
        (Level.ADVANCED, 15),
        (Level.NATIVE, 5),
    ],
    "native": [
        (NativeLanguage.RU, 30),
        (NativeLanguage.UK, 25),
        (NativeLanguage.EN, 20),
        (NativeLanguage.DE, 8),
        (NativeLanguage.PL, 7),
        (NativeLanguage.SK, 5),
        (NativeLanguage.VI, 5),
    ],
    "style": [(Style.FRIENDLY, 75), (Style.TUTOR, 15), (Style.CASUAL, 10)],
    "corrections": [
        (Corrections.BALANCED, 80),
        (Corrections.MINIMAL, 8),
        (Corrections.DETAILED, 12),
    ],
    "character": [(Character.HONZIK, 85), (Character.NOVAKOVA, 15)],
    "speed": [
        (VoiceSpeed.NORMAL, 70),
        (VoiceSpeed.SLOW, 20),
        (VoiceSpeed.VERY_SLOW, 5),
        (VoiceSpeed.NATIVE, 5),
    ],
}


def pick(rng: random.Random, name: str) -> Any:
    values, weights = zip(*WEIGHTS[name], strict=True)
    return rng.choices(values, weights)[0]


def phrases() -> list[str]:
    """500 distinct openers; rank 1 is the most common."""
    made = [f"{g}, {o}" for o in OPENING for g in GREETINGS]
    return made[:PHRASES]


@dataclass
class Learner:
    uid: int
    level: Level
    native: NativeLanguage
    settings: LearnerSettings
    p_voice: float
    recordings: list[bytes] = field(default_factory=list)
    history: list[Turn] = field(default_factory=list)
    last_turn: float | None = None

    @property
    def telegram(self) -> TelegramUser:
        return TelegramUser(
            id=self.uid,
            is_bot=False,
            first_name="Learner",
            username=f"l{self.uid}",
            language_code="en",
        )


@dataclass(order=True)
class Event:
    at: float
    learner: int
    opener_session: bool  # first turn of a session (an opener unless the chat continues)


def make_day(rng: random.Random) -> tuple[list[Learner], list[Event]]:
    learners = []
    for i in range(LEARNERS):
        settings = LearnerSettings(
            conversation_style=pick(rng, "style"),
            corrections_level=pick(rng, "corrections"),
            voice_speed=pick(rng, "speed"),
            character=pick(rng, "character"),
            voice_replies=rng.random() < 0.85,
        )
        learners.append(
            Learner(
                uid=5_000_000 + i,
                level=pick(rng, "level"),
                native=pick(rng, "native"),
                settings=settings,
                p_voice=0.85 if rng.random() < 0.60 else 0.25,
            )
        )
    events = []
    for index in range(LEARNERS):
        sessions = rng.choices([1, 2, 3, 4], [45, 30, 15, 10])[0]
        for start in sorted(rng.uniform(7 * 3600, 23 * 3600) for _ in range(sessions)):
            at = start
            first = True
            while True:
                events.append(Event(at, index, first))
                first = False
                if rng.random() < 0.3:  # geometric: mean 1 / 0.3 = 3.3 turns
                    break
                at += rng.uniform(30, 150)
    events.sort()
    return learners, events


class Expiry:
    """Deletes cache entries when the simulated clock passes their TTL.

    Wraps the cache's two writers (`_fill` for readers' SET NX, `put_many` for writers) on the
    instance, noting each key with the simulated time it was written.
    """

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.now = 0.0
        self.heap: list[tuple[float, str, Any]] = []
        self.written: dict[str, float] = {}
        fill, put_many = cache._fill, cache.put_many

        async def noting_fill(keys: Any, kinds: Any, values: Any, read: Any) -> None:
            for key, value in zip(keys, values, strict=True):
                if value is not None:
                    self._note(key)
            await fill(keys, kinds, values, read)

        async def noting_put_many(entries: Any) -> None:
            for key, _, _ in entries:
                self._note(key)
            await put_many(entries)

        cache._fill = noting_fill
        cache.put_many = noting_put_many

    def _note(self, key: Any) -> None:
        expires = self.now + key.ttl
        self.written[key.name] = expires
        heapq.heappush(self.heap, (expires, key.name, key))

    async def advance(self, now: float) -> None:
        self.now = now
        gone = []
        while self.heap and self.heap[0][0] <= now:
            expires, name, key = heapq.heappop(self.heap)
            if self.written.get(name) == expires:  # not rewritten since
                del self.written[name]
                gone.append(key)
        if gone:
            await self.cache.delete(*gone)


@dataclass
class Tally:
    turns: int = 0
    openers: int = 0
    voice: int = 0
    resent: int = 0
    context_calls: int = 0
    whisper_calls: int = 0
    honzik_calls: int = 0
    tts_calls: int = 0
    uploads: int = 0
    opener_hits: int = 0


async def create_learners(s: Any, learners: list[Learner]) -> None:
    """Everyone already has an account: insert users and settings in bulk."""
    async with s.resources.sessionmaker() as session:
        await session.execute(
            insert(User),
            [
                {
                    "id": i + 1,
                    "telegram_id": learner.uid,
                    "username": f"l{learner.uid}",
                    "first_name": "Learner",
                    "native_language": learner.native.value,
                    "level": learner.level.value,
                    "onboarded": True,
                }
                for i, learner in enumerate(learners)
            ],
        )
        await session.execute(
            insert(UserSettings),
            [
                {
                    "user_id": i + 1,
                    **{
                        k: (v.value if hasattr(v, "value") else v)
                        for k, v in learner.settings.model_dump().items()
                    },
                }
                for i, learner in enumerate(learners)
            ],
        )
        await session.commit()


@dataclass
class World:
    """What outlives one day: recordings that can be re-sent, the running counters."""

    rng: random.Random
    openers: list[str]
    zipf: list[float]
    everyone: list[bytes] = field(default_factory=list)
    unique: int = 0


async def replay_day(
    s: Any,
    oa: FakeOpenAI,
    expiry: Expiry,
    world: World,
    learners: list[Learner],
    events: list[Event],
    day: int,
) -> Tally:
    rng, openers, zipf, everyone = world.rng, world.openers, world.zipf, world.everyone
    users = s.dp["users"]
    whisper, voice, honzik = s.dp["whisper"], s.dp["voice"], s.dp["conversation"].honzik
    counters = s.resources.cache.counters
    tally = Tally()
    for day_event in events:
        event = Event(day * 86400 + day_event.at, day_event.learner, day_event.opener_session)
        await expiry.advance(event.at)
        learner = learners[event.learner]
        tally.turns += 1
        async with s.resources.sessionmaker() as session:
            profile, settings = await users.context(session, learner.telegram)
        tally.context_calls += 1
        # A conversation ends after 30 quiet minutes.
        if learner.last_turn is None or event.at - learner.last_turn >= WINDOW:
            learner.history = []
        learner.last_turn = event.at
        opener = not learner.history
        tally.openers += opener
        world.unique += 1
        unique = world.unique
        meant = (
            rng.choices(openers, zipf)[0]
            if opener
            else f"Myslím, že {unique}. věta je jiná než ostatní ({learner.uid})."
        )
        if rng.random() < learner.p_voice:
            tally.voice += 1
            audio: bytes | None = None
            if rng.random() < RESENT_SHARE:
                own = rng.random() < 0.5 and learner.recordings
                pool = learner.recordings if own else everyone
                if pool:
                    audio = rng.choice(pool)
                    tally.resent += 1
            if audio is None:
                audio = RECORDING + f"#{learner.uid}-{unique}".encode()
                oa.add_transcript(audio, meant)
                learner.recordings.append(audio)
                everyone.append(audio)
            text = await whisper.transcribe(audio)
            tally.whisper_calls += 1
        else:
            text = meant
        hits_before = counters.hits[Family.HONZIK]
        reply = await honzik.answer(
            text,
            level=profile.level,
            native=profile.native_language,
            settings=settings,
            history=learner.history[-HISTORY:],
        )
        tally.honzik_calls += 1
        if opener and counters.hits[Family.HONZIK] > hits_before:
            tally.opener_hits += 1
        learner.history += [Turn("user", text), Turn("assistant", reply.reply)]
        if settings.voice_replies:
            speech = await voice.speak(reply.reply, settings.character, settings.voice_speed)
            tally.tts_calls += 1
            if speech.file_id is None:
                tally.uploads += 1
                await voice.remember_upload(
                    reply.reply,
                    settings.character,
                    settings.voice_speed,
                    f"tg-{day}-{tally.uploads}",
                )
    return tally


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay")
    parser.add_argument("--days", type=int, default=1, help="days to replay; the last is reported")
    days_ = parser.parse_args().days
    banner(
        f"A replayed day: {LEARNERS:,} learners through the cache helpers"
        + (f" (day {days_} of {days_}: steady state)" if days_ > 1 else " (from an empty cache)")
    )
    rng = random.Random(SEED)
    learners, events = make_day(rng)
    world = World(
        random.Random(SEED + 1), phrases(), [1 / k**ZIPF_S for k in range(1, PHRASES + 1)]
    )
    async with redis_db12(), FakeOpenAI() as oa:
        oa.script_chat(reply_per_request)
        async with stack(openai_base_url=oa.base_url, openai_max_retries=0) as s:
            await create_learners(s, learners)
            expiry = Expiry(s.resources.cache)
            counters = s.resources.cache.counters
            started = time.perf_counter()
            for day in range(days_):
                if day:
                    learners_rng = random.Random(SEED + 100 + day)
                    _, events = make_day(learners_rng)  # the same learners, another day
                    for learner in learners:
                        learner.history = []
                        learner.last_turn = None
                hits_before, misses_before = counters.hits.copy(), counters.misses.copy()
                calls_before = {e: len(oa.calls(e)) for e in ("transcriptions", "chat", "speech")}
                tally = await replay_day(s, oa, expiry, world, learners, events, day)
                print(
                    f"- day {day + 1} replayed ({time.perf_counter() - started:.0f} s)", flush=True
                )
            elapsed = time.perf_counter() - started
            hits = counters.hits - hits_before
            misses = counters.misses - misses_before
            upstream = {
                e: len(oa.calls(e)) - calls_before[e] for e in ("transcriptions", "chat", "speech")
            }
            config = s.config
            errors = counters.errors

    sessions = sum(1 for e in events if e.opener_session)
    print(f"\nReplayed in {elapsed:.1f} s (Redis errors: {errors}).\n")
    print(
        table(
            [
                ("learners", f"{LEARNERS:,}"),
                ("sessions", f"{sessions:,}"),
                ("turns (messages)", f"{tally.turns:,}"),
                ("conversation openers", f"{tally.openers:,} ({tally.openers / tally.turns:.1%})"),
                (
                    "  answered from the cache",
                    f"{tally.opener_hits:,} ({tally.opener_hits / tally.openers:.1%} of openers)",
                ),
                ("voice messages", f"{tally.voice:,} ({tally.voice / tally.turns:.1%})"),
                (
                    "  of which re-sent audio",
                    f"{tally.resent:,} ({tally.resent / tally.voice:.1%})",
                ),
                ("text messages", f"{tally.turns - tally.voice:,}"),
                ("voice replies wanted", f"{tally.tts_calls:,}"),
            ],
            ["the day", "count"],
        )
    )
    print()
    families = [
        (Family.USER, "learner context (profile+settings)", tally.context_calls, None, None),
        (
            Family.WHISPER,
            "Whisper",
            tally.whisper_calls,
            upstream["transcriptions"],
            config.price_whisper_call,
        ),
        (
            Family.HONZIK,
            "Honzík (chat)",
            tally.honzik_calls,
            upstream["chat"],
            config.price_honzik_call,
        ),
        (Family.TTS, "TTS", tally.tts_calls, upstream["speech"], config.price_tts_call),
    ]
    rows = []
    without = with_cache = 0.0
    for family, name, requests, calls, price in families:
        h, m = hits[family], misses[family]
        rate = h / (h + m) if h + m else 0.0
        if calls is None:
            rows.append(
                (
                    f"`{family.value}` {name}",
                    f"{requests:,}",
                    f"{h:,}",
                    f"{m:,}",
                    f"**{rate:.1%}**",
                    "–",
                    "–",
                    "–",
                )
            )
            continue
        saved = requests - calls
        without += requests * price
        with_cache += calls * price
        rows.append(
            (
                f"`{family.value}` {name}",
                f"{requests:,}",
                f"{h:,}",
                f"{m:,}",
                f"**{rate:.1%}**",
                f"{calls:,}",
                f"{saved:,} ({saved / requests:.1%})",
                f"${saved * price:,.2f} (at ${price:g})",
            )
        )
    print(
        table(
            rows,
            [
                "family",
                "lookups",
                "hits",
                "misses",
                "hit rate",
                "OpenAI calls made",
                "calls saved",
                "saved per day",
            ],
        )
    )
    print()
    print(
        f"OpenAI cost of the day (PRICE_* defaults): ${without:,.2f} without the cache, "
        f"${with_cache:,.2f} with it: **${without - with_cache:,.2f} saved per day "
        f"({(without - with_cache) / without:.1%})**, about ${30 * (without - with_cache):,.0f} "
        f"a month at this traffic. Each `user` hit saves two SQL statements instead "
        f"(a learner context load)."
    )
    print()
    print(
        "User-family lookups are one per update (the middleware's MGET); hits and misses are "
        "counted per key (profile and settings), so the rate is the same either way."
    )


if __name__ == "__main__":
    run(main)
