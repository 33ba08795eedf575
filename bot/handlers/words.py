"""/save, /words and /review: the learner's own vocabulary with spaced repetition."""

from __future__ import annotations

import math

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.domain import LearnerSettings, Profile
from bot.handlers.filters import CommandIs
from bot.handlers.keyboards import (
    ReviewCb,
    WordDeleteCb,
    WordsPageCb,
    review_grades,
    review_show,
    words_pages,
)
from bot.services.words import Grade, ReviewQueue, WordCard, WordsService, parse_pair

PAGE_SIZE = 10


async def save(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    words: WordsService,
) -> None:
    pair = parse_pair(command.args or "")
    if pair is None:
        await message.answer(texts.SAVE_USAGE)
        return
    word, translation = pair
    if await words.save(session, profile, settings, word, translation):
        await message.answer(texts.WORD_SAVED.format(word=word, translation=translation))
    else:
        await message.answer(texts.WORD_EXISTS.format(word=word))


def _page(cards: list[WordCard], page: int) -> tuple[str, InlineKeyboardMarkup]:
    pages = max(1, math.ceil(len(cards) / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = cards[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    lines = [texts.WORDS_TITLE.format(count=len(cards), page=page, pages=pages)]
    lines += [texts.WORD_LINE.format(word=c.word, translation=c.translation) for c in shown]
    return "\n".join(lines), words_pages([(c.id, c.word) for c in shown], page, pages)


async def list_words(
    message: Message, session: AsyncSession, profile: Profile, words: WordsService
) -> None:
    cards = await words.all(session, profile)
    if not cards:
        await message.answer(texts.WORDS_EMPTY)
        return
    text, markup = _page(cards, 1)
    await message.answer(text, reply_markup=markup)


async def turn_page(
    query: CallbackQuery,
    callback_data: WordsPageCb,
    session: AsyncSession,
    profile: Profile,
    words: WordsService,
) -> None:
    cards = await words.all(session, profile)
    await query.answer()
    if cards and isinstance(query.message, Message):
        text, markup = _page(cards, callback_data.page)
        await query.message.edit_text(text, reply_markup=markup)


async def delete_word(
    query: CallbackQuery,
    callback_data: WordDeleteCb,
    session: AsyncSession,
    profile: Profile,
    words: WordsService,
) -> None:
    """🗑 under /words: someone else's, already deleted or forged ids get a short alert."""
    word = await words.delete(session, profile, callback_data.word_id)
    if word is None:
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    await query.answer(texts.WORD_DELETED.format(word=word))
    if not isinstance(query.message, Message):
        return
    cards = await words.all(session, profile)
    if cards:
        text, markup = _page(cards, callback_data.page)
        await query.message.edit_text(text, reply_markup=markup)
    else:
        await query.message.edit_text(texts.WORDS_EMPTY)


def _next_card(queue: ReviewQueue, finished: str) -> tuple[str, InlineKeyboardMarkup | None]:
    """The next card, or `finished` saying when words are due again; and how many new words
    wait for tomorrow."""
    waiting = ""
    if queue.waiting_new:
        words = texts.vocabulary_count(queue.waiting_new)
        waiting = "\n\n" + texts.NEW_WAITING.format(words=words)
    if queue.cards:
        card = queue.cards[0]
        text = texts.REVIEW_CARD.format(word=card.word, left=len(queue.cards))
        return text + waiting, review_show(card.id, card.mark)
    return finished.format(when=texts.when(queue.next_day, queue.today)) + waiting, None


async def review(
    message: Message,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    words: WordsService,
) -> None:
    if not await words.all(session, profile):
        await message.answer(texts.WORDS_EMPTY)
        return
    queue = await words.queue(session, profile, settings)
    text, markup = _next_card(queue, texts.REVIEW_NOTHING_DUE)
    await message.answer(text, reply_markup=markup)


async def review_button(
    query: CallbackQuery,
    callback_data: ReviewCb,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    words: WordsService,
) -> None:
    """Reveal or grade a card. Someone else's, deleted or forged cards get a short alert."""
    message = query.message if isinstance(query.message, Message) else None
    if callback_data.action == "show":
        card = await words.card(session, profile, callback_data.word_id)
        if card is None or message is None:
            await query.answer(texts.STALE_BUTTON, show_alert=True)
            return
        text = texts.revealed_card(card.word, card.translation, card.example)
        await query.answer()
        await message.edit_text(text, reply_markup=review_grades(card.id, callback_data.mark))
        return
    grade = Grade(callback_data.action)
    if not await words.grade(
        session, profile, settings, callback_data.word_id, callback_data.mark, grade
    ):
        await query.answer(texts.STALE_BUTTON, show_alert=True)
        return
    await query.answer()
    if message is not None:
        queue = await words.queue(session, profile, settings)
        text, markup = _next_card(queue, texts.REVIEW_DONE)
        await message.edit_text(text, reply_markup=markup)


def create_router() -> Router:
    router = Router(name="words")
    router.message.register(save, CommandIs("save"))
    router.message.register(list_words, CommandIs("words"))
    router.message.register(review, CommandIs("review"))
    router.callback_query.register(turn_page, WordsPageCb.filter())
    router.callback_query.register(delete_word, WordDeleteCb.filter())
    router.callback_query.register(review_button, ReviewCb.filter())
    return router
