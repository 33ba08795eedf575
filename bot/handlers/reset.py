"""/reset: a fresh conversation, or deleting the learner's data after a confirmation."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.domain import LearnerSettings, Profile
from bot.handlers.filters import CommandIs
from bot.handlers.keyboards import ResetCb, reset_confirm, reset_menu
from bot.services.reset import ResetService


async def menu(message: Message) -> None:
    await message.answer(texts.RESET_MENU, reply_markup=reset_menu())


async def pressed(
    query: CallbackQuery,
    callback_data: ResetCb,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    reset: ResetService,
) -> None:
    if not isinstance(query.message, Message):
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    action = callback_data.action
    if action == "conversation":
        await reset.new_conversation(session, profile)
        text, markup = texts.RESET_CONVERSATION_DONE, None
    elif action == "data":
        text, markup = texts.RESET_CONFIRM, reset_confirm()
    elif action == "confirm":
        await reset.delete_all(session, profile, settings)
        text, markup = texts.RESET_DATA_DONE, None
    else:  # "cancel": `ResetCb` admits nothing else
        text, markup = texts.RESET_CANCELLED, None
    await query.answer()
    await query.message.edit_text(text, reply_markup=markup)


def create_router() -> Router:
    router = Router(name="reset")
    router.message.register(menu, CommandIs("reset"))
    router.callback_query.register(pressed, ResetCb.filter())
    return router
