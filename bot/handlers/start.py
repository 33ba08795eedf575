"""/start: welcome and a short onboarding (native language, level, a daily reminder); skipping
is fine.

The native language comes first, so the later questions are already asked in it.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.domain import OPTIONS, Profile
from bot.handlers.filters import CommandIs
from bot.handlers.keyboards import OnboardingCb, onboarding, remind_choices
from bot.i18n import speaking_to
from bot.services.users import UserService


async def start(message: Message, profile: Profile) -> None:
    await message.answer(texts.welcome(profile.first_name))
    await message.answer(texts.ASK_LANGUAGE, reply_markup=onboarding(OPTIONS["language"]))


async def skip(
    query: CallbackQuery, session: AsyncSession, users: UserService, profile: Profile
) -> None:
    await users.finish_onboarding(session, profile)
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(texts.SKIPPED)


async def choose(
    query: CallbackQuery,
    callback_data: OnboardingCb,
    session: AsyncSession,
    users: UserService,
    profile: Profile,
) -> None:
    option = OPTIONS[callback_data.step]
    value = option.parse(callback_data.value)
    if value is None:
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    profile, settings = await users.change(session, profile, option, value)
    await query.answer()
    if not isinstance(query.message, Message):
        return
    with speaking_to(profile, settings):
        if option.name == "language":
            await query.message.edit_text(
                texts.ASK_LEVEL, reply_markup=onboarding(OPTIONS["level"])
            )
        else:  # last, the reminder question (answered in `reminders.remind_button`)
            await users.finish_onboarding(session, profile)
            await query.message.edit_text(
                texts.ASK_REMINDER, reply_markup=remind_choices(onboarding=True)
            )


def create_router() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandIs("start"))
    router.callback_query.register(skip, OnboardingCb.filter(F.step == "skip"))
    router.callback_query.register(choose, OnboardingCb.filter(F.step.in_({"language", "level"})))
    return router
