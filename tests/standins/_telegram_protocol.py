"""The Bot API's wire format and rules, as the Telegram stand-in needs them.

Kept apart from the stateful server in `telegram.py`: how requests are encoded,
what objects look like, and which inputs the real server rejects (with its own
error descriptions, so the bot's error handling meets realistic failures).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

MAX_TEXT, MAX_CAPTION = 4096, 1024
MAX_DOWNLOAD, MAX_UPLOAD = 20 * 1024 * 1024, 50 * 1024 * 1024

# Send method -> (parameter holding the file, folder of its file_path, file extension).
MEDIA_METHODS: dict[str, tuple[str, str, str]] = {
    "sendVoice": ("voice", "voice", "oga"),
    "sendAudio": ("audio", "music", "mp3"),
    "sendPhoto": ("photo", "photos", "jpg"),
    "sendDocument": ("document", "documents", "bin"),
    "sendVideo": ("video", "videos", "mp4"),
    "sendVideoNote": ("video_note", "video_notes", "mp4"),
    "sendAnimation": ("animation", "animations", "mp4"),
    "sendSticker": ("sticker", "stickers", "webp"),
}
FOLDERS = {kind: (folder, ext) for kind, folder, ext in MEDIA_METHODS.values()}
_VIDEO = {"duration": 0, "mime_type": "video/mp4"}
_STICKER = {"type": "regular", "width": 512, "height": 512, "is_animated": False}
_MEDIA_DEFAULTS: dict[str, dict[str, Any]] = {
    "voice": {"duration": 0, "mime_type": "audio/ogg"},
    "audio": {"duration": 0, "mime_type": "audio/mpeg"},
    "document": {"mime_type": "application/octet-stream"},
    "video": {"width": 640, "height": 360, **_VIDEO},
    "animation": {"width": 320, "height": 240, **_VIDEO},
    "video_note": {"length": 240, "duration": 0},
    "sticker": {**_STICKER, "is_video": False},
    "photo": {},
}
# Request parameters that describe the sent media and so reappear in the returned object.
MEDIA_PARAMS = ("duration", "width", "height", "length", "title", "performer", "emoji")
# Methods with their own handler, by lower-case name (Telegram ignores the case).
API_METHODS = {
    name.lower(): name
    for name in [
        *("getMe", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo"),
        *("setMyCommands", "getMyCommands", "sendMessage", "editMessageText"),
        *("editMessageReplyMarkup", "answerCallbackQuery", "sendChatAction", "deleteMessage"),
        *("getFile", "sendMessageDraft", *MEDIA_METHODS),
    ]
}
# Parameters of each implemented method, from the Bot API 10.1 spec (core.telegram.org/bots/api,
# as scraped by PaulSonOfLars/telegram-bot-api-spec), plus parameters deprecated since Bot API
# 7.0 that Telegram still accepts. Update it with the stand-in when the bot starts using more.
_SENT = (
    *("business_connection_id", "chat_id", "message_thread_id", "direct_messages_topic_id"),
    *("disable_notification", "protect_content", "allow_paid_broadcast", "message_effect_id"),
    *("suggested_post_parameters", "reply_parameters", "reply_markup"),
    *("reply_to_message_id", "allow_sending_without_reply"),  # deprecated, still accepted
)
_CAPTION = ("caption", "parse_mode", "caption_entities")
_TEXT = ("text", "parse_mode", "entities", "link_preview_options", "disable_web_page_preview")
_EDITED = ("business_connection_id", "chat_id", "message_id", "inline_message_id")
_WEBHOOK = ("url", "certificate", "ip_address", "max_connections", "allowed_updates")
PARAMETERS: dict[str, frozenset[str]] = {
    method: frozenset(names)
    for method, names in {
        "getMe": (),
        "getUpdates": ("offset", "limit", "timeout", "allowed_updates"),
        "setWebhook": (*_WEBHOOK, "drop_pending_updates", "secret_token"),
        "deleteWebhook": ("drop_pending_updates",),
        "getWebhookInfo": (),
        "setMyCommands": ("commands", "scope", "language_code"),
        "getMyCommands": ("scope", "language_code"),
        "sendMessage": (*_SENT, *_TEXT),
        "editMessageText": (*_EDITED, *_TEXT, "rich_message", "reply_markup"),
        "editMessageReplyMarkup": (*_EDITED, "reply_markup"),
        "answerCallbackQuery": ("callback_query_id", "text", "show_alert", "url", "cache_time"),
        "sendChatAction": ("business_connection_id", "chat_id", "message_thread_id", "action"),
        "deleteMessage": ("chat_id", "message_id"),
        "sendMessageDraft": (
            *("chat_id", "message_thread_id", "draft_id", "text", "parse_mode", "entities"),
        ),
        "getFile": ("file_id",),
        "sendVoice": (*_SENT, "voice", *_CAPTION, "duration"),
        "sendAudio": (*_SENT, "audio", *_CAPTION, "duration", "performer", "title", "thumbnail"),
        "sendPhoto": (*_SENT, "photo", *_CAPTION, "show_caption_above_media", "has_spoiler"),
        "sendDocument": (
            *_SENT,
            *("document", "thumbnail", *_CAPTION, "disable_content_type_detection"),
        ),
        "sendVideo": (
            *_SENT,
            *("video", "duration", "width", "height", "thumbnail", "cover", "start_timestamp"),
            *(*_CAPTION, "show_caption_above_media", "has_spoiler", "supports_streaming"),
        ),
        "sendVideoNote": (*_SENT, "video_note", "duration", "length", "thumbnail"),
        "sendAnimation": (
            *_SENT,
            *("animation", "duration", "width", "height", "thumbnail", *_CAPTION),
            *("show_caption_above_media", "has_spoiler"),
        ),
        "sendSticker": (*_SENT, "sticker", "emoji"),
    }.items()
}
# What makes an inline button do something; a button with none of them is refused.
_BUTTON_ACTIONS = frozenset(
    {"url", "callback_data", "web_app", "login_url", "switch_inline_query", "copy_text"}
    | {"switch_inline_query_current_chat", "switch_inline_query_chosen_chat"}
    | {"callback_game", "pay"}
)
# Parameters whose values are free text: never JSON-decoded, even if they look like numbers.
_TEXT_PARAMS = frozenset(
    {"text", "caption", "parse_mode", "callback_query_id", "inline_message_id", "url", "query"}
    | {"secret_token", "emoji", "title", "performer", "description", "name", "file_id"}
    | {"short_description", "language_code", "action"}
)
CHAT_ACTION = re.compile(
    r"typing|choose_sticker|find_location|(upload|record)_(video|voice|video_note)"
    r"|upload_(photo|document)"
)
# Update types Telegram only sends when allowed_updates names them.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"code", "pre", "blockquote", "tg-emoji"}
)
_TAG_RE = re.compile(r"<(/?)([A-Za-z][\w-]*)(\s[^<>]*)?>")
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    """An error answer of the Bot API (`ok: false`), raised inside method handlers."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def payload(self) -> dict[str, Any]:
        body = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class StoredFile:
    """A file the server hands out by file_id and serves under its file_path."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str


@dataclass
class TelegramCall:
    """One request the bot made, as the server understood it, and how it was answered."""

    seq: int
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile] = field(default_factory=dict)
    status: int | None = None
    """HTTP status once answered, None while pending (e.g. a long poll)."""
    result: Any = None
    description: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == HTTPStatus.OK

    def __str__(self) -> str:
        shown = {
            k: v if len(repr(v)) < 80 else f"{repr(v)[:77]}..." for k, v in self.params.items()
        }
        uploads = f" files={list(self.files)}" if self.files else ""
        outcome = "pending" if self.status is None else f"{self.status} {self.description or ''}"
        return f"#{self.seq} {self.method} {shown}{uploads} -> {outcome.strip()}"


@dataclass
class DeliveryAttempt:
    """One POST of an update to a webhook by the stand-in, and how the bot answered it."""

    update_id: int
    url: str
    started: float
    """`time.monotonic()` when the request went out."""
    status: int | None = None
    """HTTP status of the answer; None while pending or when no answer came (see `error`)."""
    error: str | None = None
    """"timeout", or the connection error, when there was no HTTP answer."""
    retry_after: float | None = None
    """The answer's Retry-After header, in seconds."""
    finished: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def done(self) -> bool:
        return self.finished is not None

    def __str__(self) -> str:
        outcome = "pending" if not self.done else str(self.status or self.error)
        return f"update {self.update_id} -> {self.url}: {outcome}"


