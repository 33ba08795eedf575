"""Whisper (speech to text) and TTS (text to speech), each cached by content hash."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Final

import openai
from openai import AsyncOpenAI
from pydantic import BaseModel

from bot.ai import OpenAIHelper, upstream_failure
from bot.cache import Cache, Keys
from bot.domain import Character, VoiceSpeed
from bot.metrics import Metrics

SPEEDS = {
    VoiceSpeed.VERY_SLOW: 0.7,
    VoiceSpeed.SLOW: 0.85,
    VoiceSpeed.NORMAL: 1.0,
    VoiceSpeed.NATIVE: 1.15,
}
TTS_FORMAT: Final = "opus"  # Ogg/Opus: Telegram shows it as a voice note


class Transcript(BaseModel):
    text: str


class Speech(BaseModel):
    """A voiced reply: the audio until Telegram has it, then only Telegram's file_id."""

    file_id: str | None = None
    audio_b64: str | None = None

    @property
    def audio(self) -> bytes:
        return base64.b64decode(self.audio_b64 or "")


class Whisper(OpenAIHelper):
    async def transcribe(self, audio: bytes) -> str:
        """The Czech transcript; the same bytes are transcribed once per TTL."""

        async def call() -> Transcript:
            try:
                async with self.metrics.openai("transcriptions"):
                    result = await self.client.audio.transcriptions.create(
                        file=("voice.ogg", audio, "audio/ogg"), model=self.model, language="cs"
                    )
            except openai.OpenAIError as exc:
                raise upstream_failure(exc, audio_input=True) from exc
            return Transcript(text=result.text.strip())

        key = self.keys.whisper(hashlib.sha256(audio).hexdigest(), Transcript)
        transcript = await self.cache.fetch(key, call, shared=True)
        return transcript.text


class Voice(OpenAIHelper):
    def __init__(
        self,
        client: AsyncOpenAI,
        cache: Cache,
        keys: Keys,
        metrics: Metrics,
        model: str,
        voices: dict[Character, str],
    ) -> None:
        super().__init__(client, cache, keys, metrics, model)
        self.voices = voices

    def _digest(self, text: str, speed: VoiceSpeed) -> tuple[str, float]:
        rate = SPEEDS[speed]
        digest = hashlib.sha256(
            json.dumps([text, self.model, rate, TTS_FORMAT], ensure_ascii=False).encode()
        ).hexdigest()
        return digest, rate

    async def speak(
        self, text: str, character: Character, speed: VoiceSpeed, *, refresh: bool = False
    ) -> Speech:
        """Cached speech; `refresh` drops an entry whose file_id Telegram no longer knows."""
        voice = self.voices[character]
        digest, rate = self._digest(text, speed)
        key = self.keys.tts(digest, voice, Speech)
        if refresh:
            await self.cache.delete(key)

        async def call() -> Speech:
            try:
                async with self.metrics.openai("speech"):
                    response = await self.client.audio.speech.create(
                        model=self.model,
                        voice=voice,
                        input=text,
                        response_format=TTS_FORMAT,
                        speed=rate,
                    )
            except openai.OpenAIError as exc:
                raise upstream_failure(exc) from exc
            return Speech(audio_b64=base64.b64encode(response.content).decode())

        return await self.cache.fetch(key, call, shared=True)

    async def remember_upload(
        self, text: str, character: Character, speed: VoiceSpeed, file_id: str
    ) -> None:
        """After the first upload, later hits re-send Telegram's copy and upload nothing."""
        digest, _ = self._digest(text, speed)
        key = self.keys.tts(digest, self.voices[character], Speech)
        await self.cache.put(key, Speech(file_id=file_id))
