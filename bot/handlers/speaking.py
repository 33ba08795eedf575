"""Sending the character's voice: one way for every handler that speaks."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile

from bot import texts
from bot.ai import UpstreamError
from bot.ai.speech import Voice
from bot.domain import LearnerSettings

log = logging.getLogger(__name__)

SPEECH_LIMIT = 4096  # characters one speech request takes


async def send_spoken(
    bot: Bot, chat_id: int, text: str, settings: LearnerSettings, voice: Voice
) -> None:
    """Speak `text` (as much as one request takes) and send it as a voice message.

    A cached voice is re-sent by Telegram's `file_id`; one Telegram no longer knows is
    uploaded again; a failing TTS costs the learner only the voice, never the text before it.
    """
    speech_text = texts.shorten(text, SPEECH_LIMIT)
    try:
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
