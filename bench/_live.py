"""The whole bot as it runs in production (`bot.app.run`), in this process.

Telegram is the Bot API stand-in (`tests/standins/telegram.py`), OpenAI the in-process
stand-in, the database a temporary SQLite file migrated by the bot itself at start-up, Redis
the benchmarks' database. Polling and webhook mode are chosen by the configuration, exactly
as in production; the bot is stopped with SIGTERM, as the platform stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import TOKEN, bench_config, clean_redis, reply_per_request
from bot.app import run
from tests.standins.openai import FakeOpenAI
from tests.standins.telegram import FakeTelegram

WEBHOOK_PATH = "/telegram/webhook"
SECRET = "bench_secret"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Live:
    tg: FakeTelegram
    oa: FakeOpenAI
    hook_url: str | None


@contextlib.asynccontextmanager
async def live_bot(*, webhook: bool = False, **overrides: Any) -> AsyncIterator[Live]:
    """`bot.app.run` serving the stand-ins until the block ends."""
    port = free_port()
    hook_url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}" if webhook else None
    async with clean_redis(), FakeTelegram(token=TOKEN) as tg, FakeOpenAI() as oa:
        oa.script_chat(reply_per_request)
        with tempfile.TemporaryDirectory(prefix="mluv-bench-") as tmp:
            if webhook:
                overrides.update(webhook_url=hook_url, webhook_secret=SECRET)
            config = bench_config(
                Path(tmp),
                telegram_api_url=tg.base_url,
                openai_base_url=oa.base_url,
                openai_max_retries=0,
                port=port,
                **overrides,
            )
            bot = asyncio.create_task(run(config))
            try:
                ready = "setWebhook" if webhook else "getUpdates"
                waiting = asyncio.create_task(
                    tg.wait_for(lambda c: c.method == ready, START_TIMEOUT, pending=True)
                )
                await asyncio.wait({bot, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if bot.done():
                    waiting.cancel()
                    bot.result()
                    raise RuntimeError("the bot stopped before it was ready")
                await waiting
                yield Live(tg, oa, hook_url)
            finally:
                if not bot.done():
                    os.kill(os.getpid(), signal.SIGTERM)
                async with asyncio.timeout(START_TIMEOUT):
                    await bot


async def quiet(count: Any, settle: float = 0.3, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Wait until `count()` has not changed for `settle` seconds."""
    async with asyncio.timeout(timeout):
        last = count()
        while True:
            await asyncio.sleep(settle)
            now = count()
            if now == last:
                return
            last = now
