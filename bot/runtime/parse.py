"""Turning Telegram's raw JSON into aiogram's `Update`, one update at a time.

A single update this aiogram cannot read (an origin type newer than it, a field an older
local Bot API server leaves out) must cost that update only, never the batch it came in.

JSON may carry text no database stores and no encoder writes: NUL (PostgreSQL rejects it in
text and jsonb) and lone UTF-16 surrogates (`"\\ud800"`, which `str.encode` refuses). `loads`
makes such text storable once, where the raw body is read, so the learner's message is kept
and answered; it walks the structure only when the body can contain them.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from pydantic import ValidationError

from bot.metrics import Metrics

log = logging.getLogger(__name__)

# What a body holding NUL or a lone surrogate must contain: the JSON escape (any case; not an
# emoji's escaped pair), or a surrogate's own UTF-8-like bytes, which `json.loads` decodes
# with "surrogatepass". Each pattern starts with a literal, so a clean body is scanned fast.
_HIGH, _LOW = r"[dD][89abAB][0-9a-fA-F]{2}", r"[dD][c-fC-F][0-9a-fA-F]{2}"
_ESCAPE = rf"\\u(?:0000|{_HIGH}(?!\\u{_LOW})|{_LOW}(?<!\\u{_HIGH}\\u{_LOW}))"
_ESCAPE_BYTES, _ESCAPE_TEXT = re.compile(_ESCAPE.encode()), re.compile(_ESCAPE)
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_ODD_CHARS = re.compile("[\x00\ud800-\udfff]")


def _storable(match: re.Match[str]) -> str:
    return "" if match.group() == "\x00" else "\ufffd"


def clean(raw: Any) -> Any:
    """`raw` with NULs dropped and lone surrogates replaced by U+FFFD, in keys and values.

    Iterative: a structure nested as deep as `json.loads` allows must not overflow the stack.
    """
    root = [raw]
    stack: list[list[Any] | dict[str, Any]] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in [key for key in node if _ODD_CHARS.search(key)]:
                node[_ODD_CHARS.sub(_storable, key)] = node.pop(key)
            slots: Any = node.keys()
        else:
            slots = range(len(node))
        for slot in slots:
            value = node[slot]
            if isinstance(value, str):
                node[slot] = _ODD_CHARS.sub(_storable, value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return root[0]


def loads(body: bytes | str) -> Any:
    """`json.loads`, then `clean` only if the body can hold NUL or a lone surrogate at all.

    Raises what `json.loads` raises (ValueError, or RecursionError for absurd nesting).
    """
    raw = json.loads(body)
    if isinstance(body, bytes):
        odd = bool(_ESCAPE_BYTES.search(body) or _RAW_SURROGATE.search(body))
    else:
        odd = bool(_ESCAPE_TEXT.search(body) or _ODD_CHARS.search(body))
    return clean(raw) if odd else raw


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
