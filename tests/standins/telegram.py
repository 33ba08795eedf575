"""Stand-in for the Telegram Bot API server, for end-to-end tests of the bot.

The bot talks to it exactly as to api.telegram.org (aiogram's
``TelegramAPIServer.from_base(tg.base_url)``, or ``TELEGRAM_API_URL`` for a bot
subprocess), while tests play the users: they enqueue updates (``send_text``,
``send_voice``, ``press_button`` ...) that the bot receives by long polling, then
assert on what the bot called (``wait_for_method``, ``sent_messages``). Pitfalls the
real server punishes are reproduced on purpose, so tests catch them before
production: error codes and descriptions, 409 for a second poller, "message is not
modified", HTML parse errors, length limits, invalid inline buttons (empty text, no
action, callback_data over 64 bytes), unknown chats, users who blocked the bot. Stricter
than Telegram on purpose: a parameter the method does not have (a typo Telegram would
silently ignore) is a 400, checked against `PARAMETERS` in `_telegram_protocol`.

Updates wait in one queue until confirmed: by a getUpdates whose offset passes them, or
by a 2xx answer of the webhook. Once a test calls ``start_webhook_delivery``, the
stand-in pushes them to the webhook as Telegram does: one update at a time per chat
(the next only after the previous one was answered with 2xx), chats concurrently up to
setWebhook's ``max_connections``, and the same update again after a non-2xx answer, a
connection error or a timeout; every attempt is recorded in ``deliveries``. Without it,
tests POST updates themselves with ``deliver_webhook``. ``enqueue`` takes any dict, so
tests can queue updates the bot's parser rejects (``send_unparseable``).

Deliberate simplifications: webhooks may be plain http (to reach a local bot); HTML is
checked and stripped but returned messages carry no entities; MarkdownV2 is not
checked. Runs in the test's event loop (the bot may be a subprocess or in-process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from . import _telegram_protocol as wire
from ._common import Pulse, StandInServer, ogg_opus_seconds, poll, run_cli, wait_until
from ._telegram_protocol import (
    ApiError,
    DeliveryAttempt,
    StoredFile,
    TelegramCall,
    UploadedFile,
    bad_request,
)

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TOKEN",
    "DOWNLOAD",
    "DeliveryAttempt",
    "FakeTelegram",
    "StoredFile",
    "TelegramCall",
    "UploadedFile",
]

DEFAULT_TOKEN = "123456789:AAStandInTokenForMluvMeTests_0123456"
DOWNLOAD = "downloadFile"
"""Pseudo method name under which file downloads (`GET /file/bot.../path`) are recorded."""
DEFAULT_MAX_CONNECTIONS = 40
"""Telegram's limit of simultaneous webhook requests when setWebhook gives none."""
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class _Pusher:
    """How `start_webhook_delivery` was configured, and the deliveries it has under way."""

    def __init__(
        self,
        urls: Sequence[str],
        timeout: float,
        retry_delay: float,
        max_retry_after: float,
        balance: Literal["round_robin", "random"],
        seed: int | None,
    ) -> None:
        self.urls = list(urls)
        self.timeout, self.retry_delay, self.max_retry_after = timeout, retry_delay, max_retry_after
        self._turn = itertools.count()
        self._rng = random.Random(seed) if balance == "random" else None
        self.session = ClientSession()
        self.busy: set[int | tuple[str, Any]] = set()
        """Chats with an update being delivered (or waiting to be delivered again)."""
        self.workers: set[asyncio.Task[None]] = set()
        self.loop: asyncio.Task[None] | None = None

    def pick(self, registered: str) -> str:
        urls = self.urls or [registered]
        if self._rng is not None:
            return self._rng.choice(urls)
        return urls[next(self._turn) % len(urls)]

    def pause(self, attempt: DeliveryAttempt) -> float:
        if attempt.retry_after is not None:
            return max(0.0, min(attempt.retry_after, self.max_retry_after))
        return self.retry_delay

    async def close(self) -> None:
        tasks = [t for t in (self.loop, *self.workers) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.session.close()


class FakeTelegram(StandInServer):
    """The Bot API stand-in plus the test-facing controls (users, updates, recording, faults)."""

    def __init__(self, token: str = DEFAULT_TOKEN, bot_username: str = "mluv_me_bot") -> None:
        super().__init__()
        self.token = token
        bot_id = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {"id": int(bot_id) if bot_id.isdigit() else 123456789}
        self.bot_user.update(is_bot=True, first_name="Mluv.Me", username=bot_username)
        self.calls: list[TelegramCall] = []
        """Every request received, in arrival order (including getUpdates and downloads)."""
        self.delay: dict[str, float] = {}
        """Seconds to stall before answering, by method name (case-insensitive)."""
        self.webhook: dict[str, Any] = {}
        """Parameters of the last setWebhook (empty when none is set)."""
        self.deliveries: list[DeliveryAttempt] = []
        """Every webhook POST made by `start_webhook_delivery`, in the order they went out."""
        self._pusher: _Pusher | None = None
        self._pulse = Pulse()
        self._users: dict[int, dict[str, Any]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self.refuse_drafts = False
        """Answer sendMessageDraft as a Bot API server without it does (404): test control."""
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._last_message_id: defaultdict[int, int] = defaultdict(int)
        self._files: dict[str, StoredFile] = {}
        self._pending: list[dict[str, Any]] = []
        self._updates: dict[int, dict[str, Any]] = {}
        self._next_update_id = 100_000_001
        self._allowed_updates: list[str] = []
        self._poll_generation = 0
        self._closing = False
        self._open_queries: set[str] = set()
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._faults: defaultdict[str, list[ApiError]] = defaultdict(list)

    # ----------------------------------------------------------------- server side

    @property
    def base_url(self) -> str:
        """What goes into TELEGRAM_API_URL / TelegramAPIServer.from_base()."""
        return self.root_url

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=wire.MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_download)
        return app

    async def on_stop(self) -> None:
        self._closing = True
        self._pulse.notify()
        await self.stop_webhook_delivery()

    def _record(self, method: str, params: dict[str, Any], files: dict[str, Any]) -> TelegramCall:
        call = TelegramCall(len(self.calls), method, params, files)
        self.calls.append(call)
        self._pulse.notify()
        return call

    def _finish(self, call: TelegramCall, status: int, result: Any, error: str | None) -> None:
        call.status, call.result, call.description = status, result, error
        self._pulse.notify()

    async def _handle_api(self, request: web.Request) -> web.Response:
        params, files = await wire.read_params(request)
        name = request.match_info["method"].lower()
        call = self._record(wire.API_METHODS.get(name, request.match_info["method"]), params, files)
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            await asyncio.sleep(sum(v for k, v in self.delay.items() if k.lower() == name))
            if faults := self._faults.get(name):
                raise faults.pop(0)
            if name in wire.API_METHODS:
                wire.check_parameters(call.method, call.params)
            if call.method in wire.MEDIA_METHODS:
                result = self._api_send_media(call)
            elif name in wire.API_METHODS:
                snake = re.sub(r"(?<!^)(?=[A-Z])", "_", call.method).lower()
                result = getattr(self, f"_api_{snake}")(call)
                if asyncio.iscoroutine(result):
                    result = await result
            else:
                result = True  # unknown methods are recorded and succeed
        except ApiError as error:
            self._finish(call, error.code, None, error.description)
            return web.json_response(error.payload(), status=error.code)
        self._finish(call, HTTPStatus.OK, result, None)
        return web.json_response({"ok": True, "result": result})

    async def _handle_download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        call = self._record(DOWNLOAD, {"file_path": path}, {})
        stored = next((f for f in self._files.values() if f.file_path == path), None)
        if request.match_info["token"] != self.token or stored is None:
            self._finish(call, HTTPStatus.NOT_FOUND, None, "Not Found")
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        if faults := self._faults.get(DOWNLOAD.lower()):
            error = faults.pop(0)
            self._finish(call, error.code, None, error.description)
            return web.json_response(error.payload(), status=error.code)
        self._finish(call, HTTPStatus.OK, len(stored.data), None)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # ---------------------------------------------------------------- Bot API methods

    def _api_get_me(self, call: TelegramCall) -> Any:
        flags = ("can_read_all_group_messages", "supports_inline_queries", "has_main_web_app")
        return {**self.bot_user, "can_join_groups": True, **dict.fromkeys(flags, False)}

    async def _api_get_updates(self, call: TelegramCall) -> Any:
        if self.webhook:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        params = call.params
        offset, timeout = int(params.get("offset", 0)), max(0.0, float(params.get("timeout", 0)))
        limit = min(max(int(params.get("limit", 100)), 1), 100)
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = params["allowed_updates"]  # persists, as on Telegram
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._pulse.notify()  # a newer getUpdates terminates the older long poll

        def batch() -> list[dict[str, Any]] | None:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            self._pending = [u for u in self._pending if self._is_allowed(u)]
            return self._pending[:limit] if self._pending or self._closing else None

        return await poll(self._pulse, batch, timeout) or []

    def _is_allowed(self, update: dict[str, Any]) -> bool:
        kind = next((k for k in update if k != "update_id"), None)
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in wire.OPT_IN_UPDATES

    def _api_set_webhook(self, call: TelegramCall) -> Any:
        secret = call.params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        connections = call.params.get("max_connections", DEFAULT_MAX_CONNECTIONS)
        if not str(connections).isdigit() or not 1 <= int(connections) <= 100:
            raise bad_request("invalid max_connections specified")
        self._api_delete_webhook(call)
        if isinstance(call.params.get("allowed_updates"), list):
            self._allowed_updates = call.params["allowed_updates"]  # shared with getUpdates
        self.webhook = dict(call.params) if call.params.get("url") else {}
        self._pulse.notify()
        return True

    def _api_delete_webhook(self, call: TelegramCall) -> Any:
        if call.params.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = {}
        return True

    def _api_get_webhook_info(self, call: TelegramCall) -> Any:
        url, pending = self.webhook.get("url", ""), len(self._pending)
        info = {"url": url, "has_custom_certificate": False, "pending_update_count": pending}
        if url:
            info["max_connections"] = self._max_connections
        return info

    @property
    def _max_connections(self) -> int:
        return int(self.webhook.get("max_connections", DEFAULT_MAX_CONNECTIONS))

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code", ""))

    def _api_set_my_commands(self, call: TelegramCall) -> Any:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request('field "commands" must be an Array of BotCommand')
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(call.params)] = commands
        return True

    def _api_get_my_commands(self, call: TelegramCall) -> Any:
        return self._commands.get(self._commands_key(call.params), [])

    def _api_send_message(self, call: TelegramCall) -> Any:
        text = self._render(call.params, "text", wire.MAX_TEXT)
        return self._bot_message(call.params, {"text": text})

    def _api_send_media(self, call: TelegramCall) -> Any:
        kind = wire.MEDIA_METHODS[call.method][0]
        meta: dict[str, Any] = {}
        if (upload := call.files.get(kind)) is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            stored = self._store(upload.data, kind)
            if kind in ("document", "audio"):
                meta["file_name"] = upload.filename
        elif (known := self._files.get(str(call.params.get(kind)))) is not None:
            stored = known
        else:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if kind == "voice":
            meta["duration"] = round(ogg_opus_seconds(stored.data))
        meta.update({k: call.params[k] for k in wire.MEDIA_PARAMS if k in call.params})
        content = {kind: wire.media_object(kind, stored, meta)}
        if "caption" in call.params:
            content["caption"] = self._render(call.params, "caption", wire.MAX_CAPTION)
        return self._bot_message(call.params, content)

    def _api_edit_message_text(self, call: TelegramCall) -> Any:
        if "inline_message_id" in call.params:
            return True
        message = self._editable(call.params)
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text = self._render(call.params, "text", wire.MAX_TEXT)
        return self._apply_edit(message, {"text": text}, wire.inline_markup(call.params))

    def _api_edit_message_reply_markup(self, call: TelegramCall) -> Any:
        if "inline_message_id" in call.params:
            return True
        return self._apply_edit(self._editable(call.params), {}, wire.inline_markup(call.params))

    def _api_answer_callback_query(self, call: TelegramCall) -> Any:
        query_id = str(call.params.get("callback_query_id"))
        if query_id not in self._open_queries:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(call.params.get("text", ""))) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        return True

    def _api_send_chat_action(self, call: TelegramCall) -> Any:
        self._target_chat(call.params)
        if not wire.CHAT_ACTION.fullmatch(str(call.params.get("action"))):
            raise bad_request("wrong parameter action in request")
        return True

    def _api_send_message_draft(self, call: TelegramCall) -> Any:
        """A draft streamed into a private chat; an empty text is the "Thinking…" placeholder.
        `refuse_drafts` plays a Bot API server that does not have the method."""
        if self.refuse_drafts:
            raise ApiError(404, "Not Found: method not found")
        chat = self._target_chat(call.params)
        if chat["type"] != "private":
            raise bad_request("TEXTDRAFT_PEER_INVALID")
        if not str(call.params.get("draft_id", "")).lstrip("-").isdigit():
            raise bad_request("invalid draft_id specified")
        if int(call.params["draft_id"]) == 0:
            raise bad_request("draft_id must be non-zero")
        if len(str(call.params.get("text", ""))) > wire.MAX_TEXT:
            raise bad_request("message is too long")
        return True

    def _api_delete_message(self, call: TelegramCall) -> Any:
        key = (self._target_chat(call.params)["id"], int(call.params.get("message_id", 0)))
        if self._messages.pop(key, None) is None:
            raise bad_request("message to delete not found")
        return True

    def _api_get_file(self, call: TelegramCall) -> Any:
        stored = self._files.get(str(call.params.get("file_id")))
        if stored is None:
            raise bad_request("invalid file_id")
        if len(stored.data) > wire.MAX_DOWNLOAD:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # ------------------------------------------------------------ method helpers

    def _target_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = str(params.get("chat_id", ""))
        chat = self._chats.get(int(chat_id)) if chat_id.lstrip("-").isdigit() else None
        if chat is None:
            raise bad_request("chat not found")
        if chat["id"] in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _render(self, params: dict[str, Any], key: str, limit: int) -> str:
        raw = str(params.get(key, ""))
        text = (
            wire.html_to_text(raw) if str(params.get("parse_mode", "")).lower() == "html" else raw
        )
        if key == "text" and not text.strip():
            raise bad_request("message text is empty")
        if len(text) > limit:
            raise bad_request(
                "message is too long" if key == "text" else "message caption is too long"
            )
        return text

    def _bot_message(self, params: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        chat = self._target_chat(params)
        markup = wire.inline_markup(params)
        reply_to = (params.get("reply_parameters") or {}).get("message_id")
        reply_to = reply_to or params.get("reply_to_message_id")
        if reply_to is not None:
            if (original := self._messages.get((chat["id"], int(reply_to)))) is None:
                raise bad_request("message to be replied not found")
            content = {**content, "reply_to_message": wire.without_reply(original)}
        if markup is not None:
            content = {**content, "reply_markup": markup}
        return self._new_message(chat, self.bot_user, content)

    def _editable(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._target_chat(params)
        message = self._messages.get((chat["id"], int(params.get("message_id", 0))))
        if message is None:
            raise bad_request("message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise bad_request("message can't be edited")
        return message

    @staticmethod
    def _apply_edit(
        message: dict[str, Any], changes: dict[str, Any], markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Edit in place; like Telegram, an edit without reply_markup drops the keyboard."""
        unchanged = all(message.get(k) == v for k, v in changes.items())
        if unchanged and message.get("reply_markup") == markup:
            raise bad_request(wire.NOT_MODIFIED)
        message.update(changes, edit_date=int(time.time()))
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        return message

    def _new_message(
        self, chat: dict[str, Any], sender: dict[str, Any], content: dict[str, Any]
    ) -> dict[str, Any]:
        self._last_message_id[chat["id"]] += 1
        message_id, date = self._last_message_id[chat["id"]], int(time.time())
        message = {"message_id": message_id, "from": sender, "chat": chat, "date": date, **content}
        self._messages[(chat["id"], message_id)] = message
        return message

    def _store(self, data: bytes, kind: str) -> StoredFile:
        folder, ext = wire.FOLDERS[kind]
        file_id = f"AwACAgIAAxkBAA{secrets.token_urlsafe(30)}"
        path = f"{folder}/file_{len(self._files) + 1}.{ext}"
        stored = StoredFile(file_id, f"AgAD{secrets.token_urlsafe(9)}", data, path)
        self._files[file_id] = stored
        return stored

    # ------------------------------------------------------- test-facing: users

    def add_user(
        self,
        user_id: int,
        first_name: str = "Tester",
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        """Register (or redefine) a user and their private chat; returns the `from` object."""
        names = {"first_name": first_name, "last_name": last_name}
        names["username"] = username or f"tester{user_id}"
        names = {k: v for k, v in names.items() if v is not None}
        self._chats[user_id] = {"id": user_id, "type": "private", **names}
        user = {"id": user_id, "is_bot": False, **names, "language_code": language_code}
        self._users[user_id] = {k: v for k, v in user.items() if v is not None}
        return self._users[user_id]

    def add_group(self, chat_id: int, title: str = "Test group", kind: str = "supergroup") -> Any:
        """Register a group chat (negative id) the bot is a member of; returns the chat object."""
        self._chats[chat_id] = {"id": chat_id, "type": kind, "title": title}
        return self._chats[chat_id]

    def block_bot(self, user_id: int, blocked: bool = True) -> int:
        """The user blocks (or unblocks) the bot: sends then fail with 403, as on Telegram."""
        user = self._users.get(user_id) or self.add_user(user_id)
        (self._blocked.add if blocked else self._blocked.discard)(user_id)
        member = {"status": "member", "user": self.bot_user}
        kicked = {"status": "kicked", "user": self.bot_user, "until_date": 0}
        old, new = (member, kicked) if blocked else (kicked, member)
        change = {"chat": self._chats[user_id], "from": user, "date": int(time.time())}
        change.update(old_chat_member=old, new_chat_member=new)
        return self.enqueue({"my_chat_member": change})

    # ----------------------------------------------------- test-facing: updates

    def enqueue(self, update: dict[str, Any]) -> int:
        """Queue any JSON object as an update, verbatim but for its (assigned) update_id.

        The content is not checked, so an update the bot cannot parse can be queued too.
        """
        update_id = self._next_update_id
        self._next_update_id += 1
        content = {k: v for k, v in update.items() if k != "update_id"}
        snapshot = json.loads(json.dumps({"update_id": update_id, **content}))
        self._pending.append(snapshot)
        self._updates[update_id] = snapshot
        self._pulse.notify()
        return update_id

    def _user_message(
        self, user_id: int, content: dict[str, Any], chat_id: int | None, reply_to: int | None
    ) -> int:
        user = self._users.get(user_id) or self.add_user(user_id)
        if chat_id is not None and chat_id not in self._chats:
            self.add_group(chat_id)
        chat = self._chats[user_id if chat_id is None else chat_id]
        if reply_to is not None:
            original = self._messages[(chat["id"], reply_to)]
            content = {**content, "reply_to_message": wire.without_reply(original)}
        return self.enqueue({"message": self._new_message(chat, user, content)})

    def send_text(
        self, user_id: int, text: str, *, chat_id: int | None = None, reply_to: int | None = None
    ) -> int:
        """The user writes `text` in their private chat (or in group `chat_id`)."""
        return self._user_message(user_id, {"text": text}, chat_id, reply_to)

    def send_unparseable(
        self,
        user_id: int,
        text: str = "Přeposlaná zpráva",
        *,
        origin: dict[str, Any] | None = None,
        chat_id: int | None = None,
    ) -> int:
        """A forwarded text whose `forward_origin` aiogram's models reject.

        By default a "hidden_user" origin without its required `sender_user_name`; pass
        `origin` for another one (e.g. a type unknown to aiogram).
        """
        forwarded = origin or {"type": "hidden_user", "date": int(time.time()) - 60}
        return self._user_message(
            user_id, {"text": text, "forward_origin": forwarded}, chat_id, None
        )

    def send_command(
        self, user_id: int, command: str, args: str = "", *, chat_id: int | None = None
    ) -> int:
        """The user sends `/command args`, with the bot_command entity that clients attach."""
        name = "/" + command.lstrip("/")
        entity = {"type": "bot_command", "offset": 0, "length": len(name)}
        content = {"text": f"{name} {args}".rstrip(), "entities": [entity]}
        return self._user_message(user_id, content, chat_id, None)

    def _send_file(
        self,
        user_id: int,
        kind: str,
        data: bytes,
        meta: dict[str, Any],
        chat_id: int | None,
        caption: str | None,
    ) -> int:
        content: dict[str, Any] = {kind: wire.media_object(kind, self._store(data, kind), meta)}
        if caption is not None:
            content["caption"] = caption
        return self._user_message(user_id, content, chat_id, None)

    def send_voice(
        self,
        user_id: int,
        ogg: bytes,
        duration: int | None = None,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> int:
        """A voice note, downloadable via getFile; duration defaults to the Ogg's own."""
        meta = {"duration": round(ogg_opus_seconds(ogg)) if duration is None else duration}
        return self._send_file(user_id, "voice", ogg, meta, chat_id, caption)

    def send_audio(
        self,
        user_id: int,
        data: bytes,
        duration: int = 0,
        *,
        file_name: str = "audio.mp3",
        title: str | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> int:
        """A music file (shown as a track, not as a voice note)."""
        meta = {"duration": duration, "file_name": file_name, "title": title}
        return self._send_file(user_id, "audio", data, meta, chat_id, caption)

    def send_video_note(
        self, user_id: int, data: bytes, duration: int = 1, *, chat_id: int | None = None
    ) -> int:
        """A round video message."""
        return self._send_file(user_id, "video_note", data, {"duration": duration}, chat_id, None)

    def send_sticker(
        self,
        user_id: int,
        emoji: str = "👍",
        *,
        data: bytes = b"RIFF\0\0\0\0WEBPVP8 ",
        chat_id: int | None = None,
    ) -> int:
        """A static sticker."""
        return self._send_file(user_id, "sticker", data, {"emoji": emoji}, chat_id, None)

    def send_photo(
        self, user_id: int, data: bytes, *, caption: str | None = None, chat_id: int | None = None
    ) -> int:
        """A photo (one PhotoSize; a PNG's dimensions are read from its header)."""
        return self._send_file(user_id, "photo", data, {}, chat_id, caption)

    def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        *,
        caption: str | None = None,
        chat_id: int | None = None,
    ) -> int:
        """A file sent as a document."""
        meta = {"file_name": file_name, "mime_type": mime_type}
        return self._send_file(user_id, "document", data, meta, chat_id, caption)

    def edit_text(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None
    ) -> int:
        """The user edits one of their text messages (an `edited_message` update)."""
        message = self._messages[(user_id if chat_id is None else chat_id, message_id)]
        if message["from"]["id"] != user_id or "text" not in message:
            raise ValueError(f"user {user_id} cannot edit message {message_id}")
        message.update(text=text, edit_date=int(time.time()))
        message.pop("entities", None)
        return self.enqueue({"edited_message": message})

    def press_button(
        self,
        user_id: int,
        message: dict[str, Any] | int | None,
        callback_data: str,
        *,
        chat_id: int | None = None,
    ) -> int:
        """The user taps an inline button of a bot message (None: the latest one offering it).

        Fails the test if the message has no such button: real users can only press
        buttons that exist.
        """
        user = self._users.get(user_id) or self.add_user(user_id)
        chat = user_id if chat_id is None else chat_id
        if message is None:
            offering = [m for m in self.messages(chat) if callback_data in wire.callback_datas(m)]
            if not offering:
                raise AssertionError(f"no message in chat {chat} has a button {callback_data!r}")
            message = offering[-1]
        elif isinstance(message, dict):
            message = self._messages[(message["chat"]["id"], message["message_id"])]
        else:
            message = self._messages[(chat, message)]
        if callback_data not in (offered := wire.callback_datas(message)):
            mid = message["message_id"]
            raise AssertionError(f"message {mid} offers {offered}, not {callback_data!r}")
        query_id = str(secrets.randbelow(10**18))
        self._open_queries.add(query_id)
        query = {"id": query_id, "from": user, "message": message, "data": callback_data}
        query["chat_instance"] = str(abs(hash((self.bot_user["id"], chat))))
        return self.enqueue({"callback_query": query})

    async def deliver_webhook(
        self, url: str, update: dict[str, Any] | int, secret_token: str | None = None
    ) -> int:
        """POST an update (or a queued one, by update_id) to a webhook; returns the HTTP status.

        The secret defaults to the one the bot passed to setWebhook.
        """
        if isinstance(update, int):
            self._pending = [u for u in self._pending if u["update_id"] != update]
            update = self._updates[update]
        secret = secret_token if secret_token is not None else self.webhook.get("secret_token")
        headers = {SECRET_HEADER: str(secret)} if secret else {}
        async with (
            ClientSession() as session,
            session.post(url, json=update, headers=headers) as response,
        ):
            return response.status

    # ------------------------------------------------- test-facing: webhook push

    def start_webhook_delivery(
        self,
        urls: Sequence[str] | None = None,
        *,
        timeout: float = 10.0,
        retry_delay: float = 0.2,
        max_retry_after: float = 1.0,
        balance: Literal["round_robin", "random"] = "round_robin",
        seed: int | None = None,
    ) -> None:
        """Push queued updates to the webhook from now on, as Telegram does, while one is set.

        `urls`: where to POST instead of the registered URL, e.g. the replicas behind one
        load balancer; each attempt goes to the next one (`balance="random"`: any one), so a
        retry may reach another replica. An attempt fails on a non-2xx answer, a connection
        error or no answer within `timeout` seconds; the update is sent again after
        `retry_delay` seconds (or the answer's Retry-After, at most `max_retry_after`).
        """
        if self._pusher is not None:
            raise RuntimeError("webhook delivery is already running")
        if urls is not None and not urls:
            raise ValueError("give at least one URL, or None for the registered one")
        pusher = _Pusher(urls or [], timeout, retry_delay, max_retry_after, balance, seed)
        pusher.loop = asyncio.create_task(self._push_loop(pusher))
        self._pusher = pusher

    async def stop_webhook_delivery(self) -> None:
        """Stop pushing; requests under way are abandoned and their updates stay queued."""
        pusher, self._pusher = self._pusher, None
        if pusher is not None:
            await pusher.close()

    async def _push_loop(self, pusher: _Pusher) -> None:
        while not self._closing:
            if self.webhook:
                self._start_deliveries(pusher)
            await self._pulse.wait(1.0)

    def _start_deliveries(self, pusher: _Pusher) -> None:
        self._pending = [u for u in self._pending if self._is_allowed(u)]
        for update in self._pending:
            if len(pusher.workers) >= self._max_connections:
                return
            key = wire.chat_key(update)
            if key in pusher.busy:
                continue
            pusher.busy.add(key)
            worker = asyncio.create_task(self._deliver_until_accepted(pusher, update, key))
            pusher.workers.add(worker)

    async def _deliver_until_accepted(
        self, pusher: _Pusher, update: dict[str, Any], key: int | tuple[str, Any]
    ) -> None:
        try:
            while self.webhook and not self._closing:
                attempt = await self._push(pusher, update)
                if attempt.ok:
                    self._pending = [u for u in self._pending if u is not update]
                    return
                await asyncio.sleep(pusher.pause(attempt))
        finally:
            pusher.busy.discard(key)
            pusher.workers.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._pulse.notify()

    async def _push(self, pusher: _Pusher, update: dict[str, Any]) -> DeliveryAttempt:
        secret = self.webhook.get("secret_token")
        headers = {SECRET_HEADER: str(secret)} if secret else {}
        url = pusher.pick(str(self.webhook.get("url")))
        attempt = DeliveryAttempt(update["update_id"], url, time.monotonic())
        self.deliveries.append(attempt)
        self._pulse.notify()
        try:
            async with pusher.session.post(
                url, json=update, headers=headers, timeout=ClientTimeout(total=pusher.timeout)
            ) as response:
                await response.read()
                attempt.status = response.status
                with contextlib.suppress(ValueError):
                    attempt.retry_after = float(response.headers.get("Retry-After", ""))
        except TimeoutError:
            attempt.error = "timeout"
        except ClientError as error:
            attempt.error = f"{type(error).__name__}: {error}"
        attempt.finished = time.monotonic()
        self._pulse.notify()
        return attempt

    def deliveries_of(self, update_id: int) -> list[DeliveryAttempt]:
        """The webhook attempts for one update, in order."""
        return [a for a in self.deliveries if a.update_id == update_id]

    async def wait_delivered(
        self,
        update_ids: Iterable[int],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> dict[int, DeliveryAttempt]:
        """The accepting (2xx) attempt of each update, once every one has been accepted."""
        wanted = list(update_ids)

        def check() -> dict[int, DeliveryAttempt] | None:
            accepted = {a.update_id: a for a in self.deliveries if a.ok and a.update_id in wanted}
            return accepted if len(accepted) == len(set(wanted)) else None

        def what() -> str:
            shown = "\n  ".join(str(a) for a in self.deliveries[-40:]) or "(none)"
            return f"2xx deliveries of updates {wanted}; attempts:\n  {shown}"

        return await wait_until(self._pulse, check, timeout, what)

    # ------------------------------------------------- test-facing: inspection

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Current state (edits applied, deleted ones gone) of all messages in a chat."""
        return [m for (c, _), m in sorted(self._messages.items()) if c == chat_id]

    def _sent(self, method: str, chat_id: int) -> list[TelegramCall]:
        return [
            c
            for c in self.calls
            if c.ok and c.method == method and wire.same_value(c.params.get("chat_id"), chat_id)
        ]

    def sent_messages(self, chat_id: int) -> list[str]:
        """Texts of successful sendMessage calls to the chat, as users see them (HTML parsed)."""
        return [c.result["text"] for c in self._sent("sendMessage", chat_id)]

    def sent_voices(self, chat_id: int) -> list[bytes]:
        """Audio of successful sendVoice calls to the chat (uploaded or reused by file_id)."""
        return [
            self._files[c.result["voice"]["file_id"]].data for c in self._sent("sendVoice", chat_id)
        ]

    def mark(self) -> int:
        """A position in `calls`: pass it as `since=` to wait only for later calls."""
        return len(self.calls)

    async def wait_for(
        self,
        predicate: Callable[[TelegramCall], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        since: int = 0,
        pending: bool = False,
    ) -> TelegramCall:
        """The first answered call (from `since` on) matching `predicate`.

        `pending=True` also matches calls still being handled (e.g. a long poll in progress).
        """

        def check() -> TelegramCall | None:
            seen = (c for c in self.calls[since:] if pending or c.status is not None)
            return next((c for c in seen if predicate(c)), None)

        what = lambda: f"a matching call{self._summary(since)}"  # noqa: E731
        return await wait_until(self._pulse, check, timeout, what)

    async def wait_for_method(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int = 0,
        include_failed: bool = False,
        **params: Any,
    ) -> list[TelegramCall]:
        """All answered calls of `method` with these params, once there are at least `count`.

        Only successful calls count unless `include_failed`.
        """

        def matches(call: TelegramCall) -> bool:
            if call.method.lower() != method.lower() or call.status is None:
                return False
            return (include_failed or call.ok) and all(
                wire.same_value(call.params.get(k), v) for k, v in params.items()
            )

        def check() -> list[TelegramCall] | None:
            found = [c for c in self.calls[since:] if matches(c)]
            return found if len(found) >= count else None

        what = lambda: f"{count}x {method} {params}{self._summary(since)}"  # noqa: E731
        return await wait_until(self._pulse, check, timeout, what)

    def _summary(self, since: int) -> str:
        shown = [str(c) for c in self.calls[since:] if c.method != "getUpdates"]
        polls = sum(c.method == "getUpdates" for c in self.calls[since:])
        lines = "\n  ".join(shown[-40:]) or "(none)"
        return f"; recorded calls (+{polls} getUpdates):\n  {lines}"

    # ------------------------------------------------------------- faults

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        retry_after: int = 1,
        times: int = 1,
        description: str | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with an error (retry_after only for 429).

        `method` may be `DOWNLOAD`: the file server then fails the next downloads.
        """
        if description is None:
            defaults = {429: f"Too Many Requests: retry after {retry_after}", 400: "Bad Request"}
            defaults[403] = "Forbidden: bot was blocked by the user"
            description = defaults.get(error_code, HTTPStatus(error_code).phrase)
        error = ApiError(error_code, description, retry_after if error_code == 429 else None)
        self._faults[method.lower()].extend([error] * times)

    # ------------------------------------------------ test-facing: more updates

    def send_service(self, user_id: int, service: dict[str, Any]) -> int:
        """A service message in the user's private chat, e.g. `{"pinned_message": {...}}`."""
        return self._user_message(user_id, service, None, None)

    def send_album(self, user_id: int, photos: Sequence[bytes], *, group: str = "") -> list[int]:
        """Photos sent together: one message each, sharing a `media_group_id`."""
        group = group or secrets.token_hex(8)
        contents = [
            {"photo": wire.media_object("photo", self._store(data, "photo"), {})} for data in photos
        ]
        return [
            self._user_message(user_id, {**content, "media_group_id": group}, None, None)
            for content in contents
        ]


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description="Stand-in Telegram Bot API server")
    cli.add_argument("--token", default=DEFAULT_TOKEN)
    run_cli(cli, lambda args: FakeTelegram(token=args.token))
