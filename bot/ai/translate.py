"""Honzík's answers in the learner's language: one plain chat completion, cached and shared.

The key hashes the model, the prompt and the text, so every learner who asks for the same
answer in the same language shares one call, and a changed prompt never serves an old one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from bot.ai import FAILED_CALL, OpenAIHelper, UpstreamError, upstream_failure
from bot.ai.prompt import LANGUAGE_NAMES
from bot.domain import NativeLanguage

PROMPT: Final = (
    "Translate the user's Czech message into {language}. Keep its meaning, tone and emoji; "
    "answer with the translation only, nothing else."
)


class Translation(BaseModel):
    text: str


class Translator(OpenAIHelper):
    async def translate(self, text: str, language: NativeLanguage) -> str:
        """`text` (Czech) in `language`; the same text and language are translated once per TTL."""
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": PROMPT.format(language=LANGUAGE_NAMES[language])},
            {"role": "user", "content": text},
        ]

        async def call() -> Translation:
            try:
                async with self.metrics.openai("chat"):
                    completion = await self.client.chat.completions.create(
                        model=self.model, temperature=0, messages=messages
                    )
            except FAILED_CALL as exc:
                raise upstream_failure(exc) from exc
            content = completion.choices[0].message.content if completion.choices else None
            if not isinstance(content, str) or not content.strip():
                raise UpstreamError("the translation is empty")
            return Translation(text=content.strip())

        canonical = json.dumps([self.model, messages], ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
        key = self.keys.translate(digest, language.value, Translation)
        translation = await self.cache.fetch(key, call, shared=True)
        return translation.text