def chat_key(update: dict[str, Any]) -> int | tuple[str, Any]:
    """What Telegram serialises webhook deliveries by: the chat (else the sender) of an update.

    Updates with neither are independent of each other, so each is its own key.
    """
    for kind, value in update.items():
        if kind == "update_id" or not isinstance(value, dict):
            continue
        message = value.get("message") if kind == "callback_query" else value
        chat = message.get("chat") if isinstance(message, dict) else None
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return int(chat["id"])
        sender = value.get("from") or value.get("user")
        if isinstance(sender, dict) and isinstance(sender.get("id"), int):
            return int(sender["id"])
    return ("update", update.get("update_id"))


def html_to_text(source: str) -> str:
    """Plain text of a parse_mode=HTML message, raising Telegram's 400 where it would."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0

    def fail(problem: str, at: int) -> ApiError:
        offset = len(source[:at].encode())
        return bad_request(f"can't parse entities: {problem} at byte offset {offset}")

    def plain(end: int) -> str:
        if (stray := source.find("<", pos, end)) >= 0:
            raise fail("Unsupported start tag", stray)
        return html.unescape(source[pos:end])

    for match in _TAG_RE.finditer(source):
        out.append(plain(match.start()))
        tag = match.group(2).lower()
        if tag not in _HTML_TAGS:
            raise fail(f'Unsupported start tag "{tag}"', match.start())
        if not match.group(1):
            stack.append(tag)
        elif stack and stack[-1] == tag:
            stack.pop()
        else:
            expected = f'"</{stack[-1]}>"' if stack else "nothing"
            raise fail(f'Unmatched end tag, expected {expected}, found "</{tag}>"', match.start())
        pos = match.end()
    out.append(plain(len(source)))
    if stack:
        problem = f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
        raise bad_request(f"can't parse entities: {problem}")
    return "".join(out)


def same_value(actual: Any, expected: Any) -> bool:
    """Parameter equality that ignores how a value was encoded (`42` vs `"42"`)."""
    return bool(actual == expected or str(actual) == str(expected))


def media_object(kind: str, stored: StoredFile, meta: dict[str, Any]) -> Any:
    """The Voice/Audio/PhotoSize[]/... object for a stored file, as found in a Message."""
    ids = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    obj = {**ids, "file_size": len(stored.data), **_MEDIA_DEFAULTS[kind]}
    obj.update((k, v) for k, v in meta.items() if v is not None)
    if kind != "photo":
        return obj
    size = (1280, 960)
    if stored.data.startswith(b"\x89PNG\r\n\x1a\n") and len(stored.data) >= 24:
        size = (int.from_bytes(stored.data[16:20]), int.from_bytes(stored.data[20:24]))
    return [{"width": size[0], "height": size[1], **obj}]


def check_parameters(method: str, names: Iterable[str]) -> None:
    """Refuse parameters `method` does not have, e.g. a misspelt `parse_mod`.

    Stricter than Telegram, which ignores them silently: a test then learns that the bot's
    request does not do what it meant.
    """
    allowed = PARAMETERS[method]
    if unknown := sorted(set(names) - allowed):
        raise bad_request(f"unknown parameter {unknown[0]} in request")


def inline_markup(params: dict[str, Any]) -> dict[str, Any] | None:
    """The inline keyboard a message will carry (other keyboards never appear in a Message)."""
    markup = params.get("reply_markup")
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return None
    for row in markup["inline_keyboard"]:
        for button in row:
            if not str(button.get("text", "")).strip():
                raise bad_request("BUTTON_TEXT_INVALID")
            if all(button.get(action) in (None, "") for action in _BUTTON_ACTIONS):
                raise bad_request(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            if len(str(button.get("callback_data", "")).encode()) > 64:
                raise bad_request("BUTTON_DATA_INVALID")
    return markup


def callback_datas(message: dict[str, Any]) -> list[str]:
    """callback_data of every inline button of a message."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


def without_reply(message: dict[str, Any]) -> dict[str, Any]:
    """A message as nested in reply_to_message (Telegram nests only one level)."""
    return {k: v for k, v in message.items() if k != "reply_to_message"}


def _decode(name: str, value: str) -> Any:
    """Undo aiogram's form encoding: every value but a plain string is sent as JSON."""
    if name in _TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters from the query string and a form, multipart or JSON body; files by parameter.

    Uploads referenced as `attach://name` are filed under the parameter that names them.
    """
    params: dict[str, Any] = {k: _decode(k, v) for k, v in request.query.items()}
    files: dict[str, UploadedFile] = {}
    if request.content_type == "application/json" and request.can_read_body:
        body = await request.json()
        params.update(body if isinstance(body, dict) else {})
    elif request.can_read_body:
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                files[key] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                params[key] = _decode(key, str(value))
    for key, value in params.items():
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            files[key] = files.pop(value[9:])
    return params, files
