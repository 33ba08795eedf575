"""Configuration from the environment: URL normalisation, parsing, defaults, the start-up error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import DEFAULT_DATABASE_URL, Config, DatabaseConfig, normalize_database_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:TEST-token"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable of the machine (or a .env in the working directory) leaks into a test."""
    for name in Config.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> Config:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Config(_env_file=None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgresql+asyncpg://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
        ("sqlite+aiosqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_url_gets_the_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    assert normalize_database_url(given) == expected
    assert load(monkeypatch, DATABASE_URL=given).database_url == expected
    # alembic reads the same variable through the token-less part of the configuration
    assert DatabaseConfig(_env_file=None).database_url == expected


def test_default_database_is_local_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch).database_url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///./mluv.db"
    assert DatabaseConfig(_env_file=None).database_url == DEFAULT_DATABASE_URL


def test_admin_ids_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(monkeypatch, ADMIN_IDS="1, 2,3")
    assert config.admin_ids == frozenset({1, 2, 3})
    assert isinstance(config.admin_ids, frozenset)
    assert load(monkeypatch, ADMIN_IDS="42").admin_ids == frozenset({42})
    assert load(monkeypatch, ADMIN_IDS="").admin_ids == frozenset()
    with pytest.raises(ValidationError):
        load(monkeypatch, ADMIN_IDS="1,two")


def test_no_admins_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch).admin_ids == frozenset()


@pytest.mark.parametrize("name", ["TELEGRAM_API_URL", "OPENAI_BASE_URL", "WEBHOOK_URL"])
def test_empty_urls_mean_unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    assert getattr(load(monkeypatch, **{name: ""}), name.lower()) is None
    set_ = load(monkeypatch, **{name: "http://127.0.0.1:8081"})
    assert getattr(set_, name.lower()) == "http://127.0.0.1:8081"


def test_timezone_must_be_a_known_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        load(monkeypatch, TIMEZONE="Mars/Olympus_Mons")
    with pytest.raises(ValidationError):
        load(monkeypatch, TIMEZONE="../../etc/passwd")
    config = load(monkeypatch, TIMEZONE="Asia/Tokyo")
    assert config.timezone == "Asia/Tokyo"
    assert str(config.zone) == "Asia/Tokyo"


def test_defaults_match_the_operator_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(monkeypatch)
    assert config.bot_token.get_secret_value() == TOKEN
    assert config.redis_max_connections == 50
    assert config.redis_cache_ttl_default == 3600
    assert config.redis_cache_ttl_user == 3600
    assert config.redis_cache_ttl_stats == 900
    assert config.redis_cache_ttl_openai == 86400
    assert config.cache_enabled is True
    assert config.port == 8000
    assert config.timezone == "Europe/Prague"
    assert str(config.zone) == "Europe/Prague"
    assert config.telegram_api_url is None
    assert config.redis_key_prefix == ""


def test_environment_overrides_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load(
        monkeypatch,
        REDIS_MAX_CONNECTIONS="7",
        REDIS_CACHE_TTL_USER="60",
        CACHE_ENABLED="false",
        PORT="9000",
    )
    assert (config.redis_max_connections, config.redis_cache_ttl_user) == (7, 60)
    assert config.cache_enabled is False
    assert config.port == 9000
    with pytest.raises(ValidationError):
        load(monkeypatch, REDIS_MAX_CONNECTIONS="0")


def test_the_token_is_required_and_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="bot_token"):
        Config(_env_file=None)
    config = load(monkeypatch)
    assert TOKEN not in repr(config)


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nADMIN_IDS=5,6\n")
    config = Config()
    assert config.bot_token.get_secret_value() == TOKEN
    assert config.admin_ids == frozenset({5, 6})


@pytest.fixture(scope="module")
def bot_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, Path]]:
    """Start `python -m bot` twice at once (importing aiogram takes seconds), clean env each."""
    cases = {"no token": {}, "bad zone": {"BOT_TOKEN": TOKEN, "TIMEZONE": "Nowhere/Land"}}
    running = {}
    for name, extra in cases.items():
        cwd = tmp_path_factory.mktemp(name.replace(" ", "_"))  # no .env here
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(PROJECT_ROOT)}
        env.update(extra)
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running[name] = (process, cwd)
    results = {}
    for name, (process, cwd) in running.items():
        try:
            _, stderr = process.communicate(timeout=60)
        finally:
            process.kill()
        results[name] = (process.returncode, stderr, cwd)
    return results


def test_starting_without_a_token_explains_how_to_get_one(
    bot_runs: dict[str, tuple[int, str, Path]],
) -> None:
    returncode, stderr, cwd = bot_runs["no token"]

    assert returncode != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "BOT_TOKEN" in lines[0]
    assert "@BotFather" in lines[0]
    assert "Traceback" not in stderr
    assert not (cwd / "mluv.db").exists()


def test_starting_with_a_bad_setting_names_it_on_one_line(
    bot_runs: dict[str, tuple[int, str, Path]],
) -> None:
    returncode, stderr, _ = bot_runs["bad zone"]

    assert returncode != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "TIMEZONE" in lines[0]
    assert "Traceback" not in stderr
