"""The buttons under Honzík's answer: 🌐 its translation, 🔊 the corrected sentence spoken."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.ai import UpstreamError
from bot.ai.speech import Voice
from bot.domain import LearnerSettings, Profile
from bot.handlers.keyboards import HearCb, TranslateCb
from bot.handlers.speaking import send_spoken
from bot.services.answers import AnswersService


async def translate(
    query: CallbackQuery,
    callback_data: TranslateCb,
    session: AsyncSession,
    profile: Profile,
    answers: AnswersService,
) -> None:
    if not isinstance(query.message, Message):
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    try:
        translation = await answers.translation(session, profile, callback_data.answer_id)
    except UpstreamError:
        await query.answer(texts.TRANSLATION_FAILED, show_alert=True)
        return
    if translation is None:
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    await query.answer()
    for part in texts.split_message(texts.TRANSLATION.format(text=translation)):
        await query.message.reply(part)


async def hear(
    query: CallbackQuery,
    callback_data: HearCb,
    bot: Bot,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    answers: AnswersService,
    voice: Voice,
) -> None:
    sentence = await answers.corrected(session, profile, callback_data.said_id)
    if sentence is None or query.message is None:
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    await query.answer()
    await send_spoken(bot, query.message.chat.id, sentence, settings, voice)


def create_router() -> Router:
    router = Router(name="answer_buttons")
    router.callback_query.register(translate, TranslateCb.filter())
    router.callback_query.register(hear, HearCb.filter())
    return router
