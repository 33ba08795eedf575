"""Shared helpers for end-to-end tests of webhook mode (test_operations, test_replicas).

A webhook bot is a `BotProcess` whose WEBHOOK_URL points at its own port, so the Telegram
stand-in can POST updates straight to it with `deliver_webhook`. Tests build updates with
the stand-in's `send_*` helpers (which return the update id) and deliver that id: the
update then never sits in the getUpdates queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import BotProcess, Fleet, free_port
from tests.standins.telegram import FakeTelegram, TelegramCall

WEBHOOK_PATH = "/telegram/webhook"
SECRET = "s3cret_token"
ECHO = "Rozumím, říkáš: "
"""How the scripted Honzík starts every reply: the learner's words follow."""


def webhook_env(port: int, secret: str | None = SECRET) -> dict[str, str | None]:
    return {"WEBHOOK_URL": f"http://127.0.0.1:{port}{WEBHOOK_PATH}", "WEBHOOK_SECRET": secret}


def add_webhook_bot(fleet: Fleet, name: str, **env: str | None) -> BotProcess:
    """A not yet started webhook-mode bot of `fleet`, on a port of its own.

    It counts as ready once /health answers and the stand-in has seen a setWebhook call.
    """
    port = free_port()
    return fleet.add(name, port=port, ready_method="setWebhook", env={**webhook_env(port), **env})


def hook_url(bot: BotProcess) -> str:
    return bot.env["WEBHOOK_URL"]


async def ready_webhook(tg: FakeTelegram, bot: BotProcess) -> BotProcess:
    """Wait until `bot` is up and has registered its own URL (not just any replica's)."""
    await bot.ready()
    await tg.wait_for_method("setWebhook", since=0, timeout=30, url=hook_url(bot))
    return bot


async def deliver(
    tg: FakeTelegram, bot: BotProcess, update_id: int, secret: str | None = SECRET
) -> int:
    """POST a built update to the bot's webhook; the HTTP status ("" as secret: no header)."""
    return await tg.deliver_webhook(hook_url(bot), update_id, secret_token=secret)


async def hook_exchange(
    tg: FakeTelegram,
    bot: BotProcess,
    chat_id: int,
    act: Callable[[], int],
    *,
    method: str = "sendMessage",
    count: int = 1,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> list[TelegramCall]:
    """Build an update with `act`, deliver it by webhook, wait for `count` `method` calls."""
    mark = tg.mark()
    status = await deliver(tg, bot, act())
    assert status == 200, f"webhook answered {status}"
    return await tg.wait_for_method(method, count, timeout, since=mark, chat_id=chat_id)


def echo_reply(request: dict[str, Any]) -> dict[str, Any]:
    """Honzík's answer (Structured Outputs) repeating what the learner said last."""
    said = request["messages"][-1]["content"]
    return {
        "reply": f"{ECHO}{said}",
        "corrected_text": said,
        "mistakes": [],
        "score": 90,
        "tip": None,
        "new_words": [],
    }


def echoed(text: str) -> str | None:
    """What the learner said, read back from the first line of Honzík's echoed answer."""
    for line in text.splitlines():
        if ECHO in line:
            return line.split(ECHO, 1)[1].strip()
    return None


# --------------------------------------------------------------------------- /metrics


@dataclass(frozen=True)
class Scrape:
    """One GET /metrics: the HTTP status, Content-Type, raw text and parsed samples."""

    status: int
    content_type: str
    text: str

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [
            (dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
            if sample.name == name
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        return sum(
            value
            for found, value in self.samples(name)
            if all(found.get(k) == v for k, v in labels.items())
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        return {found[label]: value for found, value in self.samples(name) if label in found}


async def scrape(bot: BotProcess) -> Scrape:
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{bot.url}/metrics") as response,
    ):
        text = await response.text()
        return Scrape(response.status, response.headers.get("Content-Type", ""), text)


async def handled(bots: Iterable[BotProcess], *handlers: str) -> tuple[float, float]:
    """(updates that reached these handlers, updates in flight), summed over `bots`.

    Handler names are module-qualified, e.g. `bot.handlers.conversation.on_text`; none
    given: every handler.
    """
    done = in_flight = 0.0
    for bot in bots:
        metrics = await scrape(bot)
        counts = metrics.by_label("mluv_handler_seconds_count", "handler")
        done += sum(n for name, n in counts.items() if not handlers or name in handlers)
        in_flight += metrics.value("mluv_updates_in_flight")
    return done, in_flight
