"""Operator commands, for ADMIN_IDS only: /cache_flush [family] and /cache_stats."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import BaseFilter, CommandObject
from aiogram.types import Message

from bot import texts
from bot.cache import Cache, Family
from bot.cache.admin import CounterSync, count_keys, flush, memory_used
from bot.cache.keys import KEY_ROOTS
from bot.config import Config
from bot.handlers.filters import CommandIs

# Key roots by the family names operators type; `user` covers profiles, settings and history.
FLUSHABLE = {root: (root,) for root in KEY_ROOTS}
SAVED_CALLS = (Family.HONZIK, Family.WHISPER, Family.TTS)


class IsAdmin(BaseFilter):
    async def __call__(self, message: Message, config: Config) -> bool:
        return message.from_user is not None and message.from_user.id in config.admin_ids


async def refuse(message: Message) -> None:
    await message.answer(texts.ADMIN_ONLY)


async def cache_flush(message: Message, command: CommandObject, cache: Cache) -> None:
    if not cache.enabled:
        await message.answer(texts.CACHE_DISABLED)
        return
    wanted = (command.args or "").strip().lower()
    if wanted and wanted not in FLUSHABLE:
        await message.answer(texts.FLUSH_USAGE.format(families="|".join(FLUSHABLE)))
        return
    roots = FLUSHABLE[wanted] if wanted else KEY_ROOTS
    deleted = await flush(cache, roots)
    if deleted is None:
        await message.answer(texts.REDIS_DOWN)
        return
    await message.answer(texts.FLUSHED.format(count=deleted, families=", ".join(roots)))


async def cache_stats(
    message: Message, cache: Cache, config: Config, counter_sync: CounterSync
) -> None:
    if not cache.enabled:
        await message.answer(texts.CACHE_DISABLED)
        return
    shared = await counter_sync.shared()
    if shared is None:
        await message.answer(texts.REDIS_DOWN)
        return
    lines = [texts.CACHE_STATS_TITLE]
    for family in Family:
        hits = shared.get(f"{family.value}:hits", 0)
        misses = shared.get(f"{family.value}:misses", 0)
        rate = round(100 * hits / (hits + misses)) if hits + misses else 0
        keys = await count_keys(cache, family.value) if family.value in KEY_ROOTS else "–"
        lines.append(
            texts.CACHE_STATS_FAMILY.format(
                family=family.value, hits=hits, misses=misses, rate=rate, keys=keys
            )
        )
    lines.append(texts.CACHE_STATS_MEMORY.format(memory=await memory_used(cache)))
    prices = {
        Family.HONZIK: config.price_honzik_call,
        Family.WHISPER: config.price_whisper_call,
        Family.TTS: config.price_tts_call,
    }
    saved = {family: shared.get(f"{family.value}:hits", 0) for family in SAVED_CALLS}
    dollars = sum(prices[family] * calls for family, calls in saved.items())
    lines.append(texts.CACHE_STATS_SAVED.format(calls=sum(saved.values()), dollars=dollars))
    await message.answer("\n".join(lines))


def create_router() -> Router:
    router = Router(name="admin")
    admin_commands = CommandIs("cache_flush", "cache_stats")
    router.message.register(cache_flush, CommandIs("cache_flush"), IsAdmin())
    router.message.register(cache_stats, CommandIs("cache_stats"), IsAdmin())
    router.message.register(refuse, admin_commands)
    return router
