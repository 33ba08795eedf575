"""The learner's vocabulary: /save, /words with pages, and SM-2 review with /review.

Words Honzík suggests come from `ConversationService` with a stub Honzík (no OpenAI); time is
frozen with time_machine so "today", "tomorrow" and TTLs are exact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiogram import Bot, Dispatcher
from aiogram.methods import AnswerCallbackQuery, EditMessageText
from aiogram.types import InlineKeyboardMarkup
from fakeredis import FakeAsyncRedis
from sqlalchemy import select

from bot import texts
from bot.ai.schema import HonzikReply, NewWord
from bot.app import Resources
from bot.cache import keys_for
from bot.db.models import DailyStats, SavedWord
from bot.handlers.keyboards import ReviewCb, WordsPageCb
from bot.services.activity import save_words
from bot.services.words import MIN_EASE, Grade, parse_pair, schedule
from tests.support.recording import RecordingSession
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
        return (await self.say(learner, text, reply)).saved_words

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
def world(
    dp: Dispatcher,
    bot: Bot,
    resources: Resources,
    recorder: RecordingSession,
    fake_redis: FakeAsyncRedis,
) -> World:
    return World(dp, bot, resources, recorder, fake_redis, keys_for(resources.config))


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def buttons(markup: InlineKeyboardMarkup | None) -> list[tuple[str, str | None]]:
    assert markup is not None
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


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
    assert listing.reply_markup is None  # one page, no buttons
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
    assert buttons(first.reply_markup) == [(texts.NEXT, WordsPageCb(page=2).pack())]

    await world.press(anna, WordsPageCb(page=2).pack())
    second = world.last_edit()
    assert second.text.split("\n")[0] == texts.WORDS_TITLE.format(count=25, page=2, pages=3)
    assert [line.split(" ")[1] for line in word_lines(second.text)] == newest_first[10:20]
    assert buttons(second.reply_markup) == [
        (texts.PREVIOUS, WordsPageCb(page=1).pack()),
        (texts.NEXT, WordsPageCb(page=3).pack()),
    ]

    await world.press(anna, WordsPageCb(page=3).pack())
    third = world.last_edit()
    assert [line.split(" ")[1] for line in word_lines(third.text)] == newest_first[20:]
    assert buttons(third.reply_markup) == [(texts.PREVIOUS, WordsPageCb(page=2).pack())]

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


# ------------------------------------------------------------------ 10. SM-2


def test_schedule_first_second_and_third_pass() -> None:
    first = schedule(2.5, 0, 0, Grade.GOOD, TODAY)
    assert (first.interval_days, first.repetitions, first.next_review) == (1, 1, TOMORROW)
    assert first.ease_factor == pytest.approx(2.5)

    second = schedule(first.ease_factor, first.interval_days, first.repetitions, Grade.GOOD, TODAY)
    assert (second.interval_days, second.repetitions) == (6, 2)
    assert second.next_review == TODAY + dt.timedelta(days=6)

    third = schedule(second.ease_factor, 6, 2, Grade.GOOD, TODAY)
    assert (third.interval_days, third.repetitions) == (round(6 * 2.5), 3)
    assert third.next_review == TODAY + dt.timedelta(days=15)

    low = schedule(1.3, 6, 2, Grade.GOOD, TODAY)
    assert low.interval_days == round(6 * 1.3)


def test_schedule_grades_move_the_ease() -> None:
    assert schedule(2.5, 0, 0, Grade.EASY, TODAY).ease_factor == pytest.approx(2.6)
    assert schedule(2.5, 0, 0, Grade.HARD, TODAY).ease_factor == pytest.approx(2.36)
    hard = schedule(2.5, 1, 1, Grade.HARD, TODAY)
    assert (hard.interval_days, hard.repetitions) == (6, 2)  # HARD still passes


def test_schedule_ease_never_drops_below_the_minimum() -> None:
    ease, interval, repetitions = 2.5, 0, 0
    for grade in [Grade.AGAIN, Grade.HARD] * 10:
        plan = schedule(ease, interval, repetitions, grade, TODAY)
        assert plan.ease_factor >= MIN_EASE
        ease, interval, repetitions = plan.ease_factor, plan.interval_days, plan.repetitions
    assert ease == MIN_EASE == 1.3
    assert schedule(1.3, 0, 0, Grade.AGAIN, TODAY).ease_factor == 1.3


def test_schedule_again_starts_over_and_stays_due_today() -> None:
    again = schedule(2.5, 15, 3, Grade.AGAIN, TODAY)
    assert (again.repetitions, again.interval_days, again.next_review) == (0, 0, TODAY)
    relearned = schedule(
        again.ease_factor, again.interval_days, again.repetitions, Grade.GOOD, TODAY
    )
    assert (relearned.interval_days, relearned.next_review) == (1, TOMORROW)


# ------------------------------------------------------------------ 10. /review


async def test_review_session_shows_reveals_grades_and_ends(world: World, frozen: Any) -> None:
    anna = await world.join(710)
    await world.talk(
        anna,
        suggesting(("pivo", "beer", "Dám si pivo."), ("nádraží", "station", "Kde je nádraží?")),
    )
    pivo, nadrazi = await world.rows(anna)

    card = await world.command(anna, "/review")
    assert card.text == texts.REVIEW_CARD.format(word="pivo", left=2)
    assert buttons(card.reply_markup) == [
        (texts.REVIEW_SHOW, ReviewCb(action="show", word_id=pivo.id).pack())
    ]
    due_ttl = await world.redis.ttl(f"words:{anna.id}:due")
    assert 0 < due_ttl <= 3600

    await world.press(anna, ReviewCb(action="show", word_id=pivo.id).pack())
    shown = world.last_edit()
    assert shown.text == "\n".join(
        [
            texts.REVIEW_ANSWER.format(word="pivo", translation="beer"),
            texts.REVIEW_EXAMPLE.format(example="Dám si pivo."),
        ]
    )
    assert buttons(shown.reply_markup) == [
        (label, ReviewCb(action=action, word_id=pivo.id).pack())
        for action, label in texts.GRADE_LABELS.items()
    ]

    await world.press(anna, ReviewCb(action="good", word_id=pivo.id).pack())
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="nádraží", left=1)
    assert await world.redis.exists(f"words:{anna.id}:due") == 1

    await world.press(anna, ReviewCb(action="show", word_id=nadrazi.id).pack())
    await world.press(anna, ReviewCb(action="good", word_id=nadrazi.id).pack())
    done = world.last_edit()
    assert done.text == texts.REVIEW_DONE.format(when=texts.TOMORROW)
    assert done.reply_markup is None

    for row in await world.rows(anna):
        assert (row.repetitions, row.interval_days, row.next_review) == (1, 1, TOMORROW)
    again = await world.command(anna, "/review")
    assert again.text == texts.REVIEW_NOTHING_DUE.format(when=texts.TOMORROW)

    # Tomorrow both are due again.
    frozen.move_to(NOON + dt.timedelta(days=1))
    assert (await world.command(anna, "/review")).text == texts.REVIEW_CARD.format(
        word="pivo", left=2
    )


async def test_a_card_with_a_very_long_example_is_revealed_within_one_message(
    world: World, frozen: Any
) -> None:
    """The reveal edits the card, and an edit can't be split: the example is shortened."""
    anna = await world.join(716)
    example = "Dám si pivo. " * 415  # 5395 characters
    await world.talk(anna, suggesting(("pivo", "beer", example)))
    (pivo,) = await world.rows(anna)
    await world.command(anna, "/review")

    await world.press(anna, ReviewCb(action="show", word_id=pivo.id).pack())

    shown = world.last_edit().text
    assert len(shown) <= 4096
    answer = texts.REVIEW_ANSWER.format(word="pivo", translation="beer")
    assert shown.startswith(f"{answer}\n💬 Dám si pivo. Dám si pivo.")
    assert shown.endswith(" si…")  # cut at a space


