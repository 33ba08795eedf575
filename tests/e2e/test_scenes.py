"""A role-play scene end to end: /scenario, a button, the opening line with its voice, the
learner's answer in the scene, back to free chat, and the scene counted in /stats."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio

from bot import texts
from bot.ai.schema import HonzikReply
from tests.e2e.harness import BotProcess, Fleet, exchange, same_text, texts_of
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

SPAWN_EARLY = ("_scenes",)


def echo_answers(request: dict[str, Any]) -> dict[str, Any] | None:
    """Honzík's answers echo the learner; the opening line is generated from its schema."""
    if request["response_format"]["json_schema"]["name"] != HonzikReply.__name__:
        return None
    said = request["messages"][-1]["content"]
    return {
        "reply": f"Rozumím: {said}",
        "corrected_text": said,
        "mistakes": [],
        "score": 90,
        "tip": None,
        "new_words": [],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _scenes(module_fleet: Fleet, module_oa: FakeOpenAI) -> BotProcess:
    module_oa.script_chat(echo_answers)
    return module_fleet.spawn("scenes")


async def test_a_scene_from_the_button_to_stats(
    _scenes: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
) -> None:
    await _scenes.ready()
    tg, user = module_tg, 6001
    tg.add_user(user, "Olga")

    (menu,) = await exchange(tg, user, lambda: tg.send_command(user, "scenario"))
    assert same_text(menu.result["text"], texts.SCENARIO_MENU)
    offered = [b for row in menu.params["reply_markup"]["inline_keyboard"] for b in row]
    assert len(offered) == 9

    chats = len(module_oa.calls("chat"))
    mark = tg.mark()
    tg.press_button(user, None, "scn:pub")
    (opening,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user, timeout=10)
    (voice,) = await tg.wait_for_method("sendVoice", since=mark, chat_id=user, timeout=10)
    assert opening.seq < voice.seq
    (edited,) = await tg.wait_for_method("editMessageText", since=mark, chat_id=user)
    pub = texts.SCENE_LABELS["pub"]
    assert same_text(edited.result["text"], texts.SCENE_STARTED.format(scene=pub))
    (call,) = module_oa.calls("chat")[chats:]
    line = json.loads(call.response["choices"][0]["message"]["content"])["reply"]
    assert same_text(opening.result["text"], line)

    answer = "Jedno pivo, prosím."
    await exchange(tg, user, lambda: tg.send_text(user, answer))
    request = module_oa.calls("chat")[-1].body["messages"]
    assert {"role": "assistant", "content": line} in request  # the learner answered the line

    (ended,) = await exchange(tg, user, lambda: tg.send_command(user, "scenario", "off"))
    assert same_text(ended.result["text"], texts.SCENE_ENDED)

    stats = texts_of(await exchange(tg, user, lambda: tg.send_command(user, "stats")))
    assert texts.STATS_SCENES.format(count=1, total=8) in stats[0]
