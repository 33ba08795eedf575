"""Running the bot in production, end to end: webhook mode (secret, setWebhook, duplicates),
/metrics, the operators' cache commands, and SIGTERM while an update is being handled.

One webhook-mode bot (`hook`, ADMIN_IDS=ADMIN) serves the module; every update reaches it by
a POST from the Telegram stand-in, as from Telegram. Honzík is scripted to echo what the
learner said, so each answer names the message it answers. Each test uses its own learners.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot import texts
from bot.cache.keys import CONTENT_FAMILIES, KEY_ROOTS, Family
from bot.handlers.keyboards import ResetCb
from tests.e2e._webhook import (
    SECRET,
    WEBHOOK_PATH,
    add_webhook_bot,
    deliver,
    echo_reply,
    echoed,
    handled,
    hook_exchange,
    hook_url,
    ready_webhook,
    scrape,
)
from tests.e2e.harness import (
    BotProcess,
    Fleet,
    RedisServer,
    Stack,
    assert_voice_answered,
    eventually,
    exchange,
    free_port,
    same_text,
    texts_of,
)
from tests.standins.openai import AUDIO_DIR, FakeOpenAI
from tests.standins.telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ADMIN = 4900
NO_REDIS = "redis://127.0.0.1:9/0"
ON_TEXT = "bot.handlers.conversation.on_text"
CACHE_KEY = re.compile(rf"^({'|'.join(KEY_ROOTS)}):")
FOREIGN = {
    "otherapp:x": b"keep me",
    "otherapp:user:1": b"not ours: user: is not at the start",
    "userdata": b"no colon after user",
    "fsm:123456789:4901:4901:state": b"Form:name",
}
"""Keys another application keeps in the same Redis; /cache_flush must leave them alone."""

CONTENT_ROOTS = tuple(f"{family.value}:" for family in CONTENT_FAMILIES)

SPAWN_EARLY = ("_hook", "_sending", "_no_secret", "_empty_secret")


# ------------------------------------------------------------------ bots


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _hook(module_fleet: Fleet, module_oa: FakeOpenAI) -> BotProcess:
    module_oa.script_chat(echo_reply)
    return add_webhook_bot(module_fleet, "hook", ADMIN_IDS=str(ADMIN)).spawn()


@pytest_asyncio.fixture(loop_scope="module")
async def hook(_hook: BotProcess, module_tg: FakeTelegram) -> BotProcess:
    return await ready_webhook(module_tg, _hook)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def _sending(
    tmp_path_factory: pytest.TempPathFactory, module_oa: FakeOpenAI
) -> AsyncIterator[Stack]:
    """A second webhook bot with its own Telegram stand-in and Redis, for a SIGTERM test."""
    async with Stack(tmp_path_factory.mktemp("sending"), oa=module_oa) as stack:
        add_webhook_bot(stack.fleet, "sending").spawn()
        yield stack


def _spawn_misconfigured(
    tmp_path_factory: pytest.TempPathFactory, name: str, secret: str | None
) -> BotProcess:
    # From an empty directory, so no `.env` can supply a secret.
    workdir = tmp_path_factory.mktemp(name)
    bot = BotProcess(
        workdir,
        tg=None,
        oa=None,
        redis_url=NO_REDIS,
        name=name,
        cwd=workdir,
        env={"WEBHOOK_URL": f"https://mluv.example.com{WEBHOOK_PATH}", "WEBHOOK_SECRET": secret},
    )
    return bot.spawn()


@pytest.fixture(scope="module")
def _no_secret(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    bot = _spawn_misconfigured(tmp_path_factory, "nosecret", None)
    yield bot
    bot.kill()


@pytest.fixture(scope="module")
def _empty_secret(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    """`WEBHOOK_SECRET=` as left in a copied .env.example."""
    bot = _spawn_misconfigured(tmp_path_factory, "emptysecret", "")
    yield bot
    bot.kill()


# ------------------------------------------------------------------ helpers


async def text_turn(tg: FakeTelegram, bot: BotProcess, user: int, words: str) -> str:
    """The learner writes `words`; returns Honzík's text once his voice has arrived too."""
    calls = await hook_exchange(tg, bot, user, lambda: tg.send_text(user, words))
    await tg.wait_for_method("sendVoice", since=calls[0].seq, chat_id=user, timeout=10)
    return calls[0].result["text"]


