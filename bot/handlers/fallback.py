"""Last router: anything nobody else took gets a short hint instead of silence.

Only what a learner sent gets the hint: Telegram's service messages (a pin, a changed
auto-delete timer, granted write access …) need no answer, and an album gets one hint, not
one per photo.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message

from bot import texts
from bot.cache import Cache, Keys
from bot.cache.keys import ALBUM_TTL
from bot.handlers.filters import COMMAND, GROUP, PRIVATE

# Content a learner can send; anything else (service messages, kinds newer than this list)
# is left unanswered.
SENT = frozenset(
    {
        ContentType.TEXT,
        ContentType.AUDIO,
        ContentType.ANIMATION,
        ContentType.DOCUMENT,
        ContentType.GAME,
        ContentType.LIVE_PHOTO,
        ContentType.PHOTO,
        ContentType.STICKER,
        ContentType.VIDEO,
        ContentType.VIDEO_NOTE,
        ContentType.VOICE,
        ContentType.CHECKLIST,
        ContentType.CONTACT,
        ContentType.VENUE,
        ContentType.LOCATION,
        ContentType.PAID_MEDIA,
        ContentType.POLL,
        ContentType.DICE,
        ContentType.STORY,
        ContentType.GIVEAWAY,
        ContentType.GIVEAWAY_WINNERS,
    }
)


async def sent_by_learner(message: Message) -> bool:
    """Content, not a service message; an empty text counts (`content_type` says unknown)."""
    return message.text is not None or message.content_type in SENT


async def group(message: Message) -> None:
    await message.reply(texts.GROUP_CHAT)


async def unknown_command(message: Message) -> None:
    await message.answer(texts.UNKNOWN_COMMAND)


async def unsupported(message: Message, cache: Cache, keys: Keys) -> None:
    album = message.media_group_id
    if album is not None and not await _first_of_album(message.chat.id, album, cache, keys):
        return
    await message.answer(texts.UNSUPPORTED_MEDIA)


async def _first_of_album(chat_id: int, album: str, cache: Cache, keys: Keys) -> bool:
    """Whether no other message of this album got the hint, on any replica.

    A chat's updates come in order, so the first one sets the mark; without Redis every
    message is answered (fail-open).
    """
    name = cache.full(keys.album(chat_id, album))
    results = await cache.batch(lambda pipe: pipe.set(name, b"1", nx=True, ex=ALBUM_TTL))
    return results is None or results[0] is not None


async def stale_button(query: CallbackQuery) -> None:
    await query.answer(texts.STALE_BUTTON, show_alert=True)


def create_router() -> Router:
    router = Router(name="fallback")
    router.message.register(group, GROUP, COMMAND)
    router.message.register(unknown_command, PRIVATE, COMMAND)
    router.message.register(unsupported, PRIVATE, sent_by_learner)
    router.callback_query.register(stale_button)
    return router
