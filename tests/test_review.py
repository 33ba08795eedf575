"""/review: Anki's SM-2 with learning steps, "Znovu" at the back, and 20 new words a day.

The scheduler is checked as a pure function and through the real dispatcher; time is frozen
with time_machine, so due times and "today"/"tomorrow" are exact.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from aiogram.methods import AnswerCallbackQuery, EditMessageText

from bot import texts
from bot.db.models import CardState, SavedWord
from bot.handlers.keyboards import ReviewCb
from bot.services import days
from bot.services.words import MIN_EASE, Grade, Schedule, answer, mark_of
from tests.conftest import WorldMaker
from tests.test_words import NOON, TODAY, TOMORROW, World, buttons, suggesting

UTC_NOON = NOON.astimezone(dt.UTC)
NEW = Schedule(CardState.NEW, 0, None, 2.5, 0, 0, TODAY)
PASSING = (Grade.HARD, Grade.GOOD, Grade.EASY)


@pytest.fixture
def world(make_world: WorldMaker[World]) -> World:
    return make_world(World)


@pytest.fixture
def frozen() -> Any:
    with time_machine.travel(NOON, tick=False) as traveller:
        yield traveller


def minutes(count: float) -> dt.datetime:
    return UTC_NOON + dt.timedelta(minutes=count)


def in_days(count: int) -> dt.date:
    return TODAY + dt.timedelta(days=count)


def review_card(interval: int, ease: float = 2.5, due: dt.date = TODAY) -> Schedule:
    return Schedule(CardState.REVIEW, 0, None, ease, interval, 3, due)


def mark(row: SavedWord) -> int:
    return mark_of(row.state, row.due_at, row.next_review)


def press(action: str, row: SavedWord) -> str:
    return ReviewCb(action=action, word_id=row.id, mark=mark(row)).pack()


def due_at(row: SavedWord) -> dt.datetime | None:
    return days.utc(row.due_at) if row.due_at else None


# ------------------------------------------------------------------ the scheduler


def test_a_new_cards_first_answer_steps_or_graduates_by_grade() -> None:
    again, hard, good, easy = (answer(NEW, g, UTC_NOON, TODAY) for g in Grade)
    assert (again.state, again.step, again.due_at) == (CardState.LEARNING, 0, minutes(1))
    assert (hard.state, hard.step, hard.due_at) == (CardState.LEARNING, 0, minutes(5.5))
    assert (good.state, good.step, good.due_at) == (CardState.LEARNING, 1, minutes(10))
    assert (easy.state, easy.interval_days, easy.next_review) == (CardState.REVIEW, 4, in_days(4))
    assert easy.due_at is None and easy.repetitions == 1
    assert {plan.ease_factor for plan in (again, hard, good, easy)} == {2.5}  # learning


def test_the_last_learning_step_graduates_on_good() -> None:
    second = answer(NEW, Grade.GOOD, UTC_NOON, TODAY)
    later = minutes(10)
    hard = answer(second, Grade.HARD, later, TODAY)
    assert (hard.state, hard.step, hard.due_at) == (
        CardState.LEARNING,
        1,
        later + (later - UTC_NOON),
    )
    good = answer(second, Grade.GOOD, later, TODAY)
    assert (good.state, good.interval_days, good.next_review) == (CardState.REVIEW, 1, TOMORROW)
    assert (good.due_at, good.repetitions, good.ease_factor) == (None, 1, 2.5)
    assert answer(second, Grade.EASY, later, TODAY).interval_days == 4
    again = answer(second, Grade.AGAIN, later, TODAY)
    assert (again.step, again.due_at) == (0, later + dt.timedelta(minutes=1))


def test_a_review_card_grows_by_grade_and_ease() -> None:
    card = review_card(10)
    hard, good, easy = (answer(card, g, UTC_NOON, TODAY) for g in PASSING)
    assert (hard.interval_days, hard.ease_factor) == (12, pytest.approx(2.35))
    assert (good.interval_days, good.ease_factor) == (25, pytest.approx(2.5))
    assert (easy.interval_days, easy.ease_factor) == (33, pytest.approx(2.65))  # 32.5 rounds up
    assert easy.next_review == in_days(33) and easy.repetitions == 4

    # Answered 4 days late: Good counts half the delay, Easy all of it, Hard none.
    late = review_card(10, due=TODAY - dt.timedelta(days=4))
    intervals = [answer(late, g, UTC_NOON, TODAY).interval_days for g in PASSING]
    assert intervals == [12, 30, 46]

    # Short intervals and a low ease still give three different days.
    short = review_card(1, ease=MIN_EASE)
    intervals = [answer(short, g, UTC_NOON, TODAY).interval_days for g in PASSING]
    assert intervals == [2, 3, 4]


def test_a_lapse_relearns_in_ten_minutes_and_comes_back_in_a_day() -> None:
    lapse = answer(review_card(30), Grade.AGAIN, UTC_NOON, TODAY)
    assert (lapse.state, lapse.step, lapse.due_at) == (CardState.RELEARNING, 0, minutes(10))
    assert (lapse.ease_factor, lapse.interval_days, lapse.repetitions) == (
        pytest.approx(2.3),
        1,
        0,
    )
    assert lapse.next_review is None

    later = minutes(10)
    assert answer(lapse, Grade.HARD, later, TODAY).due_at == later + dt.timedelta(minutes=15)
    assert answer(lapse, Grade.AGAIN, later, TODAY).due_at == later + dt.timedelta(minutes=10)
    good = answer(lapse, Grade.GOOD, later, TODAY)
    assert (good.state, good.interval_days, good.next_review) == (CardState.REVIEW, 1, TOMORROW)
    assert good.ease_factor == pytest.approx(2.3)  # relearning leaves the ease alone
    assert answer(lapse, Grade.EASY, later, TODAY).interval_days == 2


def test_the_ease_never_drops_below_the_minimum() -> None:
    card = review_card(5)
    for grade in [Grade.AGAIN, Grade.GOOD, Grade.HARD] * 10:
        card = answer(card, grade, UTC_NOON, TODAY)
        assert card.ease_factor >= MIN_EASE
    assert card.ease_factor == MIN_EASE == 1.3


# ------------------------------------------------------------------ /review


async def test_review_session_shows_reveals_steps_and_ends(world: World, frozen: Any) -> None:
    anna = await world.join(710)
    await world.talk(
        anna,
        suggesting(("pivo", "beer", "Dám si pivo."), ("nádraží", "station", "Kde je nádraží?")),
    )
    pivo, nadrazi = await world.rows(anna)

    card = await world.command(anna, "/review")
    assert card.text == texts.REVIEW_CARD.format(word="pivo", left=2)
    assert buttons(card.reply_markup) == [(texts.REVIEW_SHOW, press("show", pivo))]
    due_ttl = await world.redis.ttl(f"words:{anna.id}:due")
    assert 0 < due_ttl <= 3600

    await world.press(anna, press("show", pivo))
    shown = world.last_edit()
    assert shown.text == "\n".join(
        [
            texts.REVIEW_ANSWER.format(word="pivo", translation="beer"),
            texts.REVIEW_EXAMPLE.format(example="Dám si pivo."),
        ]
    )
    assert buttons(shown.reply_markup) == [
        (label, press(action, pivo)) for action, label in texts.GRADE_LABELS.items()
    ]

    # Good on a new card is its first learning step: it comes back after nádraží.
    await world.press(anna, press("good", pivo))
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="nádraží", left=2)
    await world.press(anna, press("good", nadrazi))
    (pivo, nadrazi) = await world.rows(anna)
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="pivo", left=2)
    assert (pivo.state, pivo.step, due_at(pivo)) == ("learning", 1, minutes(10))

    # Good on the last step graduates.
    await world.press(anna, press("good", pivo))
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="nádraží", left=1)
    await world.press(anna, press("good", nadrazi))
    done = world.last_edit()
    assert (done.text, done.reply_markup) == (texts.REVIEW_DONE.format(when=texts.TOMORROW), None)

    for row in await world.rows(anna):
        assert (row.state, row.interval_days, row.next_review, row.due_at) == (
            "review",
            1,
            TOMORROW,
            None,
        )
        assert row.introduced_on == TODAY
    again = await world.command(anna, "/review")
    assert again.text == texts.REVIEW_NOTHING_DUE.format(when=texts.TOMORROW)

    frozen.move_to(NOON + dt.timedelta(days=1))
    assert (await world.command(anna, "/review")).text == texts.REVIEW_CARD.format(
        word="pivo", left=2
    )


async def test_again_puts_the_card_after_the_sessions_other_cards(
    world: World, frozen: Any
) -> None:
    anna = await world.join(711)
    await world.add_words(anna, [("pivo", "beer"), ("voda", "water"), ("chleba", "bread")])
    pivo, voda, chleba = await world.rows(anna)
    assert (await world.command(anna, "/review")).text == texts.REVIEW_CARD.format(
        word="pivo", left=3
    )

    await world.press(anna, press("again", pivo))
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="voda", left=3)
    (pivo, _, _) = await world.rows(anna)
    assert (pivo.state, pivo.step, due_at(pivo)) == ("learning", 0, minutes(1))

    # Even once its minute is up, pivo waits until the rest of the session is done.
    frozen.shift(dt.timedelta(minutes=2))
    await world.press(anna, press("good", voda))
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="chleba", left=3)
    await world.press(anna, press("easy", chleba))
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="pivo", left=2)
    (pivo, voda, _) = await world.rows(anna)
    await world.press(anna, press("easy", pivo))
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="voda", left=1)


async def test_hard_good_and_easy_schedule_a_new_card_differently(
    world: World, frozen: Any
) -> None:
    anna = await world.join(717)
    await world.add_words(anna, [("pivo", "beer"), ("voda", "water"), ("chleba", "bread")])
    pivo, voda, chleba = await world.rows(anna)
    await world.command(anna, "/review")

    await world.press(anna, press("hard", pivo))
    await world.press(anna, press("good", voda))
    await world.press(anna, press("easy", chleba))

    pivo, voda, chleba = await world.rows(anna)
    assert (pivo.state, pivo.step, due_at(pivo)) == ("learning", 0, minutes(5.5))
    assert (voda.state, voda.step, due_at(voda)) == ("learning", 1, minutes(10))
    assert (chleba.state, chleba.interval_days, chleba.next_review) == ("review", 4, in_days(4))
    # The learning cards come back, the soonest due first.
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="pivo", left=2)

    frozen.shift(dt.timedelta(minutes=6))
    await world.press(anna, press("good", pivo))  # on to the 10-minute step
    assert world.last_edit().text == texts.REVIEW_CARD.format(word="voda", left=2)
    frozen.shift(dt.timedelta(minutes=5))
    await world.press(anna, press("good", voda))  # graduates
    await world.press(anna, press("easy", (await world.rows(anna))[0]))  # graduates
    done = world.last_edit().text
    assert done == texts.REVIEW_DONE.format(when=texts.TOMORROW)

    pivo, voda, chleba = await world.rows(anna)
    assert [(r.interval_days, r.next_review) for r in (pivo, voda, chleba)] == [
        (4, in_days(4)),
        (1, TOMORROW),
        (4, in_days(4)),
    ]


async def test_the_next_due_day_is_named_when_nothing_is_due(world: World, frozen: Any) -> None:
    anna = await world.join(718)
    await world.command(anna, "/save pivo - beer")
    (pivo,) = await world.rows(anna)
    await world.command(anna, "/review")

    await world.press(anna, press("easy", pivo))

    in_four = in_days(4)
    when = f"{in_four.day}.{in_four.month}."
    assert world.last_edit().text == texts.REVIEW_DONE.format(when=when)
    assert (await world.command(anna, "/review")).text == texts.REVIEW_NOTHING_DUE.format(when=when)


async def test_at_most_twenty_new_words_a_day(world: World, frozen: Any) -> None:
    anna = await world.join(719)
    names = [f"slovo{n:02}" for n in range(1, 26)]
    await world.add_words(anna, [(name, name) for name in names])
    waiting = "\n\n" + texts.NEW_WAITING.format(words=texts.vocabulary_count(5))

    first = await world.command(anna, "/review")
    assert first.text == texts.REVIEW_CARD.format(word="slovo01", left=20) + waiting

    rows = await world.rows(anna)
    for row in rows[:20]:
        frozen.shift(dt.timedelta(seconds=10))  # a learner's pace, within the rate limit
        await world.press(anna, press("easy", row))
    assert world.last_edit().text == texts.REVIEW_DONE.format(when=texts.TOMORROW) + waiting
    rows = await world.rows(anna)
    assert [row.introduced_on for row in rows] == [TODAY] * 20 + [None] * 5
    assert {row.state for row in rows[20:]} == {"new"}

    nothing = await world.command(anna, "/review")
    assert nothing.text == texts.REVIEW_NOTHING_DUE.format(when=texts.TOMORROW) + waiting

    # A forged button for a card beyond today's allowance changes nothing.
    edits = len(world.recorder.of(EditMessageText))
    await world.press(anna, press("good", rows[20]))
    stale: AnswerCallbackQuery = world.last_answer()
    assert (stale.text, stale.show_alert) == (texts.STALE_BUTTON, True)
    assert len(world.recorder.of(EditMessageText)) == edits
    assert (await world.rows(anna))[20].state == "new"

    # The next day brings the other five, and nothing waits any more.
    frozen.move_to(NOON + dt.timedelta(days=1))
    assert (await world.command(anna, "/review")).text == texts.REVIEW_CARD.format(
        word="slovo21", left=5
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

    await world.press(anna, press("show", pivo))

    shown = world.last_edit().text
    assert len(shown) <= 4096
    revealed = texts.REVIEW_ANSWER.format(word="pivo", translation="beer")
    assert shown.startswith(f"{revealed}\n💬 Dám si pivo. Dám si pivo.")
    assert shown.endswith(" si…")  # cut at a space


async def test_forged_or_stale_review_buttons_change_nothing(world: World, frozen: Any) -> None:
    anna = await world.join(712)
    bob = await world.join(713)
    await world.command(anna, "/save pivo - beer")
    await world.command(bob, "/save voda - water")
    (pivo,) = await world.rows(anna)
    (voda,) = await world.rows(bob)
    await world.command(anna, "/review")

    def schedules(rows: list[SavedWord]) -> list[tuple[Any, ...]]:
        return [
            (r.state, r.step, r.due_at, r.ease_factor, r.interval_days, r.next_review) for r in rows
        ]

    before = schedules([pivo, voda])
    edits_before = len(world.recorder.of(EditMessageText))

    forged = [
        press("good", voda),  # Bob's word
        press("show", voda),
        ReviewCb(action="easy", word_id=999_999, mark=0).pack(),  # no such word
        ReviewCb(action="show", word_id=999_999, mark=0).pack(),
        ReviewCb(action="good", word_id=pivo.id, mark=12345).pack(),  # not its schedule
        ReviewCb.model_construct(action="perfect", word_id=pivo.id, mark=0).pack(),
        f"rv:good:{pivo.id}:-1",
    ]
    for data in forged:
        await world.press(anna, data)
        stale = world.last_answer()
        assert (stale.text, stale.show_alert) == (texts.STALE_BUTTON, True), data

    assert len(world.recorder.of(AnswerCallbackQuery)) == len(forged)
    assert len(world.recorder.of(EditMessageText)) == edits_before
    assert schedules([*await world.rows(anna), *await world.rows(bob)]) == before


async def test_review_without_words_points_to_save(world: World, frozen: Any) -> None:
    anna = await world.join(714)
    assert (await world.command(anna, "/review")).text == texts.WORDS_EMPTY


async def test_an_old_grade_button_does_not_grade_a_card_twice(world: World, frozen: Any) -> None:
    anna = await world.join(715)
    await world.command(anna, "/save pivo - beer")
    (pivo,) = await world.rows(anna)
    await world.command(anna, "/review")
    good = press("good", pivo)

    await world.press(anna, good)  # the first learning step
    await world.press(anna, good)  # the same button again: it would graduate the card

    (row,) = await world.rows(anna)
    assert (row.state, row.step, due_at(row)) == ("learning", 1, minutes(10))
    stale = world.last_answer()
    assert (stale.text, stale.show_alert) == (texts.STALE_BUTTON, True)
