"""The composition root: the one place that builds clients and wires them together.

Handlers and services receive what they need through `dp.workflow_data` and middlewares;
nothing else constructs a client.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.fsm.storage.memory import DisabledEventIsolation
from aiogram.types import BotCommand
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiohttp import web
from openai import AsyncOpenAI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import handlers, texts
from bot.ai import create_openai
from bot.ai.honzik import Honzik
from bot.ai.speech import Voice, Whisper
from bot.ai.translate import Translator
from bot.cache import Cache, create_cache, keys_for
from bot.cache.admin import CounterSync
from bot.config import Config
from bot.db import migrate
from bot.db.engine import create_engine, create_sessionmaker
from bot.domain import Character
from bot.handlers.drafts import Drafting
from bot.i18n import SOURCE, catalogs, speaking
from bot.metrics import Metrics
from bot.middlewares import (
    DbSessionMiddleware,
    InFlight,
    InFlightMiddleware,
    LearnerContextMiddleware,
)
from bot.middlewares.i18n import LearnerLanguageMiddleware
from bot.middlewares.telegram_retry import RetryAfterMiddleware
from bot.middlewares.timing import HandlerTimingMiddleware
from bot.runtime.inbox import Inbox
from bot.runtime.polling import Poller
from bot.runtime.reminders import ReminderScheduler
from bot.runtime.stopping import pause, unless_stopped
from bot.runtime.webhook import WebhookEndpoint
from bot.services.answers import AnswersService
from bot.services.conversation import ConversationService
from bot.services.health import HealthService
from bot.services.reminders import ReminderService
from bot.services.reset import ResetService
from bot.services.scenes import SceneService
from bot.services.stats import StatsService
from bot.services.users import UserService
from bot.services.words import WordsService
from bot.web.server import create_web_app, start_web

log = logging.getLogger("bot")

# How long a stopping process waits for updates in flight before closing its pools.
DRAIN_TIMEOUT = 60.0
REMINDERS_DRAIN = 5.0  # and for the reminder being sent
# Telegram unreachable at start-up: try again after 1 s, 2 s, 4 s ... then every 30 s.
STARTUP_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=2.0, jitter=0.1)
TOKEN_REJECTED = (
    "Telegram rejected BOT_TOKEN (401 Unauthorized): it was revoked or mistyped; "
    "copy the current token from @BotFather (https://t.me/BotFather)."
)


@dataclass
class Resources:
    """Long-lived clients owned by the process, closed on shutdown."""

    config: Config
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    openai: AsyncOpenAI
    inflight: InFlight
    metrics: Metrics

    @classmethod
    def create(cls, config: Config) -> Resources:
        engine = create_engine(config.database_url)
        cache = create_cache(config)
        inflight = InFlight()
        return cls(
            config=config,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            cache=cache,
            openai=create_openai(config),
            inflight=inflight,
            metrics=Metrics(cache.counters, lambda: inflight.count),
        )

    async def close(self) -> None:
        await self.openai.close()
        await self.cache.close()
        await self.engine.dispose()


def build_dispatcher(resources: Resources) -> Dispatcher:
    """The dispatcher with its middleware chain and routers, ready to be fed updates."""
    config, cache, client, metrics = (
        resources.config,
        resources.cache,
        resources.openai,
        resources.metrics,
    )
    keys = keys_for(config)
    users = UserService(cache, keys)
    honzik = Honzik(
        client,
        cache,
        keys,
        metrics,
        config.openai_model,
        config.openai_temperature,
        stream=config.stream_replies,
    )
    conversation = ConversationService(
        cache,
        keys,
        honzik,
        window_minutes=config.conversation_window_minutes,
        history_limit=config.history_messages,
        default_zone=config.zone,
        daily_limit=config.daily_ai_messages,
    )
    voices = {
        Character.HONZIK: config.tts_voice_honzik,
        Character.NOVAKOVA: config.tts_voice_novakova,
    }
    # Order comes from Telegram (webhook) or from the poller's per-chat chains, not from
    # aiogram's event isolation, which would take a lock per update for nothing; and the bot
    # keeps no conversation state in aiogram's FSM, so its middleware is not run either.
    reset = ResetService(cache, keys, config.history_messages, config.zone)
    dp = Dispatcher(events_isolation=DisabledEventIsolation(), disable_fsm=True)
    dp.workflow_data.update(
        config=config,
        cache=cache,
        keys=keys,
        users=users,
        conversation=conversation,
        stats=StatsService(cache, keys, config.zone),
        words=WordsService(cache, keys, config.zone),
        reset=reset,
        scenes=SceneService(users, reset, conversation),
        reminders=ReminderService(cache, keys, users, config.zone),
        answers=AnswersService(
            cache, keys, Translator(client, cache, keys, metrics, config.openai_model)
        ),
        whisper=Whisper(client, cache, keys, metrics, config.whisper_model),
        voice=Voice(client, cache, keys, metrics, config.tts_model, voices),
        counter_sync=CounterSync(cache, cache.counters),
        drafting=Drafting(enabled=config.stream_replies),
    )
    dp.update.outer_middleware(InFlightMiddleware(resources.inflight))
    dp.update.outer_middleware(DbSessionMiddleware(resources.sessionmaker))
    # Twice: before the learner is loaded (the rate-limit notice, in the Telegram app's
    # language), then with the learner's own language and character.
    language = LearnerLanguageMiddleware()
    dp.update.outer_middleware(language)
    dp.update.outer_middleware(
        LearnerContextMiddleware(cache, keys, users, conversation, config.rate_limit_per_minute)
    )
    dp.update.outer_middleware(language)
    timing = HandlerTimingMiddleware(metrics)
    for observer in (dp.message, dp.edited_message, dp.callback_query):
        observer.middleware(timing)
    dp.include_routers(*handlers.routers())
    return dp


def create_bot(config: Config) -> Bot:
    session = (
        AiohttpSession(api=TelegramAPIServer.from_base(config.telegram_api_url))
        if config.telegram_api_url
        else AiohttpSession()
    )
    session.middleware(RetryAfterMiddleware())
    return Bot(config.bot_token.get_secret_value(), session=session)


async def publish_commands(bot: Bot) -> None:
    """The command menu, in Czech and for each catalog's language (Telegram shows the one of
    the user's app); a failure here is not worth refusing to start over."""
    try:
        for language in (None, *catalogs().locales):
            with speaking(language or SOURCE):
                commands = [
                    BotCommand(command=name, description=text)
                    for name, text in texts.COMMANDS.items()
                ]
            await bot.set_my_commands(commands, language_code=language)
    except (TelegramAPIError, OSError) as exc:
        log.warning("could not publish the command menu: %s", exc)


