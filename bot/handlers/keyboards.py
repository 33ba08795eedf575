"""Inline keyboards and their typed callback data."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import texts
from bot.domain import OPTIONS, LearnerSettings, Option, Profile


class OnboardingCb(CallbackData, prefix="ob"):
    step: str
    value: str


class SettingsCb(CallbackData, prefix="set"):
    option: str
    value: str = ""


def onboarding(option: Option, columns: int = 2) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for value in option.values:
        builder.button(
            text=texts.value_label(option.name, value),
            callback_data=OnboardingCb(step=option.name, value=value),
        )
    builder.adjust(columns)
    builder.row()
    builder.button(text=texts.SKIP, callback_data=OnboardingCb(step="skip", value=""))
    return builder.as_markup()


def settings_menu(profile: Profile, settings: LearnerSettings) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for option in OPTIONS.values():
        current = texts.value_label(option.name, option.shown(profile, settings))
        builder.button(
            text=f"{texts.OPTION_LABELS[option.name]}: {current}",
            callback_data=SettingsCb(option=option.name),
        )
    builder.adjust(1)
    return builder.as_markup()


def option_values(option: Option, current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for value in option.values:
        mark = "✅ " if value == current else ""
        builder.button(
            text=mark + texts.value_label(option.name, value),
            callback_data=SettingsCb(option=option.name, value=value),
        )
    builder.adjust(2)
    builder.row()
    builder.button(text=texts.BACK, callback_data=SettingsCb(option="menu"))
    return builder.as_markup()
