"""Turning Telegram's raw JSON into aiogram's `Update`, one update at a time.

A single update this aiogram cannot read (an origin type newer than it, a field an older
local Bot API server leaves out) must cost that update only, never the batch it came in.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from pydantic import ValidationError

from bot.metrics import Metrics

log = logging.getLogger(__name__)


def top_level_type(raw: dict[str, Any]) -> str:
    """What kind of update this is (`message`, `callback_query`, …), without its content."""
    kinds = [name for name in raw if name != "update_id"]
    return ",".join(kinds) or "empty"


def describe(error: ValidationError) -> str:
    """Where validation failed and why, without the values the learner sent."""
    problems = error.errors(include_url=False, include_context=False, include_input=False)
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in problems[:5]
    )


def parse_update(raw: object, bot: Bot, metrics: Metrics) -> Update | None:
    """The update, or None (logged and counted) when it cannot be read."""
    if not isinstance(raw, dict):
        log.warning("skipping an update that is not a JSON object")
        metrics.updates_unparseable.inc()
        return None
    try:
        return Update.model_validate(raw, context={"bot": bot})
    except ValidationError as exc:
        log.warning(
            "skipping update %s (%s) that this version cannot read: %s",
            raw.get("update_id"),
            top_level_type(raw),
            describe(exc),
        )
        metrics.updates_unparseable.inc()
        return None
