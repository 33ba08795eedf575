"""Sending the character's voice: one way for every handler that speaks."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile

from bot import texts
from bot.ai import UpstreamError
from bot.ai.speech import Speech, Voice
from bot.domain import LearnerSettings

log = logging.getLogger(__name__)

SPEECH_LIMIT = 4096  # characters one speech request takes


def spoken_part(text: str) -> str:
    """As much of `text` as one speech request takes."""
    return texts.shorten(text, SPEECH_LIMIT)


class SpeechAhead:
    """A reply's speech, requested while the rest of the answer is still being written (see
    `bot.handlers.drafts`); `send_spoken` then takes its outcome instead of asking again."""

    def __init__(self, settings: LearnerSettings, voice: Voice) -> None:
        self.settings = settings
        self.voice = voice
        self._text: str | None = None
        self._task: asyncio.Task[Speech] | None = None

    def start(self, text: str) -> None:
        if not self.settings.voice_replies or self._task is not None:
            return
        self._text = spoken_part(text)
        speaking = self.voice.speak(self._text, self.settings.character, self.settings.voice_speed)
        self._task = asyncio.create_task(speaking)
        self._task.add_done_callback(_retrieved)

    async def speech(self, text: str) -> Speech:
        """The speech of `text`: the one started early if it is the same text."""
        if self._task is not None and text == self._text:
            return await self._task
        return await self.voice.speak(text, self.settings.character, self.settings.voice_speed)


def _retrieved(task: asyncio.Task[Speech]) -> None:
    """An answer that failed after its reply was complete never sends the voice: its error is
    retrieved here, not left to asyncio's "never retrieved" warning."""
    if not task.cancelled():
        task.exception()


async def send_spoken(
    bot: Bot,
    chat_id: int,
    text: str,
    settings: LearnerSettings,
    voice: Voice,
    ahead: SpeechAhead | None = None,
) -> None:
    """Speak `text` (as much as one request takes) and send it as a voice message.

    A cached voice is re-sent by Telegram's `file_id`; one Telegram no longer knows is
    uploaded again; a failing TTS costs the learner only the voice, never the text before it.
    """
    speech_text = spoken_part(text)
    try:
        if ahead is not None:
            spoken = await ahead.speech(speech_text)
        else:
            spoken = await voice.speak(speech_text, settings.character, settings.voice_speed)
        if spoken.file_id is not None:
            try:
                await bot.send_voice(chat_id, spoken.file_id)
                return
            except TelegramBadRequest:
                log.warning("cached voice file id rejected; uploading again")
                spoken = await voice.speak(
                    speech_text, settings.character, settings.voice_speed, refresh=True
                )
    except UpstreamError as exc:
        log.warning("tts unavailable, text only: %s", exc)
        return
    sent = await bot.send_voice(chat_id, BufferedInputFile(spoken.audio, filename="honzik.ogg"))
    if sent.voice is not None:
        await voice.remember_upload(
            speech_text, settings.character, settings.voice_speed, sent.voice.file_id
        )
