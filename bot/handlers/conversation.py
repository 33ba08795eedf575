"""Talking with Honzík: voice notes, audio files, video notes and text."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import replace

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Audio, Message, VideoNote, Voice
from aiogram.utils.chat_action import ChatActionMiddleware
from aiohttp import ClientError, ClientResponseError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.ai import UnreadableAudio, UpstreamError
from bot.ai import speech as speech_ai
from bot.ai.speech import Whisper
from bot.config import Config
from bot.db.models import MessageKind
from bot.domain import LearnerSettings, Profile
from bot.handlers.drafts import Drafting, DraftStream
from bot.handlers.filters import When
from bot.handlers.keyboards import answer_buttons
from bot.handlers.speaking import SpeechAhead, send_spoken
from bot.services.conversation import ConversationService, Outcome, Said

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
MAX_TEXT = 2000
LETTER = re.compile(r"[^\W\d_]")


async def on_voice(
    message: Message,
    bot: Bot,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    config: Config,
    conversation: ConversationService,
    whisper: Whisper,
    voice: speech_ai.Voice,
    drafting: Drafting,
) -> None:
    media: Voice | Audio | VideoNote | None = message.voice or message.audio or message.video_note
    assert media is not None
    duration = media.duration or 0
    if duration > config.max_voice_seconds:
        await message.answer(
            texts.VOICE_TOO_LONG.format(seconds=duration, limit=config.max_voice_seconds)
        )
        return
    if (media.file_size or 0) > TELEGRAM_DOWNLOAD_LIMIT:
        await message.answer(texts.VOICE_TOO_BIG)
        return
    if not await conversation.within_budget(profile, settings):
        await message.answer(texts.DAILY_LIMIT)
        return
    said = Said(
        text="",
        kind=MessageKind.VOICE,
        duration=float(duration),
        audio_file_id=media.file_id,
        telegram_message_id=message.message_id,
    )
    mime_type = None if isinstance(media, VideoNote) else media.mime_type
    buffer = io.BytesIO()
    try:
        await bot.download(media.file_id, destination=buffer)
        transcript = await whisper.transcribe(buffer.getvalue(), mime_type)
    except (TelegramAPIError, ClientError, TimeoutError) as exc:
        # Never str(exc): the download URL in an aiohttp error holds the bot token.
        failure = type(exc).__name__
        if isinstance(exc, ClientResponseError):
            failure += f" {exc.status} {exc.message}"
        log.warning("could not download the voice message: %s", failure)
        await conversation.store_unheard(session, profile, settings, said)
        await message.answer(texts.TRY_AGAIN)
        return
    except (UnreadableAudio, UpstreamError) as exc:
        await conversation.store_unheard(session, profile, settings, said)
        unreadable = isinstance(exc, UnreadableAudio)
        await message.answer(texts.CANT_HEAR if unreadable else texts.TRY_AGAIN)
        return
    if not LETTER.search(transcript):
        await conversation.store_unheard(session, profile, settings, said)
        await message.answer(texts.DIDNT_CATCH)
        return
    said = replace(said, text=transcript)
    ahead = SpeechAhead(settings, voice)
    drafts = _drafts(message, bot, drafting, ahead, heard=transcript)
    outcome = await conversation.respond(session, profile, settings, said, drafts)
    await _reply(message, bot, outcome, settings, ahead, heard=transcript, drafts=drafts)


async def on_text(
    message: Message,
    bot: Bot,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    conversation: ConversationService,
    voice: speech_ai.Voice,
    drafting: Drafting,
) -> None:
    text = (message.text or "").strip()
    if len(text) > MAX_TEXT:
        await message.answer(texts.TEXT_TOO_LONG.format(limit=MAX_TEXT))
        return
    if not LETTER.search(text):
        await message.answer(texts.NO_WORDS)
        return
    if not await conversation.within_budget(profile, settings):
        await message.answer(texts.DAILY_LIMIT)
        return
    said = Said(text=text, telegram_message_id=message.message_id)
    ahead = SpeechAhead(settings, voice)
    drafts = _drafts(message, bot, drafting, ahead)
    outcome = await conversation.respond(session, profile, settings, said, drafts)
    await _reply(message, bot, outcome, settings, ahead, drafts=drafts)


async def on_edited(message: Message) -> None:
    await message.answer(texts.EDITED)


def _drafts(
    message: Message,
    bot: Bot,
    drafting: Drafting,
    ahead: SpeechAhead,
    heard: str | None = None,
) -> DraftStream | None:
    """Drafts of the reply while Honzík writes it, and his voice started as soon as the
    reply is complete; None when drafts are off (the answer then comes as before)."""
    if not drafting.available:
        return None
    return drafting.stream(
        bot, message.chat.id, message.message_id, heard=heard, on_reply=ahead.start
    )


async def _reply(
    message: Message,
    bot: Bot,
    outcome: Outcome,
    settings: LearnerSettings,
    ahead: SpeechAhead,
    heard: str | None = None,
    drafts: DraftStream | None = None,
) -> None:
    """The text first, then the voice; a failing voice never costs the learner the text.

    However long the answer, it arrives whole, in as many messages as it takes, and the
    voice speaks as much of the reply as one speech request allows.
    """
    if drafts is not None:
        await drafts.close()
    reply = outcome.reply
    if reply is None:
        await message.answer(texts.TRY_AGAIN)
        return
    mistakes = [(m.original, m.corrected, m.explanation) for m in reply.mistakes]
    text = texts.reply_text(
        reply.reply,
        reply.score,
        mistakes,
        reply.tip,
        outcome.saved_words,
        heard,
        corrected=reply.corrected_text,
        suggested=outcome.suggested_words,
    )
    *parts, last = texts.split_message(text)
    for part in parts:
        await message.answer(part)
    buttons = None
    if outcome.answer_id is not None:
        said_id = outcome.said_id if reply.mistakes and reply.corrected_text else None
        save = bool(outcome.suggested_words)
        buttons = answer_buttons(outcome.answer_id, said_id, save=save)
    await message.answer(last, reply_markup=buttons)
    if not settings.voice_replies:
        return
    await send_spoken(bot, message.chat.id, reply.reply, settings, ahead.voice, ahead)


def create_router() -> Router:
    router = Router(name="conversation")
    router.message.middleware(ChatActionMiddleware())
    media = When(F.voice | F.audio | F.video_note)
    router.message.register(on_voice, media, flags={"chat_action": "record_voice"})
    router.message.register(
        on_text, When(F.text & ~F.text.startswith("/")), flags={"chat_action": "typing"}
    )
    router.edited_message.register(on_edited)
    return router
