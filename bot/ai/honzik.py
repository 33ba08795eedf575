"""Honzík's answers: one Structured Outputs chat completion, cached and shared.

The cache key is the hash of the exact request (model, temperature, prompt version, the
full messages including the system prompt built from the settings, and the schema), so any
change to any of them is a different key and an old answer can never be served for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar

from openai import AsyncOpenAI
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


class Honzik(OpenAIHelper):
    def __init__(
        self,
        client: AsyncOpenAI,
        cache: Cache,
        keys: Keys,
        metrics: Metrics,
        model: str,
        temperature: float,
    ) -> None:
        super().__init__(client, cache, keys, metrics, model)
        self.temperature = temperature

    async def answer(
        self,
        text: str,
        *,
        level: Level,
        native: NativeLanguage,
        settings: LearnerSettings,
        history: list[Turn],
        spoken: bool,
    ) -> HonzikReply:
        """Honzík's answer to `text`; `spoken`: it was transcribed, so its punctuation,
        capitals and diacritics are not the learner's to be graded."""
        messages = build_messages(level, native, settings, history, text, spoken=spoken)
        return await self._complete(messages, HonzikReply)

    async def open_scene(self, *, level: Level, settings: LearnerSettings) -> SceneOpening:
        """The character's first line of `settings.scene` (which must be set), before the
        learner says anything: e.g. the barman greets and asks what they'd like.

        Nothing of the learner is in the request, so the line is generated once per scene,
        level, character and style and shared by every learner for a day (the Honzík
        cache). Raises `UpstreamError` when OpenAI cannot give it.
        """
        return await self._complete(scene_opening_messages(level, settings), SceneOpening)

    async def _complete(self, messages: list[dict[str, str]], kind: type[Answer]) -> Answer:
        request: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": messages,
        }

        async def ask() -> Answer:
            try:
                async with self.metrics.openai("chat"):
                    completion = await self.client.chat.completions.parse(
                        response_format=kind, **request
                    )
            except FAILED_CALL as exc:
                raise upstream_failure(exc) from exc
            if not completion.choices:
                raise UpstreamError("the completion has no choices")
            parsed = completion.choices[0].message.parsed
            if parsed is None:
                raise UpstreamError("the model refused to answer")
            return parsed

        key = self.keys.honzik(request_digest(request, kind), kind)
        return await self.cache.fetch(key, ask, shared=True)
