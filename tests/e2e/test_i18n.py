"""The bot's own texts in the learner's language, end to end: `python -m bot` compiles the
catalogs at start-up and a Ukrainian beginner reads it in Ukrainian until `/ui czech`."""

from __future__ import annotations

import pytest
import pytest_asyncio

from bot import texts
from bot.domain import Character
from bot.handlers.keyboards import OnboardingCb
from bot.i18n import speaking
from tests.e2e.harness import BotProcess, Fleet, exchange, same_text, texts_of
from tests.standins.telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _i18n(module_fleet: Fleet) -> BotProcess:
    return module_fleet.spawn("i18n")


async def test_ukrainian_beginner_then_czech_then_novakova(
    _i18n: BotProcess, module_tg: FakeTelegram
) -> None:
    await _i18n.ready()
    tg, olena = module_tg, 4001
    tg.add_user(olena, "Olena", language_code="uk")

    (help_uk,) = texts_of(await exchange(tg, olena, lambda: tg.send_command(olena, "help")))
    welcome, question = texts_of(
        await exchange(tg, olena, lambda: tg.send_command(olena, "start"), count=2)
    )
    (level,) = await exchange(
        tg,
        olena,
        lambda: tg.press_button(olena, None, OnboardingCb(step="language", value="uk").pack()),
        method="editMessageText",
    )
    with speaking("uk"):
        assert same_text(help_uk, texts.HELP)
        assert same_text(welcome, texts.welcome("Olena"))
        assert same_text(question, texts.ASK_LANGUAGE)
        assert same_text(level.result["text"], texts.ASK_LEVEL)
    assert not same_text(help_uk, texts.HELP)  # the tests read English: this is Ukrainian

    (saved,) = texts_of(await exchange(tg, olena, lambda: tg.send_command(olena, "ui", "czech")))
    (help_cs,) = texts_of(await exchange(tg, olena, lambda: tg.send_command(olena, "help")))
    texts_of(await exchange(tg, olena, lambda: tg.send_command(olena, "character", "novakova")))
    (formal,) = texts_of(await exchange(tg, olena, lambda: tg.send_command(olena, "nonsense")))
    (help_her,) = texts_of(await exchange(tg, olena, lambda: tg.send_command(olena, "help")))
    with speaking("cs"):
        assert same_text(help_cs, texts.HELP)
    with speaking("cs", Character.NOVAKOVA):
        assert same_text(help_her, texts.HELP)
        assert same_text(formal, texts.UNKNOWN_COMMAND)
    assert saved.startswith("Hotovo! Jazyk bota:")
    assert "Honzík odpoví" in help_cs and "Paní Nováková odpoví" in help_her
    assert formal.endswith("Zkuste /help.")
