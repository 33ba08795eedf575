"""The bot's own texts in the learner's language and in the chosen character's voice."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage, SetMyCommands
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import texts
from bot.app import build_dispatcher, publish_commands
from bot.cache import Cache
from bot.domain import Character, LearnerSettings, Level, NativeLanguage, Profile, UiLanguage
from bot.handlers.keyboards import OnboardingCb, SettingsCb
from bot.i18n import locale_for, speaking
from bot.i18n.__main__ import main as i18n_command
from bot.i18n.catalog_tools import problems
from bot.services.users import UserService
from tests.conftest import make_config, make_resources
from tests.support import updates
from tests.support.recording import RecordingSession

CYRILLIC = re.compile("[а-яіїєґ]", re.IGNORECASE)


def sent(recorder: RecordingSession) -> list[str]:
    return [request.text for request in recorder.of(SendMessage)]


def ukrainian(user_id: int) -> Any:
    """A new learner whose Telegram app is in Ukrainian: native language uk, a beginner."""
    return updates.learner(user_id, language_code="uk")


def test_every_czech_text_is_translated_in_en_uk_and_ru() -> None:
    """CI's check: a Czech text without an entry in en, uk or ru (or a stale template) fails."""
    assert list(problems()) == []


def test_check_command_says_so_with_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert i18n_command(["check"]) == 0
    assert capsys.readouterr().out == ""


def profile(native: NativeLanguage, level: Level) -> Profile:
    return Profile(
        id=1,
        telegram_id=1,
        username=None,
        first_name=None,
        native_language=native,
        level=level,
        onboarded=True,
    )


@pytest.mark.parametrize(
    ("native", "level", "ui", "locale"),
    [
        (NativeLanguage.UK, Level.BEGINNER, None, "uk"),
        (NativeLanguage.RU, Level.INTERMEDIATE, None, "ru"),
        (NativeLanguage.UK, Level.ADVANCED, None, "cs"),
        (NativeLanguage.UK, Level.NATIVE, None, "cs"),
        (NativeLanguage.UK, Level.BEGINNER, UiLanguage.CZECH, "cs"),
        (NativeLanguage.UK, Level.ADVANCED, UiLanguage.NATIVE, "uk"),
        (NativeLanguage.DE, Level.BEGINNER, None, "en"),  # no German catalog: English
    ],
)
def test_locale_follows_the_setting_else_the_level(
    native: NativeLanguage, level: Level, ui: UiLanguage | None, locale: str
) -> None:
    assert locale_for(profile(native, level), LearnerSettings(ui_language=ui)) == locale


def test_ukrainian_and_russian_count_with_three_forms() -> None:
    with speaking("uk"):
        assert [texts.days_count(n) for n in (1, 3, 5, 21)] == [
            "1 день",
            "3 дні",
            "5 днів",
            "21 день",
        ]
    with speaking("cs"):
        assert [texts.days_count(n) for n in (1, 3, 5)] == ["1 den", "3 dny", "5 dní"]


async def test_ukrainian_beginner_reads_help_in_ukrainian(
    feed: Any, recorder: RecordingSession
) -> None:
    await feed(updates.message("/help", user=ukrainian(801)))

    (text,) = sent(recorder)
    with speaking("uk"):
        assert text == texts.HELP
    assert CYRILLIC.search(text) and text != texts.HELP


async def test_onboarding_asks_the_level_in_the_language_just_chosen(
    feed: Any, recorder: RecordingSession
) -> None:
    anna = updates.learner(802)  # Telegram in English: the first question is in English
    await feed(updates.message("/start", user=anna))
    await feed(updates.callback(OnboardingCb(step="language", value="uk").pack(), user=anna))
    await feed(updates.callback(OnboardingCb(step="level", value="beginner").pack(), user=anna))

    assert sent(recorder)[-1] == texts.ASK_LANGUAGE
    ask_level, ask_reminder = (request.text for request in recorder.of(EditMessageText))
    with speaking("uk"):
        assert (ask_level, ask_reminder) == (texts.ASK_LEVEL, texts.ASK_REMINDER)
        labels = [
            button.text
            for row in recorder.of(EditMessageText)[0].reply_markup.inline_keyboard
            for button in row
        ]
        assert texts.value_label("level", "beginner") in labels
    assert CYRILLIC.search(ask_level)


