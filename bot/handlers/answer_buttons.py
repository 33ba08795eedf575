"""The buttons under Honzík's answer: 🌐 its translation, 🔊 the corrected sentence spoken,
➕ the words it suggested saved."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.ai import UpstreamError
from bot.ai.speech import Voice
from bot.config import Config
from bot.domain import LearnerSettings, Profile
from bot.handlers.keyboards import HearCb, SaveWordsCb, TranslateCb
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


async def save(
    query: CallbackQuery,
    callback_data: SaveWordsCb,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    config: Config,
    answers: AnswersService,
) -> None:
    saved = await answers.save_suggested(
        session, profile, settings, callback_data.answer_id, config.zone
    )
    if saved is None:
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    if saved:
        saying = texts.WORDS_SAVED.format(words=", ".join(saved))
        await query.answer(texts.shorten(saying, texts.ALERT_LIMIT))
    else:
        await query.answer(texts.WORDS_ALREADY_SAVED)
    await _drop_button(query)


async def _drop_button(query: CallbackQuery) -> None:
    """Take the pressed button off the answer: its job is done."""
    message = query.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return
    rows = [
        [button for button in row if button.callback_data != query.data]
        for row in message.reply_markup.inline_keyboard
    ]
    if rows == message.reply_markup.inline_keyboard:
        return
    try:
        await message.edit_reply_markup(
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[row for row in rows if row])
        )
    except TelegramBadRequest:  # pressed twice at once: the other press took it off already
        return


def create_router() -> Router:
    router = Router(name="answer_buttons")
    router.callback_query.register(translate, TranslateCb.filter())
    router.callback_query.register(hear, HearCb.filter())
    router.callback_query.register(save, SaveWordsCb.filter())
    return router
