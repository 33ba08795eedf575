"""Honzík's reply shown while he writes it: `sendMessageDraft` into the learner's chat.

A draft is Telegram's ephemeral preview; the answer itself still goes out with sendMessage, so a
draft lost or refused costs nothing. Drafts are sent in the background, never awaited by the
stream: one at a time, at most one every DRAFT_EVERY seconds, only when the text changed, and
the latest text always shown last.
A Bot API server that refuses them (an old local server, a 400) turns them off for
REFUSED_PAUSE, process-wide.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNotFound,
)

from bot import texts

log = logging.getLogger(__name__)

DRAFT_EVERY = 0.3  # seconds between two drafts of one answer
REFUSED_PAUSE = 600.0  # seconds without drafts after Telegram refused one
DRAFT_LIMIT = texts.MESSAGE_LIMIT
CLOSE_WAIT = 1.0  # seconds the answer waits for a draft still on its way (a 429 waits longer)


class Drafting:
    """Whether drafts are on: the configuration, and Telegram's last word on them."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._off_until = 0.0

    @property
    def available(self) -> bool:
        return self.enabled and time.monotonic() >= self._off_until

    def refused(self, error: TelegramAPIError) -> None:
        """The Bot API server does not take drafts at all (an old local server, a 400)."""
        if self.available:
            log.warning("drafts refused (%s): off for %.0f s", error.message, REFUSED_PAUSE)
        self._off_until = time.monotonic() + REFUSED_PAUSE

    def stream(
        self,
        bot: Bot,
        chat_id: int,
        draft_id: int,
        *,
        heard: str | None = None,
        on_reply: Callable[[str], None] | None = None,
    ) -> DraftStream:
        return DraftStream(self, bot, chat_id, draft_id, heard=heard, on_reply=on_reply)


class DraftStream:
    """One answer's drafts: a `ReplyListener` for `Honzik.answer`.

    `heard` (a voice message's transcript) heads every draft, as it heads the answer; without
    it the first draft is empty, Telegram's "Thinking…" placeholder. `on_reply` is told the
    complete reply at once, while the model still writes the rest (the voice starts there).
    """

    def __init__(
        self,
        drafting: Drafting,
        bot: Bot,
        chat_id: int,
        draft_id: int,
        *,
        heard: str | None,
        on_reply: Callable[[str], None] | None,
    ) -> None:
        self.drafting = drafting
        self.bot = bot
        self.chat_id = chat_id
        self.draft_id = draft_id or 1  # Telegram: must be non-zero
        self.heading = texts.HEARD.format(text=heard) if heard else ""
        self.on_reply = on_reply
        self._wanted: str | None = None  # the latest text to show
        self._shown: str | None = None
        self._at = 0.0
        self._sending = False
        self._stopped = False  # this answer's drafts are over (closed, or refused for this chat)
        self._pump: asyncio.Task[None] | None = None

    async def started(self) -> None:
        self._show(self.heading)

    async def growing(self, reply: str) -> None:
        self._show(self._text(reply))

    async def finished(self, reply: str) -> None:
        if self.on_reply is not None:
            self.on_reply(reply)
        self._show(self._text(reply))

    async def close(self) -> None:
        """Before the answer goes out: nothing more is drafted, and a draft on its way must
        not land after the answer; one held up (flood control) is dropped rather than holding
        up the answer."""
        self._stopped = True
        if self._pump is None or self._pump.done():
            return
        if not self._sending:
            self._pump.cancel()
            return
        _, late = await asyncio.wait({self._pump}, timeout=CLOSE_WAIT)
        if late:
            self._pump.cancel()
            log.info("a draft was still on its way; dropped")

    def _text(self, reply: str) -> str:
        text = f"{self.heading}\n\n{reply}" if self.heading else reply
        return texts.shorten(text, DRAFT_LIMIT)

    def _show(self, text: str) -> None:
        if self._stopped or not self.drafting.available or text == self._wanted:
            return
        self._wanted = text
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run())

    async def _run(self) -> None:
        """Show the latest text, then the one after, at most one every DRAFT_EVERY seconds:
        the text in between is skipped, the last is always shown."""
        while not self._stopped and self._wanted is not None and self._wanted != self._shown:
            wait = self._at + DRAFT_EVERY - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if not self.drafting.available:
                return
            text = self._shown = self._wanted
            self._at = time.monotonic()
            self._sending = True
            try:
                await self._send(text)
            finally:
                self._sending = False

    async def _send(self, text: str) -> None:
        """One draft. Refused as a method: drafts off for everyone for a while. Refused for
        this chat (blocked, flood control) or lost: no more drafts of this answer."""
        try:
            await self.bot.send_message_draft(self.chat_id, self.draft_id, text=text)
        except (TelegramBadRequest, TelegramNotFound) as exc:
            self.drafting.refused(exc)
        except (AiogramError, OSError) as exc:
            log.info("draft not delivered, no more for this answer: %s", type(exc).__name__)
            self._stopped = True
