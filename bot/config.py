"""Typed configuration read from the environment and `.env`.

Every variable here is documented in `.env.example`; the names are a contract with operators.
"""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.cache.keys import Family

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./mluv.db"


def normalize_database_url(url: str) -> str:
    """Turn the plain URLs hosting platforms hand out into async driver URLs.

    Railway and Heroku give `postgres://` or `postgresql://`; SQLAlchemy's async engine needs
    the asyncpg driver named explicitly, and a bare `sqlite://` needs aiosqlite.
    """
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class DatabaseConfig(BaseSettings):
    """The part of the configuration that `alembic` needs without a bot token."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalize_database_url(value)


class Config(DatabaseConfig):
    """Everything the running bot reads from its environment."""

    bot_token: SecretStr
    telegram_api_url: str | None = None

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_temperature: float = Field(default=0.3, ge=0, le=2)  # low: stable scores
    openai_timeout: float = Field(default=30.0, gt=0)
    openai_max_retries: int = Field(default=3, ge=0, le=10)
    whisper_model: str = "whisper-1"
    tts_model: str = "tts-1"
    tts_voice_honzik: str = "onyx"
    tts_voice_novakova: str = "nova"
    max_voice_seconds: int = Field(default=120, gt=0)
    stream_replies: bool = True  # drafts (sendMessageDraft) while Honzík writes, earlier voice
    conversation_window_minutes: int = Field(default=30, gt=0)
    history_messages: int = Field(default=6, ge=0, le=40)

    redis_url: str = "redis://localhost:6379/0"
    cache_enabled: bool = True
    redis_max_connections: int = Field(default=50, gt=0)
    redis_key_prefix: str = ""
    redis_cache_ttl_default: int = Field(default=3600, gt=0)
    redis_cache_ttl_user: int = Field(default=3600, gt=0)
    redis_cache_ttl_stats: int = Field(default=900, gt=0)
    redis_cache_ttl_openai: int = Field(default=86400, gt=0)
    cache_bypass: Annotated[frozenset[Family], NoDecode] = frozenset()

    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    timezone: str = "Europe/Prague"
    environment: str = "development"
    log_level: str = "INFO"
    auto_migrate: bool = True
    port: int = Field(default=8000, gt=0, lt=65536)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_max_connections: int = Field(default=100, ge=1, le=100)

    rate_limit_per_minute: int = Field(default=20, ge=0)
    reminder_messages_per_second: float = Field(default=25.0, gt=0, le=30)
    reminder_check_seconds: float = Field(default=20.0, gt=0, le=600)
    daily_ai_messages: int = Field(default=0, ge=0)
    price_honzik_call: float = Field(default=0.0006, ge=0)
    price_whisper_call: float = Field(default=0.003, ge=0)
    price_tts_call: float = Field(default=0.0015, ge=0)

    @field_validator("bot_token", mode="before")
    @classmethod
    def _token_given(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("missing", "BOT_TOKEN is empty")
        return value

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        # The shape Telegram issues: "<bot id>:<secret>"; checked here so the error names it.
        bot_id, _, secret = value.get_secret_value().partition(":")
        if not bot_id.isdigit() or not secret or any(c.isspace() for c in secret):
            raise ValueError("this does not look like a token from @BotFather (123456:ABC...)")
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("cache_bypass", mode="before")
    @classmethod
    def _family_names(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = {part.strip().lower() for part in value.split(",") if part.strip()}
        known = {family.value for family in Family}
        if unknown := sorted(names - known):
            raise ValueError(
                f"unknown cache families {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return frozenset(Family(name) for name in names)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("telegram_api_url", "openai_base_url", "webhook_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _telegram_secret(cls, value: object) -> object:
        if value == "":
            return None
        if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("use 1-256 letters, digits, _ or -")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
