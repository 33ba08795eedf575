"""Streaks with freezes, as pure functions of what is stored on the learner's row.

A freeze is earned each time the streak reaches a multiple of FREEZE_EVERY days, at most
MAX_FREEZES banked. Each missed day spends one, so the streak survives; a frozen day adds
nothing to it. When more days were missed than freezes can cover, the streak is broken and
the freezes are kept: spending them could not save anything, and they were earned by practice.
Freezes are spent lazily: nothing is written on a missed day, `standing` works out what today
looks like and `advance` stores it on the next practice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

FREEZE_EVERY = 7
MAX_FREEZES = 2


@dataclass(frozen=True, slots=True)
class Standing:
    current: int  # the streak as it stands today (0 if broken)
    freezes: int  # freezes left once any missed days are paid for
    alive: bool
    at_risk: bool  # alive, not practised today, and no freeze left to cover today


def standing(current: int, freezes: int, last_active: dt.date | None, today: dt.date) -> Standing:
    """The streak today, with the days missed since `last_active` paid for by freezes."""
    if last_active is None or current <= 0:
        return Standing(current=0, freezes=freezes, alive=False, at_risk=False)
    if last_active >= today:
        return Standing(current=current, freezes=freezes, alive=True, at_risk=False)
    missed = (today - last_active).days - 1  # today itself is not missed yet
    if missed > freezes:
        return Standing(current=0, freezes=freezes, alive=False, at_risk=False)
    left = freezes - missed
    return Standing(current=current, freezes=left, alive=True, at_risk=left == 0)


def advance(
    current: int, best: int, freezes: int, last_active: dt.date | None, day: dt.date
) -> tuple[int, int, int]:
    """(current, best, freezes) after practising on `day`; a second practice the same day
    changes nothing."""
    if last_active is not None and last_active >= day:
        return current, best, freezes
    now = standing(current, freezes, last_active, day)
    streak = now.current + 1 if now.alive else 1
    banked = now.freezes
    if streak % FREEZE_EVERY == 0:
        banked = min(MAX_FREEZES, banked + 1)
    return streak, max(best, streak), banked
