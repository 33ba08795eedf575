"""Handling latency per handler, for `/metrics`."""

from __future__ import annotations

import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.handler import HandlerObject
from aiogram.types import TelegramObject

from bot.metrics import Metrics
from bot.middlewares.base import Handler


class HandlerTimingMiddleware(BaseMiddleware):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        handler: Handler,
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        target: HandlerObject | None = data.get("handler")
        callback = target.callback if target is not None else None
        name = f"{callback.__module__}.{callback.__name__}" if callback else "unknown"
        started = time.perf_counter()
        try:
            return await handler(event, data)
        finally:
            self.metrics.handler_latency.labels(name).observe(time.perf_counter() - started)
