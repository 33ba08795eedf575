"""Inline keyboards and their typed callback data.

Callback data comes from the learner's client, so anyone can send any 64 bytes: every field
accepts only what a button of ours carries (a known word, an id a database column can hold).
Anything else fails `unpack`, so no filter matches and the fallback answers with
`texts.STALE_BUTTON`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder
from pydantic import AfterValidator, Field

from bot import texts
from bot.domain import OPTIONS, LearnerSettings, Option, Profile, Scene

INT64_MAX = 2**63 - 1


def _one_of(choices: Iterable[str]) -> AfterValidator:
    allowed = frozenset(choices)

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError("not a value any button carries")
        return value

    return AfterValidator(check)


RowId = Annotated[int, Field(ge=1, le=INT64_MAX)]
OptionValue = Annotated[str, _one_of(["", *(v for o in OPTIONS.values() for v in o.values)])]


class OnboardingCb(CallbackData, prefix="ob"):
    step: Annotated[str, _one_of(["language", "level", "skip"])]
    value: OptionValue


class SettingsCb(CallbackData, prefix="set"):
    option: Annotated[str, _one_of([*OPTIONS, "menu"])]
    value: OptionValue = ""


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


class WordsPageCb(CallbackData, prefix="words"):
    page: Annotated[int, Field(ge=1, le=INT64_MAX)]


class ReviewCb(CallbackData, prefix="rv"):
    action: Annotated[str, _one_of(["show", *texts.GRADE_LABELS])]
    word_id: RowId


class ResetCb(CallbackData, prefix="reset"):
    action: Annotated[str, _one_of(["conversation", "data", "confirm", "cancel"])]


def words_pages(page: int, pages: int) -> InlineKeyboardMarkup | None:
    if pages <= 1:
        return None
    builder = InlineKeyboardBuilder()
    if page > 1:
        builder.button(text=texts.PREVIOUS, callback_data=WordsPageCb(page=page - 1))
    if page < pages:
        builder.button(text=texts.NEXT, callback_data=WordsPageCb(page=page + 1))
    return builder.as_markup()


def review_show(word_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts.REVIEW_SHOW, callback_data=ReviewCb(action="show", word_id=word_id))
    return builder.as_markup()


def review_grades(word_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for name, label in texts.GRADE_LABELS.items():
        builder.button(text=label, callback_data=ReviewCb(action=name, word_id=word_id))
    builder.adjust(4)
    return builder.as_markup()


def reset_menu() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts.RESET_CONVERSATION, callback_data=ResetCb(action="conversation"))
    builder.button(text=texts.RESET_DATA, callback_data=ResetCb(action="data"))
    builder.adjust(1)
    return builder.as_markup()


def reset_confirm() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts.RESET_YES, callback_data=ResetCb(action="confirm"))
    builder.button(text=texts.RESET_NO, callback_data=ResetCb(action="cancel"))
    return builder.as_markup()


class ScenarioCb(CallbackData, prefix="scn"):
    """A scene to play, or "off" for free chat; anything else fails `unpack`."""

    scene: Scene | Literal["off"]


def scenario_menu(current: Scene | None) -> InlineKeyboardMarkup:
    """The eight scenes and free chat, the current one marked."""
    builder = InlineKeyboardBuilder()
    for scene in Scene:
        mark = "✅ " if scene is current else ""
        builder.button(
            text=mark + texts.SCENE_LABELS[scene.value], callback_data=ScenarioCb(scene=scene)
        )
    builder.adjust(2)
    builder.row()
    mark = "✅ " if current is None else ""
    builder.button(text=mark + texts.SCENE_OFF, callback_data=ScenarioCb(scene="off"))
    return builder.as_markup()


class TranslateCb(CallbackData, prefix="tr"):
    answer_id: RowId


class HearCb(CallbackData, prefix="hear"):
    said_id: RowId


def answer_buttons(answer_id: int, said_id: int | None) -> InlineKeyboardMarkup:
    """Under Honzík's answer: 🌐 its translation, and 🔊 the corrected sentence if any."""
    builder = InlineKeyboardBuilder()
    builder.button(text=texts.TRANSLATE, callback_data=TranslateCb(answer_id=answer_id))
    if said_id is not None:
        builder.button(text=texts.HEAR, callback_data=HearCb(said_id=said_id))
    return builder.as_markup()
