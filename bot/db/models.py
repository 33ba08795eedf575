"""SQLAlchemy 2 typed models: learners, their settings, messages, daily stats, words, the inbox."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import expression

from bot.domain import (
    Character,
    Corrections,
    Level,
    NativeLanguage,
    Scene,
    Style,
    UiLanguage,
    VoiceSpeed,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def sa_false() -> Any:
    """A server default both backends read as false."""
    return expression.false()


def one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    """A portable CHECK constraint instead of a PostgreSQL-only enum type."""
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_allowed")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, onupdate=_now, server_default=func.now()
    )


class MessageRole(StrEnum):
    LEARNER = "learner"
    TEACHER = "teacher"


class MessageKind(StrEnum):
    TEXT = "text"
    VOICE = "voice"


class User(Timestamped, Base):
    __tablename__ = "users"
    __table_args__ = (
        one_of("level", Level),
        one_of("native_language", NativeLanguage),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(128))
    native_language: Mapped[str] = mapped_column(String(8), default=NativeLanguage.EN.value)
    level: Mapped[str] = mapped_column(String(16), default=Level.BEGINNER.value)
    onboarded: Mapped[bool] = mapped_column(Boolean, default=False)
    conversation_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    current_streak: Mapped[int] = mapped_column(Integer, default=0)
    best_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_active_date: Mapped[dt.date | None] = mapped_column(Date)
    # Earned one per 7 days of streak, at most 2; a missed day spends one (services/activity).
    streak_freezes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The learner blocked the bot (a 403, or `my_chat_member` kicked): no reminders until
    # they write again.
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())

    settings: Mapped[UserSettings] = relationship(
        back_populates="user", cascade="all, delete-orphan", uselist=False
    )


class UserSettings(Timestamped, Base):
    __tablename__ = "user_settings"
    __table_args__ = (
        one_of("conversation_style", Style),
        one_of("corrections_level", Corrections),
        one_of("voice_speed", VoiceSpeed),
        one_of("character", Character),
        one_of("ui_language", UiLanguage),
        one_of("scene", Scene),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    conversation_style: Mapped[str] = mapped_column(String(16), default=Style.FRIENDLY.value)
    corrections_level: Mapped[str] = mapped_column(String(16), default=Corrections.BALANCED.value)
    voice_speed: Mapped[str] = mapped_column(String(16), default=VoiceSpeed.NORMAL.value)
    character: Mapped[str] = mapped_column(String(16), default=Character.HONZIK.value)
    timezone: Mapped[str | None] = mapped_column(String(64))
    voice_replies: Mapped[bool] = mapped_column(Boolean, default=True)
    ui_language: Mapped[str | None] = mapped_column(String(16))
    scene: Mapped[str | None] = mapped_column(String(32))
    # Save Honzík's suggested words without asking (`/autosave on`); off: a ➕ button.
    autosave: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    reminder_time: Mapped[dt.time | None] = mapped_column(Time)  # local; None: no reminders
    # The next moment a reminder is due (UTC): what schedulers claim, with SKIP LOCKED.
    next_reminder_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), index=True
    )

    user: Mapped[User] = relationship(back_populates="settings")


class Message(Base):
    """One turn of the conversation: what the learner said, or what the teacher answered."""

    __tablename__ = "messages"
    __table_args__ = (
        one_of("role", MessageRole),
        one_of("kind", MessageKind),
        one_of("scene", Scene),
        Index(None, "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default=MessageKind.TEXT.value)
    text: Mapped[str] = mapped_column(Text)
    corrected_text: Mapped[str | None] = mapped_column(Text)
    mistakes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    score: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    audio_file_id: Mapped[str | None] = mapped_column(String(256))
    answered: Mapped[bool] = mapped_column(Boolean, default=True)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    scene: Mapped[str | None] = mapped_column(String(32))  # the role-play it was said in
    # On a teacher's answer: the words Honzík suggested, for its ➕ button.
    new_words: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, server_default=func.now()
    )


class DailyStats(Base):
    """A learner's activity on one local day; updated in the transaction that stores a message."""

    __tablename__ = "daily_stats"
    __table_args__ = (UniqueConstraint("user_id", "date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    voice_messages: Mapped[int] = mapped_column(Integer, default=0)
    words_spoken: Mapped[int] = mapped_column(Integer, default=0)
    seconds_spoken: Mapped[float] = mapped_column(Float, default=0.0)
    mistakes: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[int] = mapped_column(Integer, default=0)
    scored_messages: Mapped[int] = mapped_column(Integer, default=0)
    new_words: Mapped[int] = mapped_column(Integer, default=0)


class CardState(StrEnum):
    """Where a card is in SM-2 with learning steps (Anki's model)."""

    NEW = "new"
    LEARNING = "learning"
    REVIEW = "review"
    RELEARNING = "relearning"


class SavedWord(Base):
    """A word the learner keeps, scheduled for review with SM-2."""

    __tablename__ = "saved_words"
    __table_args__ = (
        UniqueConstraint("user_id", "word"),
        Index(None, "user_id", "next_review"),
        one_of("state", CardState),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    word: Mapped[str] = mapped_column(String(128))
    translation: Mapped[str] = mapped_column(String(256))
    example: Mapped[str | None] = mapped_column(Text)
    ease_factor: Mapped[float] = mapped_column(Float, default=2.5)
    interval_days: Mapped[int] = mapped_column(Integer, default=0)
    repetitions: Mapped[int] = mapped_column(Integer, default=0)
    next_review: Mapped[dt.date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(
        String(16), default=CardState.NEW.value, server_default=CardState.NEW.value
    )
    step: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # learning step
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # in a step
    introduced_on: Mapped[dt.date | None] = mapped_column(Date)  # first reviewed (new-card cap)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, server_default=func.now()
    )


class Reminder(Base):
    """One learner's reminder on one local day: the row that makes it go out once.

    Claimed (inserted) before it is sent and marked sent after; a claim left unsent by a
    process that died is taken over after a while, on the same local day only.
    """

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("user_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class InboxUpdate(Base):
    """An update fetched by polling and not yet finished: what a restart handles first."""

    __tablename__ = "inbox"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=_now, server_default=func.now()
    )
