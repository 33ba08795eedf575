"""The webhook path: a warm /help POSTed to the running bot, as Telegram delivers it."""

from __future__ import annotations

import importlib.util

from bench._common import RedisWire, Result, describe_trips, round_trips
from bench._live import live_bot

TARGET = "warm /help, webhook: ≤ 2 Redis round trips"
LEARNER = 7101


def available() -> bool:
    """Whether this tree has the webhook runtime (`bot/runtime/webhook.py`)."""
    return importlib.util.find_spec("bot.runtime.webhook") is not None


async def help_trips(repeats: int) -> Result:
    """Round trips of one webhook request: the bot answers Telegram once it has handled the
    update, so everything the update costs happens within the POST."""
    if not available():
        return Result(TARGET, "not available: this tree has no bot/runtime/webhook.py", None)
    samples: list[list[list[str]]] = []
    async with live_bot(webhook=True) as live:
        assert live.hook_url is not None
        with RedisWire() as wire:
            for _ in range(1 + repeats):
                update_id = live.tg.send_command(LEARNER, "help")
                since = live.tg.mark()
                wire.take()
                status = await live.tg.deliver_webhook(live.hook_url, update_id)
                samples.append(wire.take())
                if status != 200:
                    raise RuntimeError(f"the webhook answered {status} to a /help")
                await live.tg.wait_for_method("sendMessage", since=since, chat_id=LEARNER)
    warm = sorted(samples[1:], key=len)
    typical = warm[len(warm) // 2]
    return Result(
        TARGET,
        f"{round_trips(typical)} (median of {len(warm)}; each: "
        + ", ".join(str(len(t)) for t in samples[1:])
        + ")",
        len(typical) <= 2,
        "round trips in order: " + describe_trips(typical),
    )
