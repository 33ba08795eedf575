"""Stand-in for the OpenAI HTTP API: chat completions, transcription and speech.

The bot's official `openai` client points at `FakeOpenAI.base_url` and gets answers
in OpenAI's exact shapes: structured-output completions that validate against the
JSON schema the bot sent (generated from it, or scripted by the test), transcripts
looked up by the audio's SHA-256, and real Ogg/Opus (or MP3) speech. Inputs the
real API rejects are rejected here too, with its error shape: non-strict "strict"
schemas, unsupported audio formats, corrupt audio or audio whose file name names another
format, unknown voices, over-long input. Latency, failures (429 with Retry-After, 5xx) and
odd 200 answers (an HTML page, an empty body, JSON of the wrong shape) can be injected per
endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web

from ._common import Pulse, StandInServer, ogg_opus_seconds, run_cli, wait_until

AUDIO_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
"""The shipped audio fixtures (see README.md there)."""
DEFAULT_TRANSCRIPT = "Ahoj, jak se máš?"
DEFAULT_REPLY = "Výborně! Zkusme další větu."
FIXTURE_TRANSCRIPTS = {
    "ahoj_jak_se_mas.ogg": "Ahoj, jak se máš?",
    "dobry_den.ogg": "Dobrý den, jmenuji se Anna.",
    "silence.ogg": "",
    "tts_reply.ogg": DEFAULT_REPLY,
}
"""What each fixture says: FakeOpenAI transcribes them so out of the box."""
ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/audio/transcriptions": "transcriptions",
    "/v1/audio/speech": "speech",
}
AUDIO_EXTENSIONS = ["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"]
CONTAINER_EXTENSIONS = {
    "ogg": ("oga", "ogg"),
    "mp3": ("mp3", "mpeg", "mpga"),
    "mp4": ("m4a", "mp4"),
    "wav": ("wav",),
    "webm": ("webm",),
    "flac": ("flac",),
}
"""The file extensions under which OpenAI decodes each container (it decodes by the name)."""
ODDITIES: dict[str, tuple[str, ...]] = {
    "html": ("chat", "transcriptions", "speech"),
    "empty": ("chat", "transcriptions", "speech"),
    "not-object": ("chat", "transcriptions"),
    "no-choices": ("chat",),
    "no-content": ("chat",),
    "no-text": ("transcriptions",),
}
"""Odd 200 answers `garble_next` can give, and the endpoints each makes sense for."""
PROXY_ERROR_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer"}
    | {"verse", "marin", "cedar"}
)
_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_MAX_DEPTH = 6  # beyond this, optional/array parts of recursive schemas are left empty


class Refusal(str):
    """Return this from a `script_chat` function to make the model refuse (content: null)."""


class OpenAIError(Exception):
    """An error answer in OpenAI's shape, raised inside endpoint handlers."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        fallback = _ERROR_KINDS[500 if status >= 500 else 400]
        kind, default_code, default_message = _ERROR_KINDS.get(status, fallback)
        self.status, self.retry_after = status, retry_after
        self.message = message or default_message
        self.error = {"message": self.message, "type": kind, "param": param}
        self.error["code"] = code or default_code
        super().__init__(self.message)


@dataclass
class OpenAICall:
    """One request the bot made, as the server understood it, and how it was answered."""

    seq: int
    endpoint: str
    """"chat", "transcriptions", "speech", or the path of an unknown endpoint."""
    body: dict[str, Any]
    """Parsed JSON body, or the multipart form fields (the file replaced by its metadata)."""
    audio_sha256: str | None = None
    status: int | None = None
    response: Any = field(default=None, repr=False)
    """The JSON or text sent back (speech: the audio bytes); None until answered."""
    arrived: float = field(default_factory=time.monotonic)
    finished: float | None = None
    """time.monotonic() when the answer (a stream: its end) went out, or it broke off."""

    @property
    def ok(self) -> bool:
        return self.status == HTTPStatus.OK

    def __str__(self) -> str:
        body = json.dumps(self.body, ensure_ascii=False)
        body = body if len(body) < 160 else f"{body[:157]}..."
        return f"#{self.seq} {self.endpoint} {body} -> {self.status or 'pending'}"


