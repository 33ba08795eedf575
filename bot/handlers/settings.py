"""/settings with inline keyboards, and the same settings typed: `/level advanced`."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.domain import OPTIONS, LearnerSettings, Option, Profile
from bot.handlers.filters import CommandIs
from bot.handlers.keyboards import SettingsCb, option_values, settings_menu
from bot.i18n import speaking_to
from bot.services.users import UserService


async def show(message: Message, profile: Profile, settings: LearnerSettings) -> None:
    await message.answer(texts.SETTINGS_TITLE, reply_markup=settings_menu(profile, settings))


def _choices(option: Option) -> str:
    return " | ".join(option.values)


async def typed(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    users: UserService,
    profile: Profile,
    settings: LearnerSettings,
) -> None:
    option = OPTIONS[command.command.lower()]
    label = texts.OPTION_LABELS[option.name]
    if not command.args:
        current = texts.value_label(option.name, option.shown(profile, settings))
        await message.answer(
            texts.SETTING_CURRENT.format(
                label=label, value=current, name=option.name, values=_choices(option)
            )
        )
        return
    value = option.parse(command.args)
    if value is None:
        await message.answer(texts.SETTING_BAD_VALUE.format(values=_choices(option)))
        return
    profile, settings = await users.change(session, profile, option, value)
    with speaking_to(profile, settings):  # `/ui czech` is answered in Czech
        label = texts.OPTION_LABELS[option.name]
        shown = texts.value_label(option.name, option.shown(profile, settings))
        await message.answer(texts.SETTING_SAVED.format(label=label, value=shown))


async def back(query: CallbackQuery, profile: Profile, settings: LearnerSettings) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(
            texts.SETTINGS_TITLE, reply_markup=settings_menu(profile, settings)
        )


async def pressed(
    query: CallbackQuery,
    callback_data: SettingsCb,
    session: AsyncSession,
    users: UserService,
    profile: Profile,
    settings: LearnerSettings,
) -> None:
    option = OPTIONS[callback_data.option]
    label = texts.OPTION_LABELS[option.name]
    if not callback_data.value:
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text(
                texts.SETTINGS_CHOOSE.format(label=label),
                reply_markup=option_values(option, option.shown(profile, settings)),
            )
        return
    value = option.parse(callback_data.value)
    if value is None:
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    profile, settings = await users.change(session, profile, option, value)
    with speaking_to(profile, settings):
        label = texts.OPTION_LABELS[option.name]
        shown = texts.value_label(option.name, option.shown(profile, settings))
        await query.answer(texts.SETTING_SAVED.format(label=label, value=shown))
        if isinstance(query.message, Message):
            await query.message.edit_text(
                texts.SETTINGS_TITLE, reply_markup=settings_menu(profile, settings)
            )


def create_router() -> Router:
    router = Router(name="settings")
    router.message.register(show, CommandIs("settings"))
    router.message.register(typed, CommandIs(*OPTIONS))
    router.callback_query.register(back, SettingsCb.filter(F.option == "menu"))
    router.callback_query.register(pressed, SettingsCb.filter(F.option.in_(OPTIONS.keys())))
    return router
