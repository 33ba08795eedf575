"""Daily reminders: when each is due, and which replica sends it, decided by the database.

A learner's next reminder is `user_settings.next_reminder_at` (UTC). Schedulers claim due
learners with `SELECT … FOR UPDATE SKIP LOCKED`, so replicas sharing one PostgreSQL never take
the same learner, and move the moment on to the next local day in the same transaction. The
claim is a `reminders` row, unique per learner and local day: whatever happens to the clock
or the settings, nobody gets two reminders on one day. The row is marked sent after Telegram
took the message; a claim whose process died before that is taken over after `STALE_CLAIM`,
still on the learner's same local day and outside quiet hours. (Telegram has no idempotency
key: a process killed between Telegram's answer and the mark re-sends that one reminder.)

SQLite has no row locks and ignores `FOR UPDATE`; it serves one process, which needs none.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cache import Cache, Keys
from bot.db.engine import upsert
from bot.db.models import Reminder, User, UserSettings
from bot.domain import LearnerSettings, Profile
from bot.services import days, streaks
from bot.services.users import UserService, to_profile, to_settings

QUIET_FROM = dt.time(22, 0)
QUIET_UNTIL = dt.time(8, 0)
# A claim not marked sent this long after it was made belongs to a process that died. Claims
# come in batches a scheduler sends in seconds, so this is far beyond a live one's pace.
STALE_CLAIM = dt.timedelta(minutes=5)


TIME = re.compile(r"([01]?\d|2[0-3])[:.h]?([0-5]\d)")


def parse_time(text: str) -> dt.time | None:
    """19:00, 19.00, 7:30 or 1900 as a time of day; None for anything else."""
    match = TIME.fullmatch(text.strip().lower())
    return dt.time(int(match[1]), int(match[2])) if match else None


@cache
def _zones() -> dict[str, str]:
    """Every IANA zone by its lower-case name and, for unambiguous cities, by the city."""
    names = available_timezones()
    by_name = {name.lower(): name for name in names}
    cities: dict[str, list[str]] = {}
    for name in names:
        cities.setdefault(name.rsplit("/", 1)[-1].lower(), []).append(name)
    by_city = {city: found[0] for city, found in cities.items() if len(found) == 1}
    return by_city | by_name


def find_zone(text: str) -> str | None:
    """An IANA zone as a learner types it: `Europe/Kyiv`, `europe/kyiv` or `Kyiv`."""
    return _zones().get(text.strip().lower().replace(" ", "_"))


def quiet(moment: dt.time) -> bool:
    """22:00–08:00 local: no reminder, even one that is late."""
    return moment >= QUIET_FROM or moment < QUIET_UNTIL


def next_at(at: dt.time, zone: ZoneInfo, after: dt.datetime) -> dt.datetime:
    """The first moment at or after `after` when the learner's clock shows `at`, in UTC.

    Built from the local date and time, then converted: a DST change moves the UTC moment,
    not the learner's hour.
    """
    local = after.astimezone(zone)
    day = local.date()
    for _ in range(3):
        moment = dt.datetime.combine(day, at, tzinfo=zone).astimezone(dt.UTC)
        if moment >= after:
            return moment
        day += dt.timedelta(days=1)
    raise AssertionError("a local time occurs every day")


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed reminder: whom to write to, in their language, and what to say."""

    reminder_id: int
    claimed_at: dt.datetime
    profile: Profile
    settings: LearnerSettings
    day: dt.date
    streak: streaks.Standing


@dataclass(frozen=True, slots=True)
class Batch:
    """Reminders to send now; `full`: the query hit its limit, so more may be due."""

    due: list[Due]
    full: bool


