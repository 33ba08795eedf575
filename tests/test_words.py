"""The learner's vocabulary: /save, and /words with pages and a 🗑 button per word.

Words Honzík suggests come from `ConversationService` with a stub Honzík (no OpenAI); time is
frozen with time_machine so "today", "tomorrow" and TTLs are exact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiogram.methods import AnswerCallbackQuery, EditMessageText
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import select

from bot import texts
from bot.ai.schema import HonzikReply, NewWord
from bot.db.models import DailyStats, SavedWord
from bot.handlers.keyboards import WordDeleteCb, WordsPageCb
from bot.services.activity import save_words
from bot.services.words import parse_pair
from tests.conftest import WorldMaker
from tests.support.world import Learner, honzik_reply
from tests.support.world import World as BaseWorld

PRAGUE = ZoneInfo("Europe/Prague")
NOON = dt.datetime(2026, 5, 12, 12, 0, tzinfo=PRAGUE)
TODAY = NOON.date()
TOMORROW = TODAY + dt.timedelta(days=1)


# ------------------------------------------------------------------ helpers


def suggesting(*words: tuple[str, str, str]) -> HonzikReply:
    return honzik_reply(score=90, words=words, reply="Výborně!")


@dataclass
class World(BaseWorld):
    async def talk(self, learner: Learner, reply: HonzikReply, text: str = "Ahoj") -> list[str]:
        """A turn with /autosave on: Honzík's suggested words are saved at once."""
        saving = learner.settings.model_copy(update={"autosave": True})
        return (await self.say(replace(learner, settings=saving), text, reply)).saved_words

    async def add_words(self, learner: Learner, words: list[tuple[str, str]]) -> None:
        """Many words at once, as a writer would: one commit, then the version bump."""
        async with self.resources.sessionmaker() as session:
            new = [NewWord(word=w, translation=t, example="") for w, t in words]
            await save_words(session, learner.id, new, TODAY)
            await session.commit()
        await self.resources.cache.bump([self.keys.words_version(learner.id)])

    async def rows(self, learner: Learner) -> list[SavedWord]:
        async with self.resources.sessionmaker() as session:
            found = await session.scalars(
                select(SavedWord).where(SavedWord.user_id == learner.id).order_by(SavedWord.id)
            )
            return list(found)

    def last_edit(self) -> EditMessageText:
        return self.recorder.of(EditMessageText)[-1]  # type: ignore[no-any-return]

    def last_answer(self) -> AnswerCallbackQuery:
        return self.recorder.of(AnswerCallbackQuery)[-1]  # type: ignore[no-any-return]


@pytest.fixture
def world(make_world: WorldMaker[World]) -> World:
    return make_world(World)


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def buttons(markup: InlineKeyboardMarkup | None) -> list[tuple[str, str | None]]:
    assert markup is not None
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


def button_rows(markup: InlineKeyboardMarkup | None) -> list[list[tuple[str, str | None]]]:
    assert markup is not None
    return [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]


def delete_rows(
    rows: list[SavedWord], names: list[str], page: int
) -> list[list[tuple[str, str | None]]]:
    """The 🗑 rows a page of `names` shows, one button a row."""
    ids = {row.word: row.id for row in rows}
    return [[(f"🗑 {name}", WordDeleteCb(word_id=ids[name], page=page).pack())] for name in names]


def word_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.startswith("• ")]


# ------------------------------------------------------------------ 9. /save and /words


def test_parse_pair() -> None:
    assert parse_pair("pivo - beer") == ("pivo", "beer")
    assert parse_pair("  dobrý den – good day ") == ("dobrý den", "good day")
    assert parse_pair("kočka — cat") == ("kočka", "cat")
    assert parse_pair("pes=dog") == ("pes", "dog")
    assert parse_pair("nonsense") is None
    assert parse_pair("") is None
    assert parse_pair(" - beer") is None
    assert parse_pair("pivo - ") is None
    assert parse_pair("x" * 129 + " - long") is None