async def run(config: Config) -> int:
    """Migrate, serve HTTP, take updates until SIGTERM, then drain and close; the exit code.

    /health is served from before Telegram is first reached, so a platform's health check
    sees a live process while Telegram is unreachable; a rejected token ends it with 1.
    """
    if config.openai_api_key is None or not config.openai_api_key.get_secret_value():
        log.warning("OPENAI_API_KEY is not set: Honzík can neither listen, answer nor speak")
    resources = Resources.create(config)
    bot = create_bot(config)
    runner: web.AppRunner | None = None
    sync: asyncio.Task[None] | None = None
    reminding: asyncio.Task[None] | None = None
    try:
        if config.auto_migrate:
            await migrate.upgrade(resources.engine)
        dp = build_dispatcher(resources)
        health = HealthService(resources.engine, resources.cache, config.environment)
        app = create_web_app(health, resources.metrics)
        if config.webhook_url:
            assert config.webhook_secret is not None
            hook = WebhookEndpoint(
                dp,
                bot,
                resources.cache,
                dp["keys"],
                resources.metrics,
                config.webhook_secret.get_secret_value(),
            )
            app.router.add_post(urlsplit(config.webhook_url).path or "/", hook.handle)
        runner = await start_web(app, config.port)
        redis_state = await resources.cache.health()
        log.info("http on port %s, redis %s", config.port, redis_state)
        stop = _stop_on_signals()
        counter_sync: CounterSync = dp["counter_sync"]
        sync = asyncio.create_task(counter_sync.run_forever())
        scheduler = ReminderScheduler(
            bot,
            resources.sessionmaker,
            dp["reminders"],
            dp["voice"],
            resources.metrics,
            per_second=config.reminder_messages_per_second,
            interval=config.reminder_check_seconds,
        )
        reminding = asyncio.create_task(scheduler.run(stop))
        try:
            if config.webhook_url:
                await _serve_webhook(dp, bot, runner, resources.inflight, config, health, stop)
            else:
                await _serve_polling(dp, bot, resources, health, stop)
        except TelegramUnauthorizedError:
            log.error(TOKEN_REJECTED)
            return 1
        await counter_sync.push()
        # A reminder being sent is finished and marked, not cut off (it would go out again).
        await asyncio.wait({reminding}, timeout=REMINDERS_DRAIN)
        return 0
    finally:
        for task in (sync, reminding):
            if task is not None:
                task.cancel()
        if runner is not None:
            await runner.cleanup()
        await bot.session.close()
        await resources.close()
        log.info("stopped")


