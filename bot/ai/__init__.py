"""OpenAI-backed helpers: Whisper, Honzík (chat) and TTS, each behind the shared cache."""

from __future__ import annotations

from typing import Final

import openai
from openai import AsyncOpenAI

from bot.cache import Cache, Keys
from bot.config import Config
from bot.metrics import Metrics


class UpstreamError(Exception):
    """OpenAI did not answer after its bounded retries; the learner is asked to try again."""


class UnreadableAudio(Exception):
    """The audio cannot be read: OpenAI refused it, or it is in no container OpenAI reads."""


FAILED_CALL: Final = (openai.OpenAIError, ValueError, TypeError, AttributeError)
"""What a call to the client raises when OpenAI gives no usable answer.

Beyond the client's own errors: it parses leniently (its strict validation would turn
every new enum value OpenAI adds into an outage), so a 200 that is not the promised JSON
fails inside it. An HTML page, a JSON array or an object without the promised fields
breaks its parser (AttributeError, TypeError), an empty body does not decode and a
completion off the schema does not validate (ValueError, pydantic's ValidationError too).
"""


class OpenAIHelper:
    """What every OpenAI-backed helper holds: the client, the cache, its keys and metrics."""

    def __init__(
        self, client: AsyncOpenAI, cache: Cache, keys: Keys, metrics: Metrics, model: str
    ) -> None:
        self.client = client
        self.cache = cache
        self.keys = keys
        self.metrics = metrics
        self.model = model


def create_openai(config: Config) -> AsyncOpenAI:
    """One client for the process.

    The OpenAI client already retries 429, 5xx, connection errors and timeouts with
    exponential back-off and honours Retry-After, so we only bound it and set a timeout.
    """
    key = config.openai_api_key.get_secret_value() if config.openai_api_key else "unset"
    return AsyncOpenAI(
        api_key=key,
        base_url=config.openai_base_url,
        timeout=config.openai_timeout,
        max_retries=config.openai_max_retries,
    )


def upstream_failure(exc: Exception, *, audio_input: bool = False) -> Exception:
    """Map the client's errors onto the two things the conversation cares about.

    Only for audio the learner sent does a 400/422 mean "this is not a recording we can
    read"; anywhere else any failure just means "ask again in a moment".
    """
    rejected = isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError)
    if audio_input and rejected:
        return UnreadableAudio(str(exc))
    return UpstreamError(type(exc).__name__)
