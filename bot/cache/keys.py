"""Every Redis name the bot writes, built in one place.

The patterns and TTLs are the operator's contract (see the README's cache section); a key
family is what hit/miss counters, `/cache_flush` and `CACHE_BYPASS` speak of. Entries whose
value type belongs to a service are given that type by the service: this module must not
import its callers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from bot.domain import LearnerSettings, Profile

T = TypeVar("T")


class Family(StrEnum):
    USER = "user"
    HISTORY = "history"
    STATS = "stats"
    HONZIK = "honzik"
    WHISPER = "whisper"
    TTS = "tts"
    WORDS = "words"
    TRANSLATE = "translate"


# Entries made from what a learner said (their transcript, Honzík's answer to it, its voice and
# its translation): listed in the learner's content index, so "delete all my data" deletes
# them too. A translation is Honzík's answer in other words, so it goes wherever the answer goes.
CONTENT_FAMILIES = frozenset({Family.HONZIK, Family.WHISPER, Family.TTS, Family.TRANSLATE})

# The first segment of every key the bot caches; what `/cache_flush` may delete. Rate limits,
# budgets, update marks and the shared counters live under other roots and survive a flush.
KEY_ROOTS: tuple[str, ...] = ("user", "stats", "honzik", "whisper", "tts", "words", "translate")

# Version counters must outlive every entry stamped with them (the longest lives a day).
VERSION_TTL = 2 * 86400
RATE_LIMIT_TTL = 60
BUDGET_TTL = 2 * 86400  # a learner's day may end up to a day after UTC's
UPDATE_DONE_TTL = 86400  # Telegram stops redelivering an update long before this
ALBUM_TTL = 600  # an album's messages all arrive within seconds of each other
SHARED_COUNTERS = "metrics:cache"  # a hash outside the flushable families
SHARED_COUNTERS_TTL = 30 * 86400  # renewed on every push; gone a month after the last replica


@dataclass(frozen=True, slots=True)
class Key(Generic[T]):
    """One cache entry: its name, family (for counters), time to live in seconds, value type."""

    name: str
    family: Family
    ttl: int
    kind: type[T]

    @property
    def lock(self) -> str:
        """The single-flight lock that replicas loading this entry (and its group) share."""
        return f"{self.name}:lock"


@dataclass(frozen=True, slots=True)
class CacheTTLs:
    default: int = 3600
    user: int = 3600
    stats: int = 900
    openai: int = 86400


@dataclass(frozen=True, slots=True)
class Keys:
    """Key builders bound to the configured TTLs."""

    ttl: CacheTTLs

    def profile(self, telegram_id: int) -> Key[Profile]:
        return Key(f"user:{telegram_id}:profile", Family.USER, self.ttl.user, Profile)

    def settings(self, telegram_id: int) -> Key[LearnerSettings]:
        return Key(f"user:{telegram_id}:settings", Family.USER, self.ttl.user, LearnerSettings)

    def content(self, telegram_id: int) -> Key[str]:
        """A set of the names of the CONTENT_FAMILIES entries this learner's messages made or
        used; renewed with every name added, so it outlives each of them."""
        return Key(f"user:{telegram_id}:content", Family.USER, self.ttl.openai, str)

    def history(self, telegram_id: int, limit: int, kind: type[T]) -> Key[T]:
        return Key(f"user:{telegram_id}:history:{limit}", Family.HISTORY, self.ttl.user, kind)

    def daily_stats(
        self, user_id: int, day: dt.date, seconds_to_midnight: int, kind: type[T]
    ) -> Key[T]:
        name = f"stats:{user_id}:daily:{day.isoformat()}"
        return Key(name, Family.STATS, seconds_to_midnight, kind)

    def progress(self, user_id: int, seconds_to_midnight: int, kind: type[T]) -> Key[T]:
        """Streaks are about today, so the entry never outlives the learner's day."""
        ttl = min(self.ttl.stats, seconds_to_midnight)
        return Key(f"stats:{user_id}:progress", Family.STATS, ttl, kind)

    def stats_chart(self, user_id: int, day: dt.date, seconds_to_midnight: int) -> Key[str]:
        """Telegram's file id of today's chart."""
        name = f"stats:{user_id}:chart:{day.isoformat()}"
        return Key(name, Family.STATS, seconds_to_midnight, str)

    def stats_version(self, user_id: int) -> Key[int]:
        return Key(f"stats:{user_id}:version", Family.STATS, VERSION_TTL, int)

    def honzik(self, digest: str, kind: type[T]) -> Key[T]:
        return Key(f"honzik:response:{digest}", Family.HONZIK, self.ttl.openai, kind)

    def whisper(self, audio_digest: str, kind: type[T]) -> Key[T]:
        return Key(f"whisper:{audio_digest}", Family.WHISPER, self.ttl.openai, kind)

    def tts(self, text_digest: str, voice: str, kind: type[T]) -> Key[T]:
        return Key(f"tts:{text_digest}:{voice}", Family.TTS, self.ttl.openai, kind)

    def translate(self, digest: str, language: str, kind: type[T]) -> Key[T]:
        """One text's translation into `language`, shared by every learner who asks for it."""
        return Key(f"translate:{digest}:{language}", Family.TRANSLATE, self.ttl.openai, kind)

    def words_all(self, user_id: int, kind: type[T]) -> Key[T]:
        return Key(f"words:{user_id}:all", Family.WORDS, self.ttl.user, kind)

    def words_due(self, user_id: int, seconds_to_midnight: int, kind: type[T]) -> Key[T]:
        """What is due changes at midnight, so the entry ends there at the latest."""
        ttl = min(self.ttl.user, seconds_to_midnight)
        return Key(f"words:{user_id}:due", Family.WORDS, ttl, kind)

    def words_version(self, user_id: int) -> Key[int]:
        return Key(f"words:{user_id}:version", Family.WORDS, VERSION_TTL, int)

    @staticmethod
    def rate_limit(telegram_id: int, minute_window: int) -> str:
        """Messages in one minute; lives RATE_LIMIT_TTL."""
        return f"ratelimit:{telegram_id}:{minute_window}"

    @staticmethod
    def budget(telegram_id: int, day: dt.date) -> str:
        """AI answers on the learner's day; lives BUDGET_TTL."""
        return f"budget:{telegram_id}:{day.isoformat()}"

    @staticmethod
    def update_mark(bot_id: int, update_id: int) -> str:
        """An update's lease while it is handled, then its done mark for UPDATE_DONE_TTL."""
        return f"update:{bot_id}:{update_id}"

    @staticmethod
    def album(chat_id: int, media_group_id: str) -> str:
        """Set by the first message of an album to get a hint, so the rest stay silent; lives
        ALBUM_TTL."""
        return f"album:{chat_id}:{media_group_id}"
