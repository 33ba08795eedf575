"""The buttons under Honzík's answer end to end: 🌐 shows the translation, and a second
learner's 🌐 on the same answer costs no OpenAI call; 🔊 speaks the corrected sentence."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from bot import texts
from tests.e2e.harness import BotProcess, Fleet, exchange, same_text
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SPAWN_EARLY = ("_buttons",)
TRANSLATED = "Hi! I'm fine, thanks."


def answers(request: dict[str, Any]) -> Any:
    """One correction for every message; a plain completion is the translation."""
    if "response_format" not in request:
        return TRANSLATED
    return {
        "reply": "Ahoj! Mám se dobře.",
        "corrected_text": "Jak se máš?",
        "mistakes": [
            {
                "original": "mas",
                "corrected": "máš",
                "explanation": "Missing diacritics.",
                "category": "spelling",
            }
        ],
        "score": 70,
        "tip": None,
        "new_words": [],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _buttons(module_fleet: Fleet, module_oa: FakeOpenAI) -> BotProcess:
    module_oa.script_chat(answers)
    return module_fleet.spawn("buttons")


def translations(oa: FakeOpenAI) -> int:
    return sum("response_format" not in call.body for call in oa.calls("chat"))


async def test_translate_and_hear_from_the_answers_buttons(
    _buttons: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
) -> None:
    await _buttons.ready()
    tg = module_tg
    for user in (7001, 7002):
        tg.add_user(user, "Ola")
        sent = await exchange(tg, user, lambda u=user: tg.send_text(u, "Jak se mas?"))
        answer = next(call for call in sent if call.method == "sendMessage")
        assert texts.CORRECTED.format(text="Jak se máš?") in answer.result["text"]
        data = {
            b["callback_data"].split(":")[0]: b["callback_data"]
            for row in answer.params["reply_markup"]["inline_keyboard"]
            for b in row
        }
        mark = tg.mark()
        tg.press_button(user, answer.result, data["tr"])
        (shown,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user, timeout=10)
        assert same_text(shown.result["text"], texts.TRANSLATION.format(text=TRANSLATED))
        assert translations(module_oa) == 1, "one translation call for both learners"

    mark = tg.mark()
    tg.press_button(7002, None, data["hear"])
    (voice,) = await tg.wait_for_method("sendVoice", since=mark, chat_id=7002, timeout=10)
    assert voice.ok
    assert "Jak se máš?" in [call.body["input"] for call in module_oa.calls("speech")]