async def test_save_stores_a_word_once_and_explains_the_format(world: World, frozen: Any) -> None:
    anna = await world.join(701)

    saved = await world.command(anna, "/save pivo - beer")
    assert saved.text == texts.WORD_SAVED.format(word="pivo", translation="beer")
    again = await world.command(anna, "/save pivo - pivo")
    assert again.text == texts.WORD_EXISTS.format(word="pivo")
    for bad in ("/save nonsense", "/save"):
        assert (await world.command(anna, bad)).text == texts.SAVE_USAGE

    (row,) = await world.rows(anna)
    assert (row.word, row.translation, row.next_review, row.repetitions) == (
        "pivo",
        "beer",
        TODAY,
        0,
    )
    assert row.ease_factor == 2.5
    async with world.resources.sessionmaker() as session:
        daily = await session.scalar(select(DailyStats).where(DailyStats.user_id == anna.id))
    assert daily is not None and daily.new_words == 1  # the duplicate did not count


async def test_words_lists_newest_first_and_is_cached(world: World, frozen: Any) -> None:
    anna = await world.join(702)
    assert (await world.command(anna, "/words")).text == texts.WORDS_EMPTY

    for pair in ("pivo - beer", "chleba - bread", "voda - water"):
        await world.command(anna, f"/save {pair}")
    listing = await world.command(anna, "/words")

    assert listing.text.split("\n")[0] == texts.WORDS_TITLE.format(count=3, page=1, pages=1)
    assert word_lines(listing.text) == [
        texts.WORD_LINE.format(word="voda", translation="water"),
        texts.WORD_LINE.format(word="chleba", translation="bread"),
        texts.WORD_LINE.format(word="pivo", translation="beer"),
    ]
    rows = await world.rows(anna)
    # One page: a 🗑 row per word and no page buttons.
    assert button_rows(listing.reply_markup) == delete_rows(rows, ["voda", "chleba", "pivo"], 1)
    ttl = await world.redis.ttl(f"words:{anna.id}:all")
    assert 3590 <= ttl <= 3600


async def test_words_pages_through_25_words(world: World, frozen: Any) -> None:
    anna = await world.join(703)
    names = [f"slovo{n:02}" for n in range(1, 26)]
    await world.add_words(anna, [(name, f"word {name[-2:]}") for name in names])
    newest_first = names[::-1]

    first = await world.command(anna, "/words")
    assert first.text.split("\n")[0] == texts.WORDS_TITLE.format(count=25, page=1, pages=3)
    assert [line.split(" ")[1] for line in word_lines(first.text)] == newest_first[:10]
    rows = await world.rows(anna)
    assert button_rows(first.reply_markup) == [
        *delete_rows(rows, newest_first[:10], 1),
        [(texts.NEXT, WordsPageCb(page=2).pack())],
    ]

    await world.press(anna, WordsPageCb(page=2).pack())
    second = world.last_edit()
    assert second.text.split("\n")[0] == texts.WORDS_TITLE.format(count=25, page=2, pages=3)
    assert [line.split(" ")[1] for line in word_lines(second.text)] == newest_first[10:20]
    assert button_rows(second.reply_markup) == [
        *delete_rows(rows, newest_first[10:20], 2),
        [(texts.PREVIOUS, WordsPageCb(page=1).pack()), (texts.NEXT, WordsPageCb(page=3).pack())],
    ]

    await world.press(anna, WordsPageCb(page=3).pack())
    third = world.last_edit()
    assert [line.split(" ")[1] for line in word_lines(third.text)] == newest_first[20:]
    assert button_rows(third.reply_markup) == [
        *delete_rows(rows, newest_first[20:], 3),
        [(texts.PREVIOUS, WordsPageCb(page=2).pack())],
    ]

    # A page beyond the end (an old button after words were deleted) shows the last page.
    await world.press(anna, WordsPageCb(page=9).pack())
    assert world.last_edit().text.split("\n")[0] == texts.WORDS_TITLE.format(
        count=25, page=3, pages=3
    )


async def test_words_honzik_suggests_show_up_in_the_cached_list(world: World, frozen: Any) -> None:
    anna = await world.join(704)
    await world.command(anna, "/save pivo - beer")
    await world.command(anna, "/words")  # the list is cached now
    assert await world.redis.exists(f"words:{anna.id}:all") == 1

    saved = await world.talk(
        anna, suggesting(("nádraží", "station", "Kde je nádraží?"), ("pivo", "beer", "Pivo."))
    )
    assert saved == ["nádraží"]  # pivo was already there

    listing = await world.command(anna, "/words")
    assert word_lines(listing.text) == [
        texts.WORD_LINE.format(word="nádraží", translation="station"),
        texts.WORD_LINE.format(word="pivo", translation="beer"),
    ]