ChatScript = Callable[[dict[str, Any]], "dict[str, Any] | list[Any] | str | None"]


class FakeOpenAI(StandInServer):
    """The OpenAI stand-in plus test controls: scripts, transcripts, recording, faults, latency."""

    def __init__(self, api_key: str | None = None) -> None:
        """`api_key`: if given, requests with another bearer token get OpenAI's 401."""
        super().__init__()
        self.api_key = api_key
        self.history: list[OpenAICall] = []
        """Every request received, in arrival order."""
        self.transcripts: dict[str, str] = {
            hashlib.sha256((AUDIO_DIR / name).read_bytes()).hexdigest(): text
            for name, text in FIXTURE_TRANSCRIPTS.items()
        }
        """Transcript by SHA-256 hex digest of the uploaded audio."""
        self.default_transcript = DEFAULT_TRANSCRIPT
        """Transcript of any audio not in `transcripts`."""
        self.default_reply = DEFAULT_REPLY
        """Content of plain (non-schema) chat completions."""
        self.speech_audio = {
            "opus": (AUDIO_DIR / "tts_reply.ogg").read_bytes(),
            "mp3": (AUDIO_DIR / "tts_reply.mp3").read_bytes(),
        }
        """What /audio/speech returns, by response_format."""
        self.delay: dict[str, float] = {}
        """Seconds each endpoint ("chat", "transcriptions", "speech") stalls before answering."""
        self.first_token = 0.0
        """Streamed chat completions: seconds before the first content chunk."""
        self.tokens_per_second: float | None = None
        """Streamed chat completions: the pace after it (a token is 4 characters); None: at once."""
        self._cuts: list[int] = []
        self._chat_script: ChatScript | None = None
        self._faults: defaultdict[str, list[OpenAIError]] = defaultdict(list)
        self._always: dict[str, OpenAIError] = {}
        self._oddities: defaultdict[str, list[str]] = defaultdict(list)
        self._pulse = Pulse()

    # ----------------------------------------------------------------- test API

    @property
    def base_url(self) -> str:
        """The `base_url` for `openai.AsyncOpenAI` (ends with /v1)."""
        return f"{self.root_url}/v1"

    def script_chat(self, script: ChatScript | None) -> None:
        """Let `script(request_json)` choose each completion's content.

        A dict or list is sent as JSON, a str as is, a `Refusal` as a refusal; None
        falls back to the generated answer. `script_chat(None)` removes the script.
        """
        self._chat_script = script

    def add_transcript(self, audio: bytes, text: str) -> None:
        """Make `audio` transcribe to `text`."""
        self.transcripts[hashlib.sha256(audio).hexdigest()] = text

    def calls(self, endpoint: str | None = None) -> list[OpenAICall]:
        """Recorded requests, optionally only those to one endpoint."""
        return [c for c in self.history if endpoint in (None, c.endpoint)]

    async def wait_for_calls(
        self,
        endpoint: str,
        n: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[OpenAICall]:
        """The answered calls to `endpoint` (failed ones too) once there are at least `n`."""

        def check() -> list[OpenAICall] | None:
            done = [c for c in self.calls(endpoint) if c.status is not None]
            return done if len(done) >= n else None

        def describe() -> str:
            seen = "\n  ".join(str(c) for c in self.history[-30:]) or "(none)"
            return f"{n}x {endpoint}; recorded calls:\n  {seen}"

        return await wait_until(self._pulse, check, timeout, describe)

    def fail_next(
        self,
        endpoint: str,
        status: int = 429,
        retry_after: float | None = 1,
        times: int = 1,
        message: str | None = None,
        code: str | None = None,
    ) -> None:
        """Answer the next `times` calls to `endpoint` with an error (Retry-After if given)."""
        error = OpenAIError(status, message, code=code, retry_after=retry_after)
        self._faults[endpoint].extend([error] * times)

    def fail_always(self, endpoint: str, status: int = 500, message: str | None = None) -> None:
        """Answer every call to `endpoint` with an error until `recover()`: an outage."""
        self._always[endpoint] = OpenAIError(status, message)

    def garble_next(self, endpoint: str, oddity: str, times: int = 1) -> None:
        """Answer the next `times` calls to arrive at `endpoint` with 200 and something odd.

        "html": an HTML page, as a proxy in front of the API sends; "empty": no body, with
        the usual content type; "not-object": a JSON array; "no-choices": a completion with
        no choices; "no-content": a message with neither content nor refusal; "no-text": a
        transcription object without text. The request is checked and recorded as usual.
        """
        if endpoint not in ODDITIES.get(oddity, ()):
            raise ValueError(f"no oddity {oddity!r} for {endpoint!r}; see ODDITIES")
        self._oddities[endpoint].extend([oddity] * times)

    def cut_next_stream(self, after_characters: int) -> None:
        """The next streamed completion breaks off (the connection is dropped, no [DONE])
        once this much of its content has gone out."""
        self._cuts.append(after_characters)

    def recover(self) -> None:
        """Drop all injected failures (pending `fail_next` and `garble_next` ones included)."""
        self._faults.clear()
        self._always.clear()
        self._oddities.clear()

    # -------------------------------------------------------------- server side

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=26 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        endpoint = ENDPOINTS.get(request.path) if request.method == "POST" else None
        call = OpenAICall(len(self.history), endpoint or request.path, {})
        self.history.append(call)
        self._pulse.notify()
        try:
            if endpoint is None:
                raise OpenAIError(404, f"Invalid URL ({request.method} {request.path})")
            audio = await self._read_body(call, request)
            self._check_key(request)
            # Taken on arrival: a request stalled by `delay` must not take a later call's.
            oddities = self._oddities.get(endpoint)
            oddity = oddities.pop(0) if oddities else None
            await asyncio.sleep(self.delay.get(endpoint, 0))
            if faults := self._faults.get(endpoint):
                raise faults.pop(0)
            if endpoint in self._always:
                raise self._always[endpoint]
            if not call.body.get("model"):
                raise OpenAIError(400, "you must provide a model parameter", param="model")
            handlers = {"chat": self._chat, "speech": self._speech}
            response = handlers[endpoint](call) if audio is None else self._transcribe(call, audio)
            if endpoint == "chat" and call.body.get("stream") is True and oddity is None:
                return await self._stream(request, call)
            if oddity is not None:
                response = self._garble(call, oddity, response.content_type)
        except OpenAIError as error:
            call.status, call.response = error.status, {"error": error.error}
            headers = {} if error.retry_after is None else {"retry-after": f"{error.retry_after:g}"}
            response = web.json_response(call.response, status=error.status, headers=headers)
        else:
            call.status = response.status
        call.finished = time.monotonic()
        response.headers["x-request-id"] = f"req_{secrets.token_hex(16)}"
        self._pulse.notify()
        return response

    @staticmethod
    async def _read_body(call: OpenAICall, request: web.Request) -> bytes | None:
        """Record the body before anything can fail; returns the uploaded audio file, if any."""
        if call.endpoint == "transcriptions":
            form = await request.post() if request.content_type == "multipart/form-data" else {}
            call.body = {k: v for k, v in form.items() if isinstance(v, str)}
            if not isinstance(upload := form.get("file"), web.FileField):
                raise OpenAIError(400, "Missing required parameter: 'file'.", param="file")
            audio = upload.file.read()
            call.audio_sha256 = hashlib.sha256(audio).hexdigest()
            call.body["file"] = {"filename": upload.filename, "size": len(audio)}
            call.body["file"]["content_type"] = upload.content_type
            return audio
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise OpenAIError(400, "We could not parse the JSON body of your request.")
        call.body = body
        return None

    def _check_key(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise OpenAIError(401, "You didn't provide an API key.")
        if self.api_key is not None and auth[7:] != self.api_key:
            raise OpenAIError(401, f"Incorrect API key provided: {auth[7:11]}****.")

    def _chat(self, call: OpenAICall) -> web.Response:
        body = call.body
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise OpenAIError(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if body.get("stream") not in (None, False, True):
            raise OpenAIError(400, "Invalid type for 'stream': expected a boolean.", param="stream")
        if "stream_options" in body and body.get("stream") is not True:
            raise OpenAIError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        answer = self._chat_script(body) if self._chat_script else None
        if answer is None:
            answer = self._generated_answer(body.get("response_format") or {})
        if isinstance(answer, dict | list):
            answer = json.dumps(answer, ensure_ascii=False)
        refusal = answer if isinstance(answer, Refusal) else None
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": refusal}
        message.update(content=None if refusal else answer, annotations=[])
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": "stop"}
            for i in range(int(body.get("n") or 1))
        ]
        prompt = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4 + 1
        completion = len(answer) // 4 + 1
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        usage["total_tokens"] = prompt + completion
        call.response = {
            "id": f"chatcmpl-{secrets.token_urlsafe(21)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": choices,
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_standin",
        }
        return web.json_response(call.response)

    async def _stream(self, request: web.Request, call: OpenAICall) -> web.StreamResponse:
        """The completion in `_chat`'s response, sent as OpenAI streams it: server-sent events
        of `chat.completion.chunk`, a role chunk, content in 4-character tokens at the set
        pace, a finish chunk, usage if `stream_options.include_usage`, then `[DONE]`."""
        completion = call.response
        choice = completion["choices"][0]
        content = choice["message"]["content"] or ""
        cut = self._cuts.pop(0) if self._cuts else None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.headers["x-request-id"] = f"req_{secrets.token_hex(16)}"
        await response.prepare(request)
        base = {key: completion[key] for key in ("id", "created", "model", "system_fingerprint")}
        base["object"] = "chat.completion.chunk"

        async def event(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None}]}
            chunk["choices"][0]["finish_reason"] = finish
            await response.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())

        await event({"role": "assistant", "content": "", "refusal": None})
        await asyncio.sleep(self.first_token)
        pause = 0.0 if not self.tokens_per_second else 1 / self.tokens_per_second
        for start in range(0, len(content), 4):
            if cut is not None and start >= cut:
                call.status, call.finished = 0, time.monotonic()  # broken off
                self._pulse.notify()
                assert request.transport is not None
                request.transport.abort()
                return response
            await event({"content": content[start : start + 4]})
            if pause:
                await asyncio.sleep(pause)
        await event({}, finish=choice["finish_reason"])
        if (call.body.get("stream_options") or {}).get("include_usage"):
            usage = {**base, "choices": [], "usage": completion["usage"]}
            await response.write(f"data: {json.dumps(usage)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        call.status, call.finished = 200, time.monotonic()
        self._pulse.notify()
        return response

    def _generated_answer(self, response_format: dict[str, Any]) -> str:
        kind = response_format.get("type", "text")
        if kind == "json_object":
            return json.dumps({"reply": self.default_reply}, ensure_ascii=False)
        if kind != "json_schema":
            return self.default_reply
        spec = response_format.get("json_schema") or {}
        name, schema = str(spec.get("name", "")), spec.get("schema")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise OpenAIError(
                400,
                "Invalid 'response_format.json_schema.name': string does not match pattern.",
                param="response_format.json_schema.name",
            )
        if not isinstance(schema, dict):
            raise OpenAIError(400, "Missing 'response_format.json_schema.schema'.")
        if spec.get("strict") and (problem := strict_schema_problem(schema)):
            message = f"Invalid schema for response_format '{name}': {problem}"
            raise OpenAIError(400, message, param="response_format")
        return json.dumps(schema_instance(schema), ensure_ascii=False)

    def _transcribe(self, call: OpenAICall, audio: bytes) -> web.Response:
        filename = call.body["file"]["filename"]
        model, fmt = call.body["model"], call.body.get("response_format", "json")
        extension = filename.rpartition(".")[2].lower()
        if extension not in AUDIO_EXTENSIONS:
            message = f"Invalid file format. Supported formats: {AUDIO_EXTENSIONS}"
            raise OpenAIError(400, message, param="file", code="invalid_value")
        if extension not in CONTAINER_EXTENSIONS.get(_container(audio) or "", ()):
            # Not audio, or decoded as the format its name says and so not understood.
            message = "Audio file might be corrupted or unsupported"
            raise OpenAIError(400, message, param="file", code="invalid_value")
        whisper_only = fmt in ("verbose_json", "srt", "vtt") and not model.startswith("gpt-")
        if fmt not in ("json", "text") and not whisper_only:
            message = f"response_format '{fmt}' is not compatible with model '{model}'"
            raise OpenAIError(400, message, param="response_format", code="unsupported_value")
        text = self.transcripts.get(call.audio_sha256 or "", self.default_transcript)
        seconds = round(ogg_opus_seconds(audio), 2)
        if fmt in ("text", "srt", "vtt"):
            cue = f"{_timestamp(0, fmt)} --> {_timestamp(seconds, fmt)}\n{text}"
            files = {"text": f"{text}\n", "srt": f"1\n{cue}\n\n", "vtt": f"WEBVTT\n\n{cue}\n\n"}
            call.response = files[fmt]
            return web.Response(text=call.response, content_type="text/plain")
        call.response = {"text": text}
        if fmt == "verbose_json":
            language = call.body.get("language", "cs")
            segment = {"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text}
            call.response.update(task="transcribe", language=language, duration=seconds)
            call.response["segments"] = [segment]
        return web.json_response(call.response)

    def _speech(self, call: OpenAICall) -> web.Response:
        body = call.body
        text, voice = body.get("input"), body.get("voice")
        if not isinstance(text, str) or not text:
            raise OpenAIError(400, "Missing required parameter: 'input'.", param="input")
        if len(text) > 4096:
            message = (
                "string too long. Expected a string with maximum length 4096, "
                f"but got a string with length {len(text)} instead."
            )
            raise OpenAIError(400, message, param="input", code="string_above_max_length")
        if not (voice in VOICES or (isinstance(voice, dict) and "id" in voice)):
            message = f"Invalid value: '{voice}'. Supported values are: {sorted(VOICES)}."
            raise OpenAIError(400, message, param="voice", code="invalid_value")
        if not 0.25 <= float(body.get("speed", 1.0)) <= 4.0:
            raise OpenAIError(400, "speed must be between 0.25 and 4.0", param="speed")
        fmt = body.get("response_format", "mp3")
        if fmt not in self.speech_audio:
            message = (
                f"stand-in: response_format {fmt!r} is unavailable, only {list(self.speech_audio)}"
            )
            raise OpenAIError(400, message, param="response_format")
        call.response = self.speech_audio[fmt]
        content_type = "audio/ogg" if fmt == "opus" else "audio/mpeg"
        return web.Response(body=call.response, content_type=content_type)

    @staticmethod
    def _garble(call: OpenAICall, oddity: str, content_type: str) -> web.Response:
        if oddity == "html":
            call.response = PROXY_ERROR_PAGE
            return web.Response(text=PROXY_ERROR_PAGE, content_type="text/html")
        if oddity == "empty":
            call.response = b""
            return web.Response(body=b"", content_type=content_type)
        if oddity == "not-object":
            call.response = []
        elif oddity == "no-text":
            call.response = {}
        elif oddity == "no-choices":
            call.response["choices"] = []
        else:  # no-content
            call.response["choices"][0]["message"].update(content=None, refusal=None)
        return web.json_response(call.response)


def _timestamp(seconds: float, fmt: str) -> str:
    millis = round(seconds * 1000)
    clock = f"{millis // 3_600_000:02}:{millis // 60_000 % 60:02}:{millis // 1000 % 60:02}"
    return f"{clock}{',' if fmt == 'srt' else '.'}{millis % 1000:03}"


def _container(data: bytes) -> str | None:
    """Which of the containers OpenAI accepts `data` is in, by its magic number (or None)."""
    mp3_frame = len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0
    magic = {b"OggS": "ogg", b"ID3": "mp3", b"fLaC": "flac", b"\x1aE\xdf\xa3": "webm"}
    if found := next((kind for start, kind in magic.items() if data.startswith(start)), None):
        return found
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "wav"
    return "mp4" if data[4:8] == b"ftyp" else "mp3" if mp3_frame else None


def strict_schema_problem(schema: dict[str, Any]) -> str | None:
    """Why OpenAI would reject `schema` for strict structured outputs (None: it is fine)."""

    def walk(node: Any, context: tuple[str, ...]) -> str | None:
        if not isinstance(node, dict):
            return None
        where = f"In context={context!r}"
        if node.get("type") == "object" or "properties" in node:
            if node.get("additionalProperties") is not False:
                return f"{where}, 'additionalProperties' must be supplied and be false."
            missing = [k for k in node.get("properties", {}) if k not in node.get("required", [])]
            if missing:
                return (
                    f"{where}, 'required' is required to be supplied and to be an array "
                    f"including every key in properties. Missing '{missing[0]}'."
                )
        children: list[tuple[Any, tuple[str, ...]]] = [
            (sub, (*context, key, name))
            for key in ("properties", "$defs", "definitions")
            for name, sub in node.get(key, {}).items()
        ]
        for key in ("anyOf", "allOf"):
            children += [(sub, (*context, key, str(i))) for i, sub in enumerate(node.get(key, []))]
        if "items" in node:
            children.append((node["items"], (*context, "items")))
        return next((p for sub, ctx in children if (p := walk(sub, ctx))), None)

    if schema.get("type") != "object" or "anyOf" in schema:
        return "schema must be a JSON Schema of 'type: \"object\"', got something else."
    return walk(schema, ())


def schema_instance(
    schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "value", depth: int = 0
) -> Any:
    """A plausible value valid against `schema` (the subset structured outputs allow).

    Every property is filled in; strings say which field they are ("ukázka reply"),
    numbers sit mid-range, arrays get max(minItems, 1) items, nullable values are
    filled rather than null, `$ref`s into `$defs`/`definitions` are followed.
    """
    root = schema if root is None else root
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return schema_instance({**target, **siblings}, root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if options := schema.get(key):
            filled = [o for o in options if o.get("type") != "null"]
            pick = filled[0] if filled and depth < _MAX_DEPTH else options[0]
            return schema_instance(pick, root, name, depth + 1)
    if all_of := schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in all_of:
            merged.update(part)
        return schema_instance(merged, root, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        filled_types = [t for t in kind if t != "null"]
        kind = filled_types[0] if filled_types and depth < _MAX_DEPTH else kind[0]
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: schema_instance(sub, root, key, depth + 1) for key, sub in properties.items()}
    if kind == "array":
        count = max(schema.get("minItems", 0), 1 if depth < _MAX_DEPTH else 0)
        count = min(count, schema.get("maxItems", count))
        item = schema.get("items", {})
        return [schema_instance(item, root, f"{name} {i + 1}", depth + 1) for i in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, name)


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    """Mid-range if bounded on both sides, else the bound nearest to 0; honours multipleOf."""
    lows = [schema[k] for k in ("minimum", "exclusiveMinimum") if k in schema]
    highs = [schema[k] for k in ("maximum", "exclusiveMaximum") if k in schema]
    low, high = max(lows, default=None), min(highs, default=None)
    if low is not None and high is not None:
        centre = (low + high) / 2
    else:
        centre = max(low, 0) if low is not None else min(high, 0) if high is not None else 0

    def fits(value: float) -> bool:
        return bool(
            schema.get("minimum", value) <= value <= schema.get("maximum", value)
            and schema.get("exclusiveMinimum", value - 1) < value
            and value < schema.get("exclusiveMaximum", value + 1)
        )

    step = schema.get("multipleOf") or (1 if integer else 0)
    near = [centre, centre + 1, centre - 1]
    if step:
        near = [f(c / step) * step for c in near for f in (math.floor, math.ceil)]
    value = next((v for v in near if fits(v)), centre)
    return int(value) if integer else value


def _string(schema: dict[str, Any], name: str) -> str:
    formats = {
        "date-time": "2025-01-15T10:30:00Z",
        "date": "2025-01-15",
        "time": "10:30:00",
        "duration": "P1D",
        "email": "anna@example.com",
        "hostname": "example.com",
        "ipv4": "192.0.2.1",
        "ipv6": "2001:db8::1",
        "uuid": "8f14e45f-ceea-467f-a9a5-0ed5e5e5e5e5",
        "uri": "https://example.com/",
    }
    text = formats.get(schema.get("format", ""), f"ukázka {name}")
    text = text.ljust(schema.get("minLength", 0), "a")
    return text[: schema.get("maxLength", len(text))]


if __name__ == "__main__":
    run_cli(argparse.ArgumentParser(description="Stand-in OpenAI server"), lambda _: FakeOpenAI())
