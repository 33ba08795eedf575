"""The composition root: the one place that builds clients and wires them together.

Handlers and services receive what they need through `dp.workflow_data` and middlewares;
nothing else constructs a client.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import BotCommand
from aiohttp import web
from openai import AsyncOpenAI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import handlers, texts
from bot.ai import create_openai
from bot.ai.honzik import Honzik
from bot.ai.speech import Voice, Whisper
from bot.cache import Cache, create_cache, keys_for
from bot.config import Config
from bot.db import migrate
from bot.db.engine import create_engine, create_sessionmaker
from bot.domain import Character
from bot.middlewares import DbSessionMiddleware, InFlight, InFlightMiddleware, UserContextMiddleware
from bot.middlewares.telegram_retry import RetryAfterMiddleware
from bot.services.conversation import ConversationService
from bot.services.health import HealthService
from bot.services.reset import ResetService
from bot.services.stats import StatsService
from bot.services.users import UserService
from bot.services.words import WordsService
from bot.web.server import create_web_app, start_web

log = logging.getLogger("bot")

# How long a stopping process waits for updates in flight before closing its pools.
DRAIN_TIMEOUT = 60.0


@dataclass
class Resources:
    """Long-lived clients owned by the process, closed on shutdown."""

    config: Config
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    openai: AsyncOpenAI
    inflight: InFlight

    @classmethod
    def create(cls, config: Config) -> Resources:
        engine = create_engine(config.database_url)
        return cls(
            config=config,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            cache=create_cache(config),
            openai=create_openai(config),
            inflight=InFlight(),
        )

    async def close(self) -> None:
        await self.openai.close()
        await self.cache.close()
        await self.engine.dispose()


def build_dispatcher(resources: Resources) -> Dispatcher:
    """The dispatcher with its middleware chain and routers, ready to be fed updates."""
    config, cache, client = resources.config, resources.cache, resources.openai
    keys = keys_for(config)
    users = UserService(cache, keys)
    honzik = Honzik(client, cache, keys, config.openai_model, config.openai_temperature)
    conversation = ConversationService(
        cache,
        keys,
        honzik,
        window_minutes=config.conversation_window_minutes,
        history_limit=config.history_messages,
        default_zone=config.zone,
    )
    voices = {
        Character.HONZIK: config.tts_voice_honzik,
        Character.NOVAKOVA: config.tts_voice_novakova,
    }
    # Per-chat isolation keeps one learner's updates in order while learners run in parallel.
    dp = Dispatcher(events_isolation=SimpleEventIsolation())
    dp.workflow_data.update(
        config=config,
        cache=cache,
        users=users,
        conversation=conversation,
        stats=StatsService(cache, keys, config.zone),
        words=WordsService(cache, keys, config.zone),
        reset=ResetService(cache, keys, config.history_messages, config.zone),
        whisper=Whisper(client, cache, keys, config.whisper_model),
        voice=Voice(client, cache, keys, config.tts_model, voices),
    )
    dp.update.outer_middleware(InFlightMiddleware(resources.inflight))
    dp.update.outer_middleware(DbSessionMiddleware(resources.sessionmaker))
    dp.update.outer_middleware(UserContextMiddleware(users))
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
    commands = [BotCommand(command=name, description=text) for name, text in texts.COMMANDS.items()]
    await bot.set_my_commands(commands)


async def run(config: Config) -> None:
    """Migrate, start `/health`, poll Telegram until SIGTERM, then drain and close."""
    resources = Resources.create(config)
    bot = create_bot(config)
    runner: web.AppRunner | None = None
    try:
        if config.auto_migrate:
            await migrate.upgrade(resources.engine)
        dp = build_dispatcher(resources)
        health = HealthService(resources.engine, resources.cache, config.environment)
        runner = await start_web(create_web_app(health), config.port)
        log.info(
            "health endpoint on port %s, redis %s", config.port, await resources.cache.health()
        )
        await publish_commands(bot)
        await bot.delete_webhook(drop_pending_updates=False)
        dp.shutdown.register(_drain)
        await dp.start_polling(bot, close_bot_session=False, inflight=resources.inflight)
    finally:
        if runner is not None:
            await runner.cleanup()
        await bot.session.close()
        await resources.close()
        log.info("stopped")


async def _drain(bot: Bot, inflight: InFlight) -> None:
    """Finish the updates in flight, then confirm them so a restart does not replay them."""
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT):
            await inflight.idle()
    except TimeoutError:
        log.warning("stopping with %s updates still in flight", inflight.count)
    if inflight.last_update_id is not None:
        await bot.get_updates(offset=inflight.last_update_id + 1, timeout=0, limit=1)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main() -> None:
    try:
        config = Config()
    except ValidationError as exc:
        missing = [".".join(map(str, e["loc"])) for e in exc.errors() if e["type"] == "missing"]
        if "bot_token" in missing:
            sys.exit(
                "BOT_TOKEN is not set: create a bot with @BotFather in Telegram "
                "(https://t.me/BotFather) and put its token in .env or the environment."
            )
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"Invalid configuration: {problems}")
    if config.webhook_url:
        sys.exit("WEBHOOK_URL is set, but this version runs with long polling only: unset it.")
    setup_logging(config.log_level)
    asyncio.run(run(config))
