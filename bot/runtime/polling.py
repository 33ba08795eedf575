"""Polling: the bot's own `getUpdates` loop over raw JSON, with the inbox and per-chat order.

Why not aiogram's `start_polling`: it parses a whole batch at once, so one update it cannot
read fails the batch and the offset never moves; and it confirms a batch before handling it,
so a crash loses what was in flight. Here every update is parsed on its own, every batch is
in the inbox before Telegram is told it was received, and the offset moves on at once, so
a slow voice message never holds other learners back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiohttp import ClientError, ClientTimeout
from sqlalchemy.exc import SQLAlchemyError

from bot.metrics import Metrics
from bot.runtime.inbox import Inbox, Raw
from bot.runtime.order import ChatOrder, chat_of
from bot.runtime.parse import loads, parse_update
from bot.runtime.stopping import pause, unless_stopped

log = logging.getLogger(__name__)

BATCH_LIMIT = 100
BACKOFF = BackoffConfig(min_delay=0.5, max_delay=5.0, factor=1.6, jitter=0.1)


class TelegramRefused(Exception):
    """`getUpdates` answered, but not with updates (a conflict, a flood limit, a bad token)."""

    def __init__(self, code: int, description: str, retry_after: float | None) -> None:
        super().__init__(f"{code}: {description}")
        self.retry_after = retry_after


class Poller:
    """Fetches, stores, orders and hands updates to the dispatcher until stopped."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        inbox: Inbox,
        metrics: Metrics,
        *,
        long_poll: int = 10,
        drain_timeout: float = 60.0,
    ) -> None:
        self.dp = dp
        self.bot = bot
        self.inbox = inbox
        self.metrics = metrics
        self.long_poll = long_poll
        self.drain_timeout = drain_timeout
        self.order = ChatOrder()
        self._offset: int | None = None
        self._confirmed: int | None = None
        self._finished: set[int] = set()
        self._allowed = dp.resolve_used_update_types()

    async def run(self, stop: asyncio.Event) -> None:
        """Handle what the inbox kept from the last run, then poll until `stop` is set."""
        pending = await self.inbox.pending()
        if pending:
            log.info("handling %s updates received before the last stop", len(pending))
            self._dispatch(pending, {int(raw["update_id"]) for raw in pending})
            self._offset = max(int(raw["update_id"]) for raw in pending) + 1
        backoff = Backoff(BACKOFF)
        while not stop.is_set():
            fetch = await unless_stopped(self._fetch(self._offset, self.long_poll), stop)
            if fetch is None:
                break
            try:
                batch = fetch.result()
            except TelegramRefused as exc:
                log.warning("telegram refused getUpdates: %s", exc)
                await pause(stop, exc.retry_after or next(backoff))
                continue
            except (ClientError, TimeoutError, ValueError) as exc:
                log.warning("could not fetch updates: %s", type(exc).__name__)
                await pause(stop, next(backoff))
                continue
            backoff.reset()
            self._confirmed = self._offset
            await self._flush()
            if batch:
                await self._receive(batch)
        await self._stop()

    async def _receive(self, batch: list[Raw]) -> None:
        batch.sort(key=lambda raw: int(raw["update_id"]))
        try:
            fresh = await self.inbox.add(batch)
        except (SQLAlchemyError, OSError) as exc:
            # Handled all the same: a learner with a cached context can still be answered.
            log.warning("could not keep updates in the inbox: %s", type(exc).__name__)
            fresh = {int(raw["update_id"]) for raw in batch}
        self._offset = int(batch[-1]["update_id"]) + 1
        self._dispatch(batch, fresh)

    def _dispatch(self, batch: Sequence[Raw], fresh: set[int]) -> None:
        """Chain each new update behind its chat's previous one; nothing awaits in between."""
        for raw in batch:
            update_id = int(raw["update_id"])
            if update_id not in fresh:
                continue
            update = parse_update(raw, self.bot, self.metrics)
            if update is None:
                self._finished.add(update_id)
                continue
            self.order.submit(chat_of(update), partial(self._handle, update))

    async def _handle(self, update: Update) -> None:
        try:
            response = await self.dp.feed_update(self.bot, update)
            if isinstance(response, TelegramMethod):
                await self.dp.silent_call_request(self.bot, response)
        except Exception:
            log.exception("update %s failed", update.update_id)
        finally:
            self._finished.add(update.update_id)

    async def _flush(self) -> None:
        """Delete the finished updates that Telegram has confirmed (one statement)."""
        if self._confirmed is None:
            return
        done = sorted(i for i in self._finished if i < self._confirmed)
        if not done:
            return
        try:
            await self.inbox.remove(done)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not clear finished updates from the inbox: %s", type(exc).__name__)
            return
        self._finished.difference_update(done)

    async def _stop(self) -> None:
        """Finish what is in flight, confirm it to Telegram, then clear it from the inbox.

        Updates still running at the drain deadline keep their rows: the next start redoes them.
        """
        log.info("stopping: finishing %s updates in flight", self.order.running)
        try:
            async with asyncio.timeout(self.drain_timeout):
                await self.order.idle()
        except TimeoutError:
            log.warning(
                "stopping with %s updates unfinished; kept for the next start", self.order.running
            )
        if self._offset is not None:
            try:
                await self._fetch(self._offset, 0, limit=1)
                self._confirmed = self._offset
            except (TelegramRefused, ClientError, TimeoutError, ValueError) as exc:
                # The inbox still has these updates' rows: nothing is lost, nothing is redone.
                log.warning("could not confirm the last updates to Telegram: %s", exc)
        await self._flush()

    async def _fetch(self, offset: int | None, wait: int, limit: int = BATCH_LIMIT) -> list[Raw]:
        """One `getUpdates` call; the updates as Telegram sent them (made storable), unparsed."""
        session = self.bot.session
        assert isinstance(session, AiohttpSession)
        client = await session.create_session()
        params: dict[str, Any] = {
            "timeout": wait,
            "limit": limit,
            "allowed_updates": self._allowed,
        }
        if offset is not None:
            params["offset"] = offset
        url = session.api.api_url(token=self.bot.token, method="getUpdates")
        async with client.post(
            url, json=params, timeout=ClientTimeout(total=wait + 15)
        ) as response:
            body = loads(await response.read())
        if not isinstance(body, dict):
            raise ValueError("getUpdates answered with something that is not an object")
        if not body.get("ok"):
            retry = (body.get("parameters") or {}).get("retry_after")
            raise TelegramRefused(
                int(body.get("error_code") or response.status),
                str(body.get("description", "")),
                float(retry) if retry is not None else None,
            )
        result = body.get("result")
        if not isinstance(result, list):
            raise ValueError("getUpdates answered without a list of updates")
        return [raw for raw in result if isinstance(raw, dict) and "update_id" in raw]
