"""Every cache key the bot writes, built in one place.

The patterns and TTLs are the operator's contract (see the README's cache section); a key
family is what hit/miss counters and `/cache_flush` speak of.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    USER = "user"
    HISTORY = "history"
    STATS = "stats"
    HONZIK = "honzik"
    WHISPER = "whisper"
    TTS = "tts"
    WORDS = "words"


# The first segment of every key the bot caches; what `/cache_flush` may delete.
KEY_ROOTS: tuple[str, ...] = ("user", "stats", "honzik", "whisper", "tts", "words")


# Version counters must outlive every entry stamped with them (the longest lives a day).
VERSION_TTL = 2 * 86400


@dataclass(frozen=True, slots=True)
class Key:
    """One cache entry's name, family (for counters) and time to live in seconds."""

    name: str
    family: Family
    ttl: int


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

    def profile(self, telegram_id: int) -> Key:
        return Key(f"user:{telegram_id}:profile", Family.USER, self.ttl.user)

    def settings(self, telegram_id: int) -> Key:
        return Key(f"user:{telegram_id}:settings", Family.USER, self.ttl.user)

    def history(self, telegram_id: int, limit: int) -> Key:
        return Key(f"user:{telegram_id}:history:{limit}", Family.HISTORY, self.ttl.user)

    def daily_stats(self, user_id: int, day: dt.date, seconds_to_midnight: int) -> Key:
        return Key(f"stats:{user_id}:daily:{day.isoformat()}", Family.STATS, seconds_to_midnight)

    def progress(self, user_id: int, seconds_to_midnight: int) -> Key:
        """Streaks are about today, so the entry never outlives the learner's day."""
        ttl = min(self.ttl.stats, seconds_to_midnight)
        return Key(f"stats:{user_id}:progress", Family.STATS, ttl)

    def stats_chart(self, user_id: int, day: dt.date, seconds_to_midnight: int) -> Key:
        return Key(f"stats:{user_id}:chart:{day.isoformat()}", Family.STATS, seconds_to_midnight)

    def stats_version(self, user_id: int) -> Key:
        return Key(f"stats:{user_id}:version", Family.STATS, VERSION_TTL)

    def honzik(self, digest: str) -> Key:
        return Key(f"honzik:response:{digest}", Family.HONZIK, self.ttl.openai)

    def whisper(self, audio_digest: str) -> Key:
        return Key(f"whisper:{audio_digest}", Family.WHISPER, self.ttl.openai)

    def tts(self, text_digest: str, voice: str) -> Key:
        return Key(f"tts:{text_digest}:{voice}", Family.TTS, self.ttl.openai)

    def words_all(self, user_id: int) -> Key:
        return Key(f"words:{user_id}:all", Family.WORDS, self.ttl.user)

    def words_due(self, user_id: int, seconds_to_midnight: int) -> Key:
        """What is due changes at midnight, so the entry ends there at the latest."""
        ttl = min(self.ttl.user, seconds_to_midnight)
        return Key(f"words:{user_id}:due", Family.WORDS, ttl)

    def words_version(self, user_id: int) -> Key:
        return Key(f"words:{user_id}:version", Family.WORDS, VERSION_TTL)
