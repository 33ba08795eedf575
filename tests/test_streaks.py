"""Streak freezes, as pure functions: earned every 7 days, at most 2, spent on missed days."""

from __future__ import annotations

import datetime as dt

from bot.services.streaks import MAX_FREEZES, Standing, advance, standing

MONDAY = dt.date(2026, 5, 4)


def day(offset: int) -> dt.date:
    return MONDAY + dt.timedelta(days=offset)


def practise(days: list[int]) -> tuple[int, int, int]:
    """(current, best, freezes) after practising on each of `days` (offsets from MONDAY)."""
    current, best, freezes, last = 0, 0, 0, None
    for offset in days:
        current, best, freezes = advance(current, best, freezes, last, day(offset))
        last = day(offset)
    return current, best, freezes


def test_a_freeze_is_earned_on_the_seventh_day_not_before() -> None:
    assert practise(list(range(6))) == (6, 6, 0)
    assert practise(list(range(7))) == (7, 7, 1)
    assert practise(list(range(13))) == (13, 13, 1)
    assert practise(list(range(14))) == (14, 14, 2)


def test_freezes_are_capped_at_two() -> None:
    assert practise(list(range(21))) == (21, 21, MAX_FREEZES)
    assert MAX_FREEZES == 2


def test_a_second_practice_the_same_day_changes_nothing() -> None:
    assert advance(7, 7, 1, day(6), day(6)) == (7, 7, 1)


def test_a_missed_day_spends_a_freeze_and_the_streak_survives() -> None:
    # Days 0..6 practised (a freeze earned), day 7 missed, back on day 8.
    assert practise([*range(7), 8]) == (8, 8, 0), "the frozen day adds nothing"


def test_without_a_freeze_a_missed_day_breaks_the_streak() -> None:
    assert practise([0, 1, 2, 4]) == (1, 3, 0)


def test_two_missed_days_spend_both_freezes() -> None:
    assert practise([*range(14), 16]) == (15, 15, 0)


def test_more_missed_days_than_freezes_start_over_and_keep_the_freezes() -> None:
    current, best, freezes = practise([*range(7), 10])
    assert (current, best, freezes) == (1, 7, 1)


def test_standing_today() -> None:
    # Practised today: safe.
    assert standing(5, 0, day(3), day(3)) == Standing(5, 0, alive=True, at_risk=False)
    # Practised yesterday: alive, and at risk without a freeze for today.
    assert standing(5, 0, day(2), day(3)) == Standing(5, 0, alive=True, at_risk=True)
    assert standing(5, 1, day(2), day(3)) == Standing(5, 1, alive=True, at_risk=False)
    # Missed yesterday: a freeze paid for it, none left for today.
    assert standing(8, 1, day(1), day(3)) == Standing(8, 0, alive=True, at_risk=True)
    # Missed more days than there are freezes: broken, freezes kept.
    assert standing(8, 1, day(0), day(3)) == Standing(0, 1, alive=False, at_risk=False)
    # Never practised.
    assert standing(0, 0, None, day(3)) == Standing(0, 0, alive=False, at_risk=False)
