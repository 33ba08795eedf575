"""Value sets and the typed learner context that handlers receive.

Values are plain strings constrained in Python and by CHECK constraints, so SQLite and
PostgreSQL behave the same and tests on SQLite see every rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Level(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"
    NATIVE = "native"


class Style(StrEnum):
    FRIENDLY = "friendly"
    TUTOR = "tutor"
    CASUAL = "casual"


class Corrections(StrEnum):
    MINIMAL = "minimal"
    BALANCED = "balanced"
    DETAILED = "detailed"


class VoiceSpeed(StrEnum):
    VERY_SLOW = "very_slow"
    SLOW = "slow"
    NORMAL = "normal"
    NATIVE = "native"


class Character(StrEnum):
    HONZIK = "honzik"
    NOVAKOVA = "novakova"


class NativeLanguage(StrEnum):
    RU = "ru"
    UK = "uk"
    PL = "pl"
    SK = "sk"
    EN = "en"
    DE = "de"
    VI = "vi"


class UiLanguage(StrEnum):
    """Which language the bot's own texts are in: Czech, or the learner's native language."""

    CZECH = "czech"
    NATIVE = "native"


class Scene(StrEnum):
    """Everyday situations to role-play (`/scenario`): the character plays the other side."""

    PUB = "pub"
    DOCTOR = "doctor"
    STATION = "station"
    FOREIGN_POLICE = "foreign_police"
    SHOP = "shop"
    JOB_INTERVIEW = "job_interview"
    FLAT = "flat"
    HAIRDRESSER = "hairdresser"


class Profile(BaseModel):
    """Who the learner is; cached as `user:{telegram_id}:profile`."""

    model_config = ConfigDict(frozen=True)

    id: int
    telegram_id: int
    username: str | None
    first_name: str | None
    native_language: NativeLanguage
    level: Level
    onboarded: bool
    blocked: bool = False  # the learner blocked the bot: no reminders until they write again


class LearnerSettings(BaseModel):
    """How the learner wants to be taught; cached as `user:{telegram_id}:settings`."""

    model_config = ConfigDict(frozen=True)

    conversation_style: Style = Style.FRIENDLY
    corrections_level: Corrections = Corrections.BALANCED
    voice_speed: VoiceSpeed = VoiceSpeed.NORMAL
    character: Character = Character.HONZIK
    timezone: str | None = None
    voice_replies: bool = True
    ui_language: UiLanguage | None = None  # None: by level (see `bot.i18n`)
    scene: Scene | None = None  # None: free conversation
    autosave: bool = False  # save Honzík's suggested words without the ➕ button
    reminder_time: dt.time | None = None  # local time of the daily reminder; None: off


def ui_language_of(level: Level, chosen: UiLanguage | None) -> UiLanguage:
    """The learner's choice, else by level: beginners and intermediates can't yet read Czech."""
    if chosen is not None:
        return chosen
    if level in (Level.BEGINNER, Level.INTERMEDIATE):
        return UiLanguage.NATIVE
    return UiLanguage.CZECH


@dataclass(frozen=True, slots=True)
class Option:
    """One setting a learner can change, by button or by typing `/{name} value`."""

    name: str
    field: str
    on_profile: bool
    values: tuple[str, ...]

    @property
    def switch(self) -> bool:
        """An on/off option, stored as a bool."""
        return self.values == SWITCH

    def parse(self, raw: str) -> str | bool | None:
        """The stored value for what the learner typed or pressed, or None if it is not valid."""
        value = raw.strip().lower()
        if value not in self.values:
            return None
        if self.switch:
            return value == "on"
        return value

    def shown(self, profile: Profile, settings: LearnerSettings) -> str:
        """The current value in the same words the learner would type."""
        current = getattr(profile if self.on_profile else settings, self.field)
        if self.field == "ui_language":
            return ui_language_of(profile.level, settings.ui_language).value
        if isinstance(current, bool):
            return "on" if current else "off"
        return str(current)


SWITCH = ("on", "off")


def _values(kind: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in kind)


OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("level", "level", True, _values(Level)),
        Option("language", "native_language", True, _values(NativeLanguage)),
        Option("ui", "ui_language", False, _values(UiLanguage)),
        Option("style", "conversation_style", False, _values(Style)),
        Option("corrections", "corrections_level", False, _values(Corrections)),
        Option("speed", "voice_speed", False, _values(VoiceSpeed)),
        Option("character", "character", False, _values(Character)),
        Option("voice", "voice_replies", False, SWITCH),
        Option("autosave", "autosave", False, SWITCH),
    )
}
