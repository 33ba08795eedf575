"""`python -m bot`: read the configuration, then start the bot.

The configuration is checked before aiogram and the rest are imported, so a missing token
is reported at once, in one line.
"""

from __future__ import annotations

import asyncio
import sys

from pydantic import ValidationError

from bot.config import Config

BOT_TOKEN_HELP = (
    "BOT_TOKEN is not set: create a bot with @BotFather in Telegram "
    "(https://t.me/BotFather) and put its token in .env or the environment."
)


def load_config() -> Config:
    """The configuration, or exit with one line that says what to fix."""
    try:
        return Config()
    except ValidationError as exc:
        missing = [".".join(map(str, e["loc"])) for e in exc.errors() if e["type"] == "missing"]
        if "bot_token" in missing:
            sys.exit(BOT_TOKEN_HELP)
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"Invalid configuration: {problems}")


def secrets_of(config: Config) -> dict[str, str | None]:
    """What the log filter hides, by the name of the variable that holds it."""
    return {
        name: secret.get_secret_value() if secret is not None else None
        for name, secret in (
            ("BOT_TOKEN", config.bot_token),
            ("OPENAI_API_KEY", config.openai_api_key),
            ("WEBHOOK_SECRET", config.webhook_secret),
        )
    }


def main() -> None:
    config = load_config()
    if config.webhook_url and config.webhook_secret is None:
        sys.exit(
            "WEBHOOK_URL is set but WEBHOOK_SECRET is not: set a random secret "
            "(letters, digits, _ and -) so only Telegram can post updates."
        )
    from bot.app import run
    from bot.logs import setup_logging

    setup_logging(config.log_level, config.environment, secrets_of(config))
    sys.exit(asyncio.run(run(config)))


if __name__ == "__main__":
    main()
