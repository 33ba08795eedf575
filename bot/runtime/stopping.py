"""Waiting on Telegram without holding up a stop: what the poller and start-up share."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def unless_stopped(
    call: Coroutine[Any, Any, T], stop: asyncio.Event
) -> asyncio.Task[T] | None:
    """`call`'s finished task, or None once `stop` is set first (then `call` is cancelled).

    The task is handed back rather than its result, so the caller sorts its errors itself.
    """
    task = asyncio.ensure_future(call)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not task.done():
        task.cancel()
        return None
    return task


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait before trying again, but stop waiting as soon as the bot is stopping."""
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