async def test_again_keeps_the_card_in_todays_session(world: World, frozen: Any) -> None:
    anna = await world.join(711)
    await world.command(anna, "/save pivo - beer")
    (pivo,) = await world.rows(anna)
    await world.command(anna, "/review")

    await world.press(anna, ReviewCb(action="again", word_id=pivo.id).pack())
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="pivo", left=1)
    (row,) = await world.rows(anna)
    assert (row.repetitions, row.next_review) == (0, TODAY)
    assert row.ease_factor == pytest.approx(1.96)

    await world.press(anna, ReviewCb(action="easy", word_id=pivo.id).pack())
    assert world.last_edit().text == texts.REVIEW_DONE.format(when=texts.TOMORROW)


async def test_forged_or_stale_review_buttons_change_nothing(world: World, frozen: Any) -> None:
    anna = await world.join(712)
    bob = await world.join(713)
    await world.command(anna, "/save pivo - beer")
    await world.command(bob, "/save voda - water")
    (pivo,) = await world.rows(anna)
    (voda,) = await world.rows(bob)
    await world.command(anna, "/review")
    before = [(r.ease_factor, r.interval_days, r.repetitions, r.next_review) for r in (pivo, voda)]
    edits_before = len(world.recorder.of(EditMessageText))

    forged = [
        ReviewCb(action="good", word_id=voda.id),  # Bob's word
        ReviewCb(action="show", word_id=voda.id),
        ReviewCb(action="easy", word_id=999_999),  # no such word
        ReviewCb(action="show", word_id=999_999),
        ReviewCb.model_construct(action="perfect", word_id=pivo.id),  # no such grade
    ]
    for data in forged:
        await world.press(anna, data.pack())
        answer = world.last_answer()
        assert (answer.text, answer.show_alert) == (texts.STALE_BUTTON, True), data

    assert len(world.recorder.of(AnswerCallbackQuery)) == len(forged)
    assert len(world.recorder.of(EditMessageText)) == edits_before
    rows = [*await world.rows(anna), *await world.rows(bob)]
    assert [(r.ease_factor, r.interval_days, r.repetitions, r.next_review) for r in rows] == before


async def test_review_without_words_points_to_save(world: World, frozen: Any) -> None:
    anna = await world.join(714)
    assert (await world.command(anna, "/review")).text == texts.WORDS_EMPTY


async def test_an_old_grade_button_does_not_grade_a_card_twice(world: World, frozen: Any) -> None:
    anna = await world.join(715)
    await world.command(anna, "/save pivo - beer")
    (pivo,) = await world.rows(anna)
    await world.command(anna, "/review")
    good = ReviewCb(action="good", word_id=pivo.id).pack()

    await world.press(anna, good)
    assert world.last_edit().text == texts.REVIEW_DONE.format(when=texts.TOMORROW)
    await world.press(anna, good)  # the same button again

    (row,) = await world.rows(anna)
    assert (row.repetitions, row.interval_days, row.next_review) == (1, 1, TOMORROW)
    answer = world.last_answer()
    assert (answer.text, answer.show_alert) == (texts.STALE_BUTTON, True)
