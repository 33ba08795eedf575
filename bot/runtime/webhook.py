"""Webhook mode: Telegram is answered only after the update has been handled.

Telegram sends a chat's next update only once the previous request was answered, so
answering late keeps every learner's order across any number of replicas, with nothing
to coordinate. The answer says what happened:
- 200: handled, already handled (a redelivery of a done update), or unreadable (a 4xx would
  make Telegram retry it and hold that chat's later messages back for nothing);
- 503 with Retry-After: another replica holds the update's lease; it may have died, so the
  update must come back rather than be confirmed;
- 500: handling failed and the lease was released, so the redelivery is handled afresh;
- 401: the secret header is missing or wrong; 400: the body is not JSON.
"""

from __future__ import annotations

import hmac
import logging

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiohttp import web

from bot.cache import Cache, Keys
from bot.metrics import Metrics
from bot.middlewares.lease import UpdateLease
from bot.runtime.parse import loads, parse_update

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookEndpoint:
    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        cache: Cache,
        keys: Keys,
        metrics: Metrics,
        secret: str,
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.cache = cache
        self.keys = keys
        self.metrics = metrics
        self.secret = secret.encode()

    def authentic(self, header: str) -> bool:
        """Constant-time comparison of bytes, so any header a client sends gets a clean 401."""
        return hmac.compare_digest(header.encode("utf-8", "surrogateescape"), self.secret)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.authentic(request.headers.get(SECRET_HEADER, "")):
            return web.Response(status=401, text="unauthorized")
        try:
            raw = loads(await request.read())
        except (ValueError, RecursionError):
            return web.Response(status=400, text="not JSON")
        update = parse_update(raw, self.bot, self.metrics)
        if update is None:
            return web.Response(status=200)
        name = self.cache.full(self.keys.update_mark(self.bot.id, update.update_id))
        lease = UpdateLease(self.cache, name)
        try:
            response = await self.dp.feed_update(self.bot, update, lease=lease)
            if isinstance(response, TelegramMethod):
                await self.dp.silent_call_request(self.bot, response)
        except Exception:
            log.exception("update %s failed; Telegram will deliver it again", update.update_id)
            return web.Response(status=500)
        if lease.state == "busy":
            return web.Response(status=503, headers={"Retry-After": str(lease.retry_after)})
        return web.Response(status=200)
