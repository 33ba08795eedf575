"""Honzík's answers: one Structured Outputs chat completion, cached and shared.

On a cache miss with a `ReplyListener`, the completion is streamed (the OpenAI client's
`chat.completions.stream`, same strict schema) and the `reply` field is read out of the
partial JSON as it grows (jiter, the client's own parser, in its trailing-strings mode), so
the learner sees it being written and its voice can start before the corrections are done.
Only the final parsed answer is cached: a stream that breaks off caches nothing.

The cache key is the hash of the exact request (model, temperature, prompt version, the
full messages including the system prompt built from the settings, and the schema), so any
change to any of them is a different key and an old answer can never be served for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, TypeVar

import httpx2
import jiter
import openai
from openai import AsyncOpenAI
from openai.lib.streaming.chat import AsyncChatCompletionStreamManager
from openai.types.chat import ParsedChatCompletion
from pydantic import BaseModel

from bot.ai import FAILED_CALL, OpenAIHelper, UpstreamError, upstream_failure
from bot.ai.prompt import PROMPT_VERSION, Turn, build_messages, scene_opening_messages
from bot.ai.schema import HonzikReply, SceneOpening
from bot.cache import Cache, Keys
from bot.domain import LearnerSettings, Level, NativeLanguage
from bot.metrics import Metrics

Answer = TypeVar("Answer", bound=BaseModel)


def request_digest(request: dict[str, Any], kind: type[BaseModel]) -> str:
    canonical = json.dumps(
        {**request, "prompt_version": PROMPT_VERSION, "schema": kind.model_json_schema()},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    # surrogatepass: a lone surrogate in what the learner typed must not break the key.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


# A stream can also break off below the client: the connection dropped mid-answer.
FAILED_STREAM = (*FAILED_CALL, httpx2.HTTPError)


class _LostBeforeContent(Exception):
    """The stream's connection broke before any of the answer arrived."""


class ReplyListener(Protocol):
    """Told how a streamed answer's `reply` grows; each call must return at once."""

    async def started(self) -> None:
        """The model has begun answering."""

    async def growing(self, reply: str) -> None:
        """The reply so far."""

    async def finished(self, reply: str) -> None:
        """The reply is complete; the rest of the answer (corrections, words) still streams."""


def reply_so_far(snapshot: str) -> tuple[str | None, bool]:
    """The `reply` string in a partial JSON answer, and whether it is complete.

    Strict Structured Outputs write the keys in the schema's order, `reply` first. jiter's
    "trailing-strings" mode keeps a string still being written; its plain partial mode drops
    one, so `reply` is there only once its closing quote is.
    """
    data = snapshot.encode("utf-8", "surrogatepass")
    try:
        growing = jiter.from_json(data, partial_mode="trailing-strings")
    except ValueError:  # nothing yet, or not JSON: the final parse has the last word
        return None, False
    reply = growing.get("reply") if isinstance(growing, dict) else None
    if not isinstance(reply, str):
        return None, False
    whole = jiter.from_json(data, partial_mode="on")
    return reply, isinstance(whole, dict) and "reply" in whole


class Honzik(OpenAIHelper):
    def __init__(
        self,
        client: AsyncOpenAI,
        cache: Cache,
        keys: Keys,
        metrics: Metrics,
        model: str,
        temperature: float,
        *,
        stream: bool = True,
    ) -> None:
        super().__init__(client, cache, keys, metrics, model)
        self.temperature = temperature
        self.stream = stream

    async def answer(
        self,
        text: str,
        *,
        level: Level,
        native: NativeLanguage,
        settings: LearnerSettings,
        history: list[Turn],
        spoken: bool,
        listener: ReplyListener | None = None,
    ) -> HonzikReply:
        """Honzík's answer to `text`; `spoken`: it was transcribed, so its punctuation,
        capitals and diacritics are not the learner's to be graded. `listener` follows the
        reply as it is written, when it is not cached (and streaming is on)."""
        messages = build_messages(level, native, settings, history, text, spoken=spoken)
        return await self._complete(messages, HonzikReply, listener)

    async def open_scene(self, *, level: Level, settings: LearnerSettings) -> SceneOpening:
        """The character's first line of `settings.scene` (which must be set), before the
        learner says anything: e.g. the barman greets and asks what they'd like.

        Nothing of the learner is in the request, so the line is generated once per scene,
        level, character and style and shared by every learner for a day (the Honzík
        cache). Raises `UpstreamError` when OpenAI cannot give it.
        """
        return await self._complete(scene_opening_messages(level, settings), SceneOpening)

    async def _complete(
        self,
        messages: list[dict[str, str]],
        kind: type[Answer],
        listener: ReplyListener | None = None,
    ) -> Answer:
        request: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": messages,
        }

        async def ask() -> Answer:
            try:
                async with self.metrics.openai("chat"):
                    if listener is not None and self.stream:
                        completion = await self._streamed(request, kind, listener)
                    else:
                        completion = await self.client.chat.completions.parse(
                            response_format=kind, **request
                        )
            except FAILED_STREAM as exc:
                raise upstream_failure(exc) from exc
            if not completion.choices:
                raise UpstreamError("the completion has no choices")
            parsed = completion.choices[0].message.parsed
            if parsed is None:
                raise UpstreamError("the model refused to answer")
            return parsed

        key = self.keys.honzik(request_digest(request, kind), kind)
        return await self.cache.fetch(key, ask, shared=True)

    async def _streamed(
        self, request: dict[str, Any], kind: type[Answer], listener: ReplyListener
    ) -> ParsedChatCompletion[Answer]:
        """The streamed completion; a connection lost before any of the answer came is asked
        again once, not streamed, as the client itself retries a request that never got an
        answer. Lost later, the learner has seen part of it: that is a failure."""
        streaming = self.client.chat.completions.stream(response_format=kind, **request)
        try:
            return await _follow(streaming, listener)
        except _LostBeforeContent:
            return await self.client.chat.completions.parse(response_format=kind, **request)


async def _follow(
    streaming: AsyncChatCompletionStreamManager[Answer], listener: ReplyListener
) -> ParsedChatCompletion[Answer]:
    """Read the stream to its end, telling `listener` about the reply; the final completion."""
    async with streaming as stream:
        await listener.started()
        told, complete, chunks, content = "", False, 0, False
        try:
            async for event in stream:
                chunks += event.type == "chunk"
                if event.type != "content.delta" or complete:
                    continue
                content = content or bool(event.delta)
                reply, complete = reply_so_far(event.snapshot)
                if reply is None:
                    continue
                if complete:
                    await listener.finished(reply)
                elif reply != told:
                    told = reply
                    await listener.growing(reply)
        except (httpx2.HTTPError, openai.APIConnectionError) as exc:
            if not content:
                raise _LostBeforeContent from exc
            raise
        if not chunks:  # a 200 that was no event stream (an HTML page, say)
            raise UpstreamError("the completion stream is empty")
        return await stream.get_final_completion()