# ------------------------------------------------------------------ 🗑 in /words


async def test_the_delete_button_deletes_the_word_and_redraws_its_page(
    world: World, frozen: Any
) -> None:
    anna = await world.join(720)
    names = [f"slovo{n:02}" for n in range(1, 13)]
    await world.add_words(anna, [(name, f"word {name[-2:]}") for name in names])
    newest_first = names[::-1]
    await world.command(anna, "/words")  # both lists are cached now
    words_version = await world.redis.get(f"words:{anna.id}:version")
    stats_version = await world.redis.get(f"stats:{anna.id}:version")
    rows = {row.word: row.id for row in await world.rows(anna)}

    await world.press(anna, WordDeleteCb(word_id=rows["slovo02"], page=2).pack())

    answer = world.last_answer()
    assert (answer.text, answer.show_alert) == (
        texts.WORD_DELETED.format(word="slovo02"),
        None,
    )
    page = world.last_edit()
    assert page.text.split("\n")[0] == texts.WORDS_TITLE.format(count=11, page=2, pages=2)
    assert [line.split(" ")[1] for line in word_lines(page.text)] == ["slovo01"]
    assert button_rows(page.reply_markup) == [
        [("🗑 slovo01", WordDeleteCb(word_id=rows["slovo01"], page=2).pack())],
        [(texts.PREVIOUS, WordsPageCb(page=1).pack())],
    ]
    assert "slovo02" not in [row.word for row in await world.rows(anna)]
    assert await world.redis.get(f"words:{anna.id}:version") != words_version
    assert await world.redis.get(f"stats:{anna.id}:version") != stats_version
    listing = await world.command(anna, "/words")  # not the cached list from before
    assert [line.split(" ")[1] for line in word_lines(listing.text)] == [
        name for name in newest_first if name != "slovo02"
    ][:10]

    # Deleting the only word left on the last page shows the page before it.
    await world.press(anna, WordDeleteCb(word_id=rows["slovo01"], page=2).pack())
    assert world.last_edit().text.split("\n")[0] == texts.WORDS_TITLE.format(
        count=10, page=1, pages=1
    )


async def test_deleting_the_last_word_says_the_list_is_empty(world: World, frozen: Any) -> None:
    anna = await world.join(721)
    await world.command(anna, "/save pivo - beer")
    (pivo,) = await world.rows(anna)

    await world.press(anna, WordDeleteCb(word_id=pivo.id, page=1).pack())

    edit = world.last_edit()
    assert (edit.text, edit.reply_markup) == (texts.WORDS_EMPTY, None)
    assert await world.rows(anna) == []


async def test_a_forged_or_stale_delete_button_deletes_nothing(world: World, frozen: Any) -> None:
    anna = await world.join(722)
    bob = await world.join(723)
    await world.command(anna, "/save pivo - beer")
    await world.command(bob, "/save voda - water")
    (pivo,) = await world.rows(anna)
    (voda,) = await world.rows(bob)
    await world.press(anna, WordDeleteCb(word_id=pivo.id, page=1).pack())
    edits_before = len(world.recorder.of(EditMessageText))

    for data in (
        WordDeleteCb(word_id=voda.id, page=1).pack(),  # Bob's word
        WordDeleteCb(word_id=pivo.id, page=1).pack(),  # already deleted
        WordDeleteCb(word_id=999_999, page=1).pack(),  # no such word
        "wdel:0:1",  # no id a row can have: fails unpack
        "wdel:abc:1",
    ):
        await world.press(anna, data)
        answer = world.last_answer()
        assert (answer.text, answer.show_alert) == (texts.STALE_BUTTON, True), data

    assert len(world.recorder.of(EditMessageText)) == edits_before
    assert [row.word for row in await world.rows(bob)] == ["voda"]
    bobs = await world.command(bob, "/words")
    assert word_lines(bobs.text) == [texts.WORD_LINE.format(word="voda", translation="water")]
