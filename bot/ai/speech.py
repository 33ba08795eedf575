"""Whisper (speech to text) and TTS (text to speech), each cached by content hash."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Final

from openai import AsyncOpenAI
from openai.types.audio import Transcription
from pydantic import BaseModel

from bot.ai import FAILED_CALL, OpenAIHelper, UnreadableAudio, UpstreamError, upstream_failure
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
CONTAINERS: Final = {
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "mp4": "audio/mp4",
    "wav": "audio/wav",
    "webm": "audio/webm",
    "flac": "audio/flac",
}
"""The containers OpenAI transcribes: the file extension it knows each by, its MIME type."""
_BY_MIME: Final = {mime: extension for extension, mime in CONTAINERS.items()}


def container(data: bytes) -> str | None:
    """The container `data` is in, by its magic number (None: not one OpenAI reads).

    OpenAI picks its decoder by the upload's file name, so the name must say what the bytes
    are. The bytes themselves are the only trustworthy witness: an audio file's MIME type
    and name come from the sender's app, and video notes have no MIME type at all.
    """
    if data.startswith(b"OggS"):
        return "ogg"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"  # an ID3 tag, or straight into an MPEG audio frame
    if data[4:8] == b"ftyp":  # MP4 and M4A alike; Telegram's video notes
        return "mp4"
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM (Matroska)
        return "webm"
    if data.startswith(b"fLaC"):
        return "flac"
    return None


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
    async def transcribe(self, audio: bytes, mime_type: str | None) -> str:
        """The Czech transcript; the same bytes are transcribed once per TTL.

        The upload is named after the container the bytes are in. Telegram's `mime_type`
        names only bytes we do not recognise (OpenAI has the last word on those); with
        neither, nothing OpenAI could read was sent, and it is not asked.
        """
        extension = container(audio) or _BY_MIME.get(mime_type or "")
        if extension is None:
            raise UnreadableAudio(f"not in a container OpenAI reads (MIME type {mime_type})")
        upload = (f"voice.{extension}", audio, CONTAINERS[extension])

        async def call() -> Transcript:
            try:
                async with self.metrics.openai("transcriptions"):
                    result = await self.client.audio.transcriptions.create(
                        file=upload, model=self.model, language="cs"
                    )
            except FAILED_CALL as exc:
                raise upstream_failure(exc, audio_input=True) from exc
            # Not JSON, the client hands back the body as it came (an HTML page, say).
            if not isinstance(result, Transcription) or not isinstance(result.text, str):
                raise UpstreamError("the transcription has no text")
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
            except FAILED_CALL as exc:
                raise upstream_failure(exc) from exc
            if container(response.content) != "ogg":  # an empty body or an HTML page is no speech
                raise UpstreamError("the speech is not Ogg/Opus")
            return Speech(audio_b64=base64.b64encode(response.content).decode())

        return await self.cache.fetch(key, call, shared=True)

    async def remember_upload(
        self, text: str, character: Character, speed: VoiceSpeed, file_id: str
    ) -> None:
        """After the first upload, later hits re-send Telegram's copy and upload nothing."""
        digest, _ = self._digest(text, speed)
        key = self.keys.tts(digest, self.voices[character], Speech)
        await self.cache.put(key, Speech(file_id=file_id))
