"""Honzík's answers: one Structured Outputs chat completion, cached and shared.

The cache key is the hash of the exact request (model, temperature, prompt version, the
full messages including the system prompt built from the settings, and the schema), so any
change to any of them is a different key and an old answer can never be served for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from openai import AsyncOpenAI

from bot.ai import FAILED_CALL, OpenAIHelper, UpstreamError, upstream_failure
from bot.ai.prompt import PROMPT_VERSION, Turn, build_messages
from bot.ai.schema import HonzikReply
from bot.cache import Cache, Keys
from bot.domain import LearnerSettings, Level, NativeLanguage
from bot.metrics import Metrics

SCHEMA = HonzikReply.model_json_schema()


def request_digest(request: dict[str, Any]) -> str:
    canonical = json.dumps(
        {**request, "prompt_version": PROMPT_VERSION, "schema": SCHEMA},
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
    ) -> HonzikReply:
        request: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": build_messages(level, native, settings, history, text),
        }

        async def ask() -> HonzikReply:
            try:
                async with self.metrics.openai("chat"):
                    completion = await self.client.chat.completions.parse(
                        response_format=HonzikReply, **request
                    )
            except FAILED_CALL as exc:
                raise upstream_failure(exc) from exc
            if not completion.choices:
                raise UpstreamError("the completion has no choices")
            parsed = completion.choices[0].message.parsed
            if parsed is None:
                raise UpstreamError("the model refused to answer")
            return parsed

        key = self.keys.honzik(request_digest(request), HonzikReply)
        return await self.cache.fetch(key, ask, shared=True)