async def command(tg: FakeTelegram, bot: BotProcess, user: int, name: str, args: str = "") -> str:
    calls = await hook_exchange(tg, bot, user, lambda: tg.send_command(user, name, args))
    return calls[0].result["text"]


async def settled_keys(redis: RedisServer) -> set[str]:
    """Every key, once no chat lock is held (so no handler is still writing to the cache)."""

    async def check() -> set[str] | None:
        keys = set(await redis.keys())
        return None if any(k.startswith("chat:") for k in keys) else keys

    return await eventually(check, timeout=10, what="every chat lock to be released")


async def seed_foreign_keys(redis: RedisServer) -> None:
    async with redis.client() as client:
        for key, value in FOREIGN.items():
            await client.set(key, value)


async def foreign_values(redis: RedisServer) -> dict[str, bytes | None]:
    async with redis.client() as client:
        return {key: await client.get(key) for key in FOREIGN}


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize("fixture", ["_no_secret", "_empty_secret"])
async def test_webhook_mode_refuses_to_start_without_a_secret(
    fixture: str, request: pytest.FixtureRequest
):
    bot: BotProcess = request.getfixturevalue(fixture)
    assert await bot.wait_exit(60) != 0
    lines = [line for line in bot.log_text().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "WEBHOOK_SECRET" in lines[0]
    assert "Traceback" not in lines[0]


# ------------------------------------------------------------------ webhook mode


async def test_registers_its_webhook_with_the_secret_and_keeps_pending_updates(
    hook: BotProcess, module_tg: FakeTelegram
):
    calls = await module_tg.wait_for_method("setWebhook", url=hook_url(hook))
    params = calls[-1].params
    assert params["url"] == f"http://127.0.0.1:{hook.port}{WEBHOOK_PATH}"
    assert params["secret_token"] == SECRET
    assert params.get("drop_pending_updates") in (None, False)
    assert module_tg.webhook["url"] == hook_url(hook)
    # Pending updates are never dropped, and a webhook bot does not poll.
    methods = {c.method for c in module_tg.calls}
    assert "deleteWebhook" not in methods
    assert "getUpdates" not in methods


async def test_webhook_rejects_a_wrong_or_missing_secret(
    hook: BotProcess, module_tg: FakeTelegram, module_redis: RedisServer
):
    tg, user, bot_id = module_tg, 4101, module_tg.bot_user["id"]
    wrong = tg.send_text(user, "Píšu se špatným heslem.")
    missing = tg.send_text(user, "Píšu úplně bez hesla.")
    assert await deliver(tg, hook, wrong, secret="not_the_secret") in (401, 403)
    assert await deliver(tg, hook, missing, secret="") in (401, 403)

    answer = await text_turn(tg, hook, user, "Píšu se správným heslem.")
    assert echoed(answer) == "Píšu se správným heslem."
    assert [echoed(t) for t in tg.sent_messages(user)] == ["Píšu se správným heslem."]
    # The rejected updates never reached the dispatcher: nothing claimed them.
    assert await module_redis.keys(f"update:{bot_id}:{wrong}") == []
    assert await module_redis.keys(f"update:{bot_id}:{missing}") == []


async def test_an_update_delivered_three_times_is_answered_once(
    hook: BotProcess, module_tg: FakeTelegram
):
    tg, user = module_tg, 4102
    before, _ = await handled([hook], ON_TEXT)
    mark = tg.mark()
    update = tg.send_text(user, "Tohle Telegram doručí třikrát.")
    first = await deliver(tg, hook, update)
    again = await asyncio.gather(deliver(tg, hook, update), deliver(tg, hook, update))
    assert [first, *again] == [200, 200, 200]
    (message,) = await tg.wait_for_method("sendMessage", since=mark, chat_id=user)
    await tg.wait_for_method("sendVoice", since=mark, chat_id=user, timeout=10)

    # A later message of the same learner is ordered after any copy that could still run.
    assert echoed(await text_turn(tg, hook, user, "A tohle jen jednou.")) == "A tohle jen jednou."
    assert [echoed(t) for t in tg.sent_messages(user)] == [
        "Tohle Telegram doručí třikrát.",
        "A tohle jen jednou.",
    ]
    assert len(tg.sent_voices(user)) == 2
    done, _ = await eventually(lambda: _idle(hook, ON_TEXT), timeout=5, what="no update in flight")
    assert done - before == 2
    assert echoed(message.result["text"]) == "Tohle Telegram doručí třikrát."


async def _idle(bot: BotProcess, *handlers: str) -> tuple[float, float] | None:
    done, in_flight = await handled([bot], *handlers)
    return (done, in_flight) if in_flight == 0 else None


# ------------------------------------------------------------------ metrics


async def test_metrics_show_cache_hits_and_misses_by_family(
    hook: BotProcess, module_tg: FakeTelegram
):
    tg, user = module_tg, 4103
    for _ in range(2):  # the second update reads the learner from the cache
        assert same_text(await command(tg, hook, user, "help"), texts.HELP)

    metrics = await scrape(hook)
    assert metrics.status == 200
    assert metrics.content_type.startswith("text/plain")
    assert 'mluv_cache_hits_total{family="user"}' in metrics.text
    hits = metrics.by_label("mluv_cache_hits_total", "family")
    misses = metrics.by_label("mluv_cache_misses_total", "family")
    families = {family.value for family in Family}
    assert set(hits) == families, hits
    assert set(misses) == families, misses
    assert hits["user"] > 0
    assert misses["user"] > 0  # every learner's first update


# ------------------------------------------------------------------ operator commands


async def test_cache_flush_by_a_learner_changes_nothing(
    hook: BotProcess, module_tg: FakeTelegram, module_redis: RedisServer
):
    tg, user, bot_id = module_tg, 4901, module_tg.bot_user["id"]
    await text_turn(tg, hook, user, "Ahoj, já nejsem správce.")
    await seed_foreign_keys(module_redis)
    before = await settled_keys(module_redis)
    assert any(CACHE_KEY.match(key) for key in before)

    flush_update = tg.send_command(user, "cache_flush")
    (refusal,) = texts_of(await hook_exchange(tg, hook, user, lambda: flush_update))
    stats_update = tg.send_command(user, "cache_stats")
    (refusal2,) = texts_of(await hook_exchange(tg, hook, user, lambda: stats_update))
    after = await settled_keys(module_redis)

    assert same_text(refusal, texts.ADMIN_ONLY)
    assert same_text(refusal2, texts.ADMIN_ONLY)
    assert before <= after, f"keys gone: {sorted(before - after)}"
    # Only what handling any update writes: its claim and the learner's rate-limit counter.
    new = after - before
    expected = {f"update:{bot_id}:{flush_update}", f"update:{bot_id}:{stats_update}"}
    assert expected <= new
    assert all(k in expected or k.startswith((f"ratelimit:{user}:", "metrics:")) for k in new), new
    assert await foreign_values(module_redis) == FOREIGN


async def test_cache_flush_by_an_admin_deletes_every_cache_key_and_nothing_else(
    hook: BotProcess, module_tg: FakeTelegram, module_redis: RedisServer
):
    tg, learner = module_tg, 4902
    # Fill every family: a text and a voice turn (user, history, honzik, tts, whisper,
    # stats versions), its 🌐 (translate), /stats (daily figures, chart), /save and /words.
    turn = await hook_exchange(
        tg, hook, learner, lambda: tg.send_text(learner, "Dobrý den, chci se učit česky.")
    )
    await tg.wait_for_method("sendVoice", since=turn[0].seq, chat_id=learner, timeout=10)
    (translate,) = [
        button["callback_data"]
        for row in turn[0].params["reply_markup"]["inline_keyboard"]
        for button in row
        if button["callback_data"].startswith("tr:")
    ]
    await hook_exchange(
        tg, hook, learner, lambda: tg.press_button(learner, turn[0].result, translate)
    )
    ogg = (AUDIO_DIR / "dobry_den.ogg").read_bytes()
    mark = tg.mark()
    await hook_exchange(tg, hook, learner, lambda: tg.send_voice(learner, ogg), method="sendVoice")
    await hook_exchange(tg, hook, learner, lambda: tg.send_command(learner, "stats"))
    await tg.wait_for_method("sendPhoto", since=mark, chat_id=learner, timeout=15)
    await command(tg, hook, learner, "save", "pes - dog")
    await command(tg, hook, learner, "words")
    assert same_text(await command(tg, hook, ADMIN, "help"), texts.HELP)
    await seed_foreign_keys(module_redis)

    before = await settled_keys(module_redis)
    cached = {key for key in before if CACHE_KEY.match(key)}
    roots = {key.split(":", 1)[0] for key in cached}
    assert roots == set(KEY_ROOTS), f"families without keys: {set(KEY_ROOTS) - roots}"
    kept = before - cached
    assert any(k.startswith("update:") for k in kept)
    assert any(k.startswith("ratelimit:") for k in kept)

    answer = await command(tg, hook, ADMIN, "cache_flush")
    after = await settled_keys(module_redis)

    assert same_text(answer, texts.FLUSHED.format(count=len(cached), families=", ".join(KEY_ROOTS)))
    assert [key for key in after if CACHE_KEY.match(key)] == []
    assert kept <= after, f"non-cache keys gone: {sorted(kept - after)}"
    assert await foreign_values(module_redis) == FOREIGN

    # The bot goes on working from the database and refills the cache.
    assert echoed(await text_turn(tg, hook, learner, "Jsem zpátky.")) == "Jsem zpátky."
    assert await module_redis.keys(f"user:{learner}:*")


async def test_cache_stats_reports_every_family(hook: BotProcess, module_tg: FakeTelegram):
    answer = await command(module_tg, hook, ADMIN, "cache_stats")
    lines = answer.splitlines()
    assert same_text(lines[0], texts.CACHE_STATS_TITLE)
    # The admin reads English, as every default test learner (see tests/conftest.py).
    line = re.compile(r"^(\w+): (\d+) hits / (\d+) misses \((\d+) %\), keys: (\S+)$")
    figures = {m[1]: m for m in map(line.match, lines[1:]) if m}
    assert set(figures) == {family.value for family in Family}, lines
    assert int(figures["user"][2]) > 0, "learners were read from the cache"
    assert int(figures["user"][3]) > 0
    assert figures["history"][5] == "–"  # history keys are counted under `user`
    assert any(line.startswith(texts.CACHE_STATS_MEMORY.format(memory="")) for line in lines)
    assert any(line.startswith(texts.CACHE_STATS_SAVED.split("{")[0]) for line in lines)


# ------------------------------------------------------------------ delete all my data


async def content_keys(redis: RedisServer) -> set[str]:
    """The cache entries made from what learners said (their locks aside)."""
    found = await settled_keys(redis)
    return {k for k in found if k.startswith(CONTENT_ROOTS) and not k.endswith(":lock")}


async def test_delete_all_my_data_leaves_nothing_the_learner_said_in_redis(
    hook: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI, module_redis: RedisServer
):
    tg, anna, bob = module_tg, 4601, 4602
    ogg = (AUDIO_DIR / "tts_reply.ogg").read_bytes()
    module_oa.add_transcript(ogg, "Jmenuji se Jana Nováková, moje číslo je 777 123 456.")
    transcript = f"whisper:{hashlib.sha256(ogg).hexdigest()}"
    before = await content_keys(module_redis)
    await hook_exchange(tg, hook, anna, lambda: tg.send_voice(anna, ogg), method="sendVoice")
    await text_turn(tg, hook, anna, "Bydlím v Brně na Masarykově 12.")
    annas = await content_keys(module_redis) - before
    await text_turn(tg, hook, bob, "Já jsem Bob a mám rád pivo.")
    bobs = await content_keys(module_redis) - before - annas
    assert transcript in annas
    assert {k.split(":")[0] for k in annas} == {"whisper", "honzik", "tts"}
    assert {k.split(":")[0] for k in bobs} == {"honzik", "tts"}

    await command(tg, hook, anna, "reset")
    data, confirm = ResetCb(action="data").pack(), ResetCb(action="confirm").pack()
    await hook_exchange(
        tg, hook, anna, lambda: tg.press_button(anna, None, data), method="editMessageText"
    )
    (done,) = await hook_exchange(
        tg, hook, anna, lambda: tg.press_button(anna, None, confirm), method="editMessageText"
    )
    assert same_text(done.result["text"], texts.RESET_DATA_DONE)

    left = await content_keys(module_redis)
    assert not left & annas, f"still cached from what Anna said: {sorted(left & annas)}"
    assert bobs <= left
    assert await module_redis.keys(f"user:{anna}:content") == []
    assert await module_redis.keys(f"user:{bob}:content") == [f"user:{bob}:content"]


# ------------------------------------------------------------------ last: stops the shared bot


async def test_sigterm_during_a_voice_round_trip_finishes_it(
    hook: BotProcess, module_tg: FakeTelegram, module_oa: FakeOpenAI
):
    tg, oa, user = module_tg, module_oa, 4201
    first_chat = len(oa.calls("chat"))
    oa.delay["chat"] = 2
    try:
        mark = tg.mark()
        update = tg.send_voice(user, (AUDIO_DIR / "ahoj_jak_se_mas.ogg").read_bytes())
        # Telegram is answered once the update is handled, so the delivery is still open...
        delivery = asyncio.create_task(deliver(tg, hook, update))
        # ...and Honzík is still thinking (the completion takes 2 s) when the signal arrives.
        await eventually(
            lambda: oa.calls("chat")[first_chat:] or None, timeout=10, what="the completion"
        )
        hook.send_signal(signal.SIGTERM)

        answers: list[object] = []

        async def refused() -> bool:
            try:
                answers.append(await deliver(tg, hook, update))
            except (aiohttp.ClientError, OSError) as exc:
                answers.append(exc)
                return isinstance(exc, aiohttp.ClientConnectionError | OSError)
            return False

        # It stops accepting at once, while the update it took is still being handled.
        await eventually(
            refused,
            timeout=5,
            what=lambda: f"the webhook port to refuse connections; got {answers[-3:]}",
        )
        assert not tg.sent_messages(user), f"stopped accepting only after answering: {answers}"
        assert await delivery == 200  # the update it took is answered before the 200
        code = await hook.wait_exit(30)
    finally:
        oa.delay.pop("chat", None)

    await assert_voice_answered(tg, user, mark)
    assert code == 0
    hook.assert_no_traceback()
    assert "stopped" in hook.log_text().splitlines()[-1]
    # The webhook stays registered, so Telegram keeps updates for the next replica.
    assert not [c for c in tg.calls[mark:] if c.method == "deleteWebhook"]
    assert tg.webhook.get("url") == hook_url(hook)


# ------------------------------------------------------------------ a bot of its own


class Aborted(AssertionError):
    """The update taken before SIGTERM was not finished (anything else fails the test)."""


async def test_sigterm_while_a_reply_is_on_its_way_to_telegram_finishes_the_update(
    _sending: Stack,
):
    """SIGTERM arrives while the bot's sendMessage is still being answered by Telegram."""
    tg, user = _sending.tg, 4301
    bot = await ready_webhook(tg, _sending.fleet.bots[0])
    tg.delay["sendMessage"] = 1.5
    try:
        mark = tg.mark()
        update = tg.send_text(user, "Ještě mi odpověz, než skončíš.")
        assert await deliver(tg, bot, update) == 200
        await tg.wait_for(
            lambda c: c.method == "sendMessage" and c.params.get("chat_id") == user,
            timeout=10,
            since=mark,
            pending=True,
        )
        bot.send_signal(signal.SIGTERM)
        code = await bot.wait_exit(30)
    finally:
        tg.delay.pop("sendMessage", None)

    assert code == 0
    # The bot has exited: every call it made has been recorded.
    sent = [echoed(text) for text in tg.sent_messages(user)]
    voices = tg.sent_voices(user)
    if sent != ["Ještě mi odpověz, než skončíš."] or len(voices) != 1:
        raise Aborted(f"answers {sent}, {len(voices)} voice(s); {bot.describe()}")
    bot.assert_no_traceback()


# ------------------------------------------------------------------ start-up


async def test_waits_for_an_unreachable_telegram_with_health_up_then_polls(
    tmp_path: Path, oa: FakeOpenAI, redis_server: RedisServer
):
    """Telegram down at start-up: /health serves and says so; once it is back, the bot polls."""
    oa.script_chat(echo_reply)
    tg, port, user = FakeTelegram(), free_port(), 4401
    bot = BotProcess(
        tmp_path,
        tg=None,
        oa=oa,
        redis_url=redis_server.url(),
        name="unreachable",
        env={"TELEGRAM_API_URL": f"http://127.0.0.1:{port}", "BOT_TOKEN": tg.token},
    ).spawn()
    try:
        status, body = await eventually(
            lambda: _health_if(bot, lambda body: body.get("telegram") == "unreachable"),
            timeout=60,
            what=lambda: f"/health to report Telegram unreachable: {bot.describe()}",
        )
        assert status == 200
        assert {"status", "service", "version", "environment", "redis", "database"} <= set(body)
        await asyncio.sleep(1.5)  # a retry or two later, it is still up and waiting
        assert bot.running
        assert (await bot.health())[1].get("telegram") == "unreachable"

        await tg.start(port)
        await tg.wait_for(lambda call: call.method == "getUpdates", 30, pending=True)
        await bot.wait_health(lambda status, body: status == 200 and "telegram" not in body)
        (answer,) = await exchange(tg, user, lambda: tg.send_text(user, "Už jsi tady?"))
        assert echoed(answer.result["text"]) == "Už jsi tady?"
        assert await bot.stop() == 0
    finally:
        bot.kill()
        await tg.stop()
    log = bot.log_text()
    assert "Traceback" not in log
    assert "telegram unreachable" in log
    assert tg.token not in log


async def test_sigterm_while_waiting_for_telegram_stops_cleanly(
    tmp_path: Path, redis_server: RedisServer
):
    bot = BotProcess(
        tmp_path, tg=None, oa=None, redis_url=redis_server.url(), name="never_reached"
    ).spawn()
    await eventually(
        lambda: _health_if(bot, lambda body: body.get("telegram") == "unreachable"),
        timeout=60,
        what=lambda: f"/health to report Telegram unreachable: {bot.describe()}",
    )
    assert await bot.stop(timeout=10) == 0
    bot.assert_no_traceback()
    assert "stopped" in bot.log_text().splitlines()[-1]


async def _health_if(
    bot: BotProcess, wanted: Callable[[dict[str, Any]], bool]
) -> tuple[int, dict[str, Any]] | None:
    """/health's answer if it is up and its body is `wanted`; None while starting."""
    assert bot.running, bot.describe()
    try:
        answer = await bot.health(timeout=2)
    except (aiohttp.ClientError, TimeoutError):
        return None
    return answer if wanted(answer[1]) else None


async def test_a_rejected_token_exits_1_with_one_line_and_warns_of_a_missing_openai_key(
    tmp_path: Path, tg: FakeTelegram
):
    bot = BotProcess(
        tmp_path,
        tg=tg,
        oa=None,
        redis_url=NO_REDIS,
        name="revoked",
        env={"BOT_TOKEN": "123456789:RevokedTokenRevokedToken", "OPENAI_API_KEY": ""},
    ).spawn()
    assert await bot.wait_exit(60) == 1
    lines = bot.log_text().splitlines()
    assert "Traceback" not in bot.log_text()
    rejected = [line for line in lines if "BOT_TOKEN" in line]
    assert len(rejected) == 1 and "401" in rejected[0], lines
    openai_key = [line for line in lines if "OPENAI_API_KEY" in line]
    assert len(openai_key) == 1 and "WARNING" in openai_key[0], lines
    assert "RevokedToken" not in bot.log_text()