async def _when_telegram_answers(
    call: Callable[[], Coroutine[Any, Any, object]], health: HealthService, stop: asyncio.Event
) -> bool:
    """Make start-up's first Bot API call, again and again while Telegram cannot be reached.

    Capped exponential back-off; /health says `"telegram": "unreachable"` meanwhile. False
    if SIGTERM came first. Any other refusal (a rejected token above all) is raised.
    """
    backoff = Backoff(STARTUP_BACKOFF)
    while not stop.is_set():
        attempt = await unless_stopped(call(), stop)
        if attempt is None:
            break
        try:
            attempt.result()
        except (TelegramNetworkError, TelegramServerError) as exc:
            health.telegram_reachable = False
            delay = next(backoff)
            log.warning("telegram unreachable, trying again in %.0f s: %s", delay, exc)
            await pause(stop, delay)
            continue
        if not health.telegram_reachable:
            log.info("telegram reachable again")
        health.telegram_reachable = True
        return True
    return False


async def _serve_webhook(
    dp: Dispatcher,
    bot: Bot,
    runner: web.AppRunner,
    inflight: InFlight,
    config: Config,
    health: HealthService,
    stop: asyncio.Event,
) -> None:
    """Register the webhook and serve until SIGTERM; then stop accepting and drain.

    The webhook is left registered on exit, so Telegram keeps pending updates for the next
    replica instead of dropping them.
    """
    assert config.webhook_url is not None and config.webhook_secret is not None
    webhook_url, secret = config.webhook_url, config.webhook_secret.get_secret_value()

    async def register() -> None:
        await bot.set_webhook(
            webhook_url,
            secret_token=secret,
            allowed_updates=dp.resolve_used_update_types(),
            max_connections=config.webhook_max_connections,
            drop_pending_updates=False,
        )

    if not await _when_telegram_answers(register, health, stop):
        return
    await publish_commands(bot)
    await dp.emit_startup(bot=bot, **dp.workflow_data)
    log.info("webhook mode: serving %s", urlsplit(config.webhook_url).path)
    await stop.wait()
    log.info("stopping: no new updates, finishing %s in flight", inflight.count)
    for site in list(runner.sites):
        await site.stop()
    await _finish_in_flight(inflight)
    await dp.emit_shutdown(bot=bot, **dp.workflow_data)


async def _finish_in_flight(inflight: InFlight) -> None:
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT):
            await inflight.idle()
    except TimeoutError:
        log.warning("stopping with %s updates still in flight", inflight.count)


async def _serve_polling(
    dp: Dispatcher, bot: Bot, resources: Resources, health: HealthService, stop: asyncio.Event
) -> None:
    """Poll until SIGTERM; the poller then finishes what is in flight and confirms it."""
    if not await _when_telegram_answers(
        lambda: bot.delete_webhook(drop_pending_updates=False), health, stop
    ):
        return
    await publish_commands(bot)
    await dp.emit_startup(bot=bot, **dp.workflow_data)
    log.info("polling mode")
    poller = Poller(
        dp, bot, Inbox(resources.engine), resources.metrics, drain_timeout=DRAIN_TIMEOUT
    )
    await poller.run(stop)
    await dp.emit_shutdown(bot=bot, **dp.workflow_data)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
