"""Logging: plain lines in development, one JSON object per line in production.

Every line carries the update id and the learner's Telegram id of the update being handled
(through context variables set by the in-flight middleware). What learners say is logged
only at DEBUG, and secrets never.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar

update_id: ContextVar[int | None] = ContextVar("update_id", default=None)
telegram_id: ContextVar[int | None] = ContextVar("telegram_id", default=None)


class _UpdateContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.update_id = update_id.get()
        record.telegram_id = telegram_id.get()
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
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str, environment: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_UpdateContext())
    if environment == "production":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [u=%(update_id)s t=%(telegram_id)s] %(message)s"
            )
        )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request URL at INFO; keep that for debugging only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
