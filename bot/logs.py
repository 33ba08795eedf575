"""Logging: plain lines in development, one JSON object per line in production.

Every line carries the update id and the learner's Telegram id of the update being handled
(through context variables set by the in-flight middleware). What learners say is logged
only at DEBUG, and secrets never: a filter on the handler replaces them in every record, as
a second line of defence behind code that does not log them in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from contextvars import ContextVar

update_id: ContextVar[int | None] = ContextVar("update_id", default=None)
telegram_id: ContextVar[int | None] = ContextVar("telegram_id", default=None)

# Loggers that write request URLs (the Telegram token is part of every Bot API URL) at INFO
# or below: kept for debugging only. The installed openai sends through httpx2 and httpcore2,
# older ones through httpx and httpcore.
QUIET_LOGGERS = ("httpx", "httpcore", "httpx2", "httpcore2", "openai")


class _UpdateContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.update_id = update_id.get()
        record.telegram_id = telegram_id.get()
        return True


class RedactSecrets(logging.Filter):
    """Replaces each secret with `<NAME>` in a record's message, arguments and traceback.

    The message is rendered here (arguments merged in), because an argument of any type may
    render to text holding a secret, such as an exception or a URL object.
    """

    def __init__(self, secrets: Mapping[str, str | None]) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted(
            ((value, f"<{name}>") for name, value in secrets.items() if value),
            key=lambda item: -len(item[0]),
        )

    def redact(self, text: str) -> str:
        for value, placeholder in self._secrets:
            text = text.replace(value, placeholder)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it when emitting
            message = str(record.msg)
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "update_id": getattr(record, "update_id", None),
            "telegram_id": getattr(record, "telegram_id", None),
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, environment: str, secrets: Mapping[str, str | None]) -> None:
    """Log to stderr; `secrets` (placeholder name -> value) never appear in what is written."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_UpdateContext())
    handler.addFilter(RedactSecrets(secrets))
    if environment == "production":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [u=%(update_id)s t=%(telegram_id)s] %(message)s"
            )
        )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    quiet = max(logging.WARNING, logging.getLogger().level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