async def test_error_text_is_in_ukrainian(
    feed: Any, recorder: RecordingSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(UserService, "change", broken)
    await feed(updates.message("/voice off", user=ukrainian(803)))

    (text,) = sent(recorder)
    with speaking("uk"):
        assert text == texts.SOMETHING_WENT_WRONG
    assert CYRILLIC.search(text)


async def test_ui_czech_switches_the_bot_to_czech_at_once(
    feed: Any, recorder: RecordingSession
) -> None:
    olena = ukrainian(804)
    await feed(updates.message("/ui", user=olena))
    await feed(updates.message("/ui czech", user=olena))
    await feed(updates.message("/help", user=olena))
    await feed(updates.message("/ui native", user=olena))

    current, saved, help_text, back = sent(recorder)
    with speaking("uk"):
        assert current.startswith(texts.OPTION_LABELS["ui"])
        assert texts.value_label("ui", "native") in current  # the default, shown as it is
        assert back == texts.SETTING_SAVED.format(
            label=texts.OPTION_LABELS["ui"], value=texts.value_label("ui", "native")
        )
    with speaking("cs"):
        assert saved == texts.SETTING_SAVED.format(label="Jazyk bota", value="🇨🇿 Čeština")
        assert help_text == texts.HELP
    assert help_text.startswith("Jak to funguje:")


async def test_settings_button_for_the_bot_language(feed: Any, recorder: RecordingSession) -> None:
    olena = ukrainian(805)
    await feed(updates.message("/settings", user=olena))
    with speaking("uk"):
        labels = [
            button.text
            for row in recorder.of(SendMessage)[-1].reply_markup.inline_keyboard
            for button in row
        ]
        assert f"{texts.OPTION_LABELS['ui']}: {texts.value_label('ui', 'native')}" in labels

    await feed(updates.callback(SettingsCb(option="ui", value="czech").pack(), user=olena))
    (answer,) = recorder.of(AnswerCallbackQuery)
    with speaking("cs"):
        assert answer.text == texts.SETTING_SAVED.format(label="Jazyk bota", value="🇨🇿 Čeština")
        assert recorder.of(EditMessageText)[-1].text == texts.SETTINGS_TITLE


async def test_novakova_speaks_formally_and_as_a_woman(
    feed: Any, recorder: RecordingSession
) -> None:
    jana = updates.learner(806)
    await feed(updates.message("/ui czech", user=jana))
    await feed(updates.message("/nonsense", user=jana))
    await feed(updates.message("/character novakova", user=jana))
    await feed(updates.message("/nonsense", user=jana))
    await feed(updates.message("/start", user=jana))

    honzik, novakova = sent(recorder)[1], sent(recorder)[3]
    assert honzik == "Tenhle příkaz neznám. 🤔 Zkus /help."
    assert novakova == "Tenhle příkaz neznám. 🤔 Zkuste /help."
    welcome = sent(recorder)[4]
    assert "Já jsem paní Nováková" in welcome and "Honzík" not in welcome
    with speaking("cs", Character.NOVAKOVA):
        assert texts.DIDNT_CATCH.startswith("Promiňte, nic jsem neslyšela.")
        assert sent(recorder)[5] == texts.ASK_LANGUAGE


async def test_novakova_in_ukrainian_uses_her_own_translation(
    feed: Any, recorder: RecordingSession
) -> None:
    olena = ukrainian(807)
    await feed(updates.message("/character novakova", user=olena))
    await feed(updates.message("/nonsense", user=olena))

    with speaking("uk", Character.NOVAKOVA):
        assert sent(recorder)[-1] == texts.UNKNOWN_COMMAND
    with speaking("uk", Character.HONZIK):
        assert sent(recorder)[-1] != texts.UNKNOWN_COMMAND


async def test_command_menu_is_published_per_language(bot: Bot, recorder: RecordingSession) -> None:
    await publish_commands(bot)

    menus = {request.language_code: request.commands for request in recorder.of(SetMyCommands)}
    assert {None, "en", "uk", "ru"} <= set(menus)
    assert {c.command: c.description for c in menus[None]}["help"] == "Nápověda"
    assert {c.command: c.description for c in menus["en"]}["help"] == "Help"


async def test_rate_limit_notice_is_in_the_apps_language(
    tmp_path: Path, engine: AsyncEngine, cache: Cache, bot: Bot, recorder: RecordingSession
) -> None:
    """Sent before the learner is loaded, so in the Telegram app's language."""
    dp = build_dispatcher(
        make_resources(make_config(tmp_path, rate_limit_per_minute=1), engine, cache)
    )
    olena = ukrainian(808)
    for _ in range(2):
        await dp.feed_update(bot, updates.message("/help", user=olena))

    with speaking("uk"):
        assert sent(recorder) == [texts.HELP, texts.RATE_LIMITED]
