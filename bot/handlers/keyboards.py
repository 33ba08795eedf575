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
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
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
    skip = InlineKeyboardButton(
        text=texts.SKIP, callback_data=OnboardingCb(step="skip", value="").pack()
    )
    builder.row(skip)  # a row of its own: `row()` with no buttons adds none
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
    builder.row(
        InlineKeyboardButton(text=texts.BACK, callback_data=SettingsCb(option="menu").pack())
    )
    return builder.as_markup()


# Callback data cannot hold ':', so the times are packed as HHMM.
REMIND_CHOICES = ("0800", "1200", "1800", "1900", "2000", "2100")
ZONE_CHOICES = tuple(texts.ZONE_LABELS)  # IANA names of the common learners' zones


class RemindCb(CallbackData, prefix="rm"):
    """A reminder time (or "off"); `onboarding`: asked at the end of /start."""

    at: Annotated[str, _one_of([*REMIND_CHOICES, "off"])]
    onboarding: bool = False


class TimezoneCb(CallbackData, prefix="tz"):
    zone: Annotated[str, _one_of(ZONE_CHOICES)]


def remind_choices(onboarding: bool = False) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for at in REMIND_CHOICES:
        label = f"⏰ {at[:2]}:{at[2:]}"
        builder.button(text=label, callback_data=RemindCb(at=at, onboarding=onboarding))
    builder.adjust(3)
    no = RemindCb(at="off", onboarding=onboarding).pack()
    builder.row(InlineKeyboardButton(text=texts.REMIND_NO, callback_data=no))
    return builder.as_markup()


def zone_choices(current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for zone in ZONE_CHOICES:
        mark = "✅ " if zone == current else ""
        builder.button(text=mark + texts.ZONE_LABELS[zone], callback_data=TimezoneCb(zone=zone))
    builder.adjust(2)
    return builder.as_markup()


class WordsPageCb(CallbackData, prefix="words"):
    page: Annotated[int, Field(ge=1, le=INT64_MAX)]


class WordDeleteCb(CallbackData, prefix="wdel"):
    """🗑 under /words: the word to delete and the page to redraw."""

    word_id: RowId
    page: Annotated[int, Field(ge=1, le=INT64_MAX)]


class ReviewCb(CallbackData, prefix="rv"):
    """`mark` is the card's schedule when the button was drawn (`words.mark_of`)."""

    action: Annotated[str, _one_of(["show", *texts.GRADE_LABELS])]
    word_id: RowId
    mark: Annotated[int, Field(ge=0, le=INT64_MAX)]


class ResetCb(CallbackData, prefix="reset"):
    action: Annotated[str, _one_of(["conversation", "data", "confirm", "cancel"])]


def words_pages(shown: Iterable[tuple[int, str]], page: int, pages: int) -> InlineKeyboardMarkup:
    """A 🗑 row for each (id, word) on the page, then ◀ ▶ in one row."""
    builder = InlineKeyboardBuilder()
    for word_id, word in shown:
        builder.row(
            InlineKeyboardButton(
                text=texts.DELETE_WORD.format(word=word),
                callback_data=WordDeleteCb(word_id=word_id, page=page).pack(),
            )
        )
    turns = []
    if page > 1:
        turns.append((texts.PREVIOUS, page - 1))
    if page < pages:
        turns.append((texts.NEXT, page + 1))
    builder.row(
        *(
            InlineKeyboardButton(text=label, callback_data=WordsPageCb(page=to).pack())
            for label, to in turns
        )
    )
    return builder.as_markup()


def review_show(word_id: int, mark: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=texts.REVIEW_SHOW, callback_data=ReviewCb(action="show", word_id=word_id, mark=mark)
    )
    return builder.as_markup()


def review_grades(word_id: int, mark: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for name, label in texts.GRADE_LABELS.items():
        builder.button(text=label, callback_data=ReviewCb(action=name, word_id=word_id, mark=mark))
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
    mark = "✅ " if current is None else ""
    builder.row(
        InlineKeyboardButton(
            text=mark + texts.SCENE_OFF, callback_data=ScenarioCb(scene="off").pack()
        )
    )
    return builder.as_markup()


class TranslateCb(CallbackData, prefix="tr"):
    answer_id: RowId


class HearCb(CallbackData, prefix="hear"):
    said_id: RowId


class SaveWordsCb(CallbackData, prefix="addw"):
    answer_id: RowId


def answer_buttons(
    answer_id: int, said_id: int | None, *, save: bool = False
) -> InlineKeyboardMarkup:
    """Under Honzík's answer: 🌐 its translation, 🔊 the corrected sentence if any, and ➕ to
    save the words it suggested (`save`)."""
    builder = InlineKeyboardBuilder()
    builder.button(text=texts.TRANSLATE, callback_data=TranslateCb(answer_id=answer_id))
    if said_id is not None:
        builder.button(text=texts.HEAR, callback_data=HearCb(said_id=said_id))
    if save:
        builder.button(text=texts.SAVE_WORDS, callback_data=SaveWordsCb(answer_id=answer_id))
    builder.adjust(2)
    return builder.as_markup()