class ReminderService:
    def __init__(
        self, cache: Cache, keys: Keys, users: UserService, default_zone: ZoneInfo
    ) -> None:
        self.cache = cache
        self.keys = keys
        self.users = users
        self.default_zone = default_zone

    def zone(self, settings: LearnerSettings) -> ZoneInfo:
        return days.zone_of(settings, self.default_zone)

    async def remind_at(
        self,
        session: AsyncSession,
        profile: Profile,
        settings: LearnerSettings,
        at: dt.time | None,
    ) -> tuple[Profile, LearnerSettings]:
        """Set (or, with None, stop) the learner's daily reminder; the first one is today's if
        its minute is still ahead."""
        due = None if at is None else next_at(at, self.zone(settings), days.now())
        changes = {"reminder_time": at, "next_reminder_at": due}
        return await self.users.update(session, profile, changes, on_profile=False)

    async def move_to(
        self, session: AsyncSession, profile: Profile, settings: LearnerSettings, zone: str
    ) -> tuple[Profile, LearnerSettings]:
        """A new time zone: the learner's day, and their reminder's hour, follow it; what was
        cached for their old "today" (the review deck, the stats) is outdated."""
        changes: dict[str, object] = {"timezone": zone}
        if settings.reminder_time is not None:
            changes["next_reminder_at"] = next_at(
                settings.reminder_time, ZoneInfo(zone), days.now()
            )
        moved = await self.users.update(session, profile, changes, on_profile=False)
        keys = self.keys
        await self.cache.bump([keys.words_version(profile.id), keys.stats_version(profile.id)])
        return moved

    async def claim(self, session: AsyncSession, now: dt.datetime, limit: int) -> Batch:
        """Take up to `limit` due learners, move each one's reminder on, and claim the ones to
        send now; commits. Learners another scheduler holds are skipped, not waited for."""
        rows = (
            await session.execute(
                select(UserSettings, User)
                .join(User, User.id == UserSettings.user_id)
                .where(UserSettings.next_reminder_at <= now, User.blocked.is_(False))
                .order_by(UserSettings.next_reminder_at)
                .limit(limit)
                .with_for_update(skip_locked=True, of=UserSettings)
            )
        ).all()
        claimed: list[Due] = []
        for row, user in rows:
            assert row.reminder_time is not None and row.next_reminder_at is not None
            zone = days.zone_of(to_settings(row), self.default_zone)
            day = days.local_day(days.utc(row.next_reminder_at), zone)
            today = days.local_day(now, zone)
            if day < today:  # days the bot was down for are not made up: today's counts
                todays = next_at(row.reminder_time, zone, days.start_of(today, zone))
                if todays > now:
                    row.next_reminder_at = todays
                    continue
                day = today
            row.next_reminder_at = next_at(
                row.reminder_time, zone, max(now, days.start_of(day + dt.timedelta(days=1), zone))
            )
            if not self._sendable(user, day, now, zone):
                continue
            claim = (
                upsert(session, Reminder.__table__)
                .values(user_id=user.id, day=day, claimed_at=now)
                .on_conflict_do_nothing(index_elements=["user_id", "day"])
                .returning(Reminder.__table__.c.id)
            )
            reminder_id = (await session.execute(claim)).scalar()
            if reminder_id is not None:
                claimed.append(self._due(reminder_id, now, user, row, day))
        await session.commit()
        return Batch(claimed, full=len(rows) == limit)

    async def take_over(self, session: AsyncSession, now: dt.datetime, limit: int) -> Batch:
        """Claims left unsent by a process that died: sent now if still the learner's day and
        allowed, dropped otherwise (their day is over, or they practised meanwhile); commits."""
        rows = (
            await session.execute(
                select(Reminder, User, UserSettings)
                .join(User, User.id == Reminder.user_id)
                .join(UserSettings, UserSettings.user_id == User.id)
                .where(Reminder.sent_at.is_(None), Reminder.claimed_at < now - STALE_CLAIM)
                .order_by(Reminder.claimed_at)
                .limit(limit)
                .with_for_update(skip_locked=True, of=Reminder)
            )
        ).all()
        taken: list[Due] = []
        for reminder, user, settings in rows:
            zone = days.zone_of(to_settings(settings), self.default_zone)
            if settings.reminder_time is None or not self._sendable(user, reminder.day, now, zone):
                await session.delete(reminder)
                continue
            reminder.claimed_at = now
            taken.append(self._due(reminder.id, now, user, settings, reminder.day))
        await session.commit()
        return Batch(taken, full=len(rows) == limit)

    @staticmethod
    async def renew(session: AsyncSession, due: Due, now: dt.datetime) -> Due | None:
        """Right before sending: the claim, renewed to `now` if it is still ours. A batch slowed
        down (flood control) is thus never taken over mid-way as stalled; None: another
        scheduler took this one over, and sends it."""
        renewed = await session.scalar(
            update(Reminder)
            .where(
                Reminder.id == due.reminder_id,
                Reminder.sent_at.is_(None),
                Reminder.claimed_at == due.claimed_at,
            )
            .values(claimed_at=now)
            .returning(Reminder.id)
        )
        await session.commit()
        return replace(due, claimed_at=now) if renewed is not None else None

    @staticmethod
    async def sent(session: AsyncSession, reminder_id: int) -> None:
        await session.execute(
            update(Reminder).where(Reminder.id == reminder_id).values(sent_at=days.now())
        )
        await session.commit()

    async def blocked(self, session: AsyncSession, due: Due) -> None:
        """The learner blocked the bot: no reminders until they write again."""
        await session.execute(delete(Reminder).where(Reminder.id == due.reminder_id))
        await self.users.set_blocked(session, due.profile, True)

    def _sendable(self, user: User, day: dt.date, now: dt.datetime, zone: ZoneInfo) -> bool:
        local = now.astimezone(zone)
        return (
            not user.blocked
            and local.date() == day  # a day the bot was down for is not made up the next day
            and not quiet(local.time())
            and user.last_active_date != day  # they practised already: no need
        )

    @staticmethod
    def _due(
        reminder_id: int, claimed_at: dt.datetime, user: User, row: UserSettings, day: dt.date
    ) -> Due:
        return Due(
            reminder_id=reminder_id,
            claimed_at=claimed_at,
            profile=to_profile(user),
            settings=to_settings(row),
            day=day,
            streak=streaks.standing(
                user.current_streak, user.streak_freezes, user.last_active_date, day
            ),
        )
