"""A learner's day: the local date and how long it has left, DST included."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from bot.domain import LearnerSettings


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands datetimes back without a zone; they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def zone_of(settings: LearnerSettings, default: ZoneInfo) -> ZoneInfo:
    return ZoneInfo(settings.timezone) if settings.timezone else default


def local_day(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    return moment.astimezone(zone).date()


def start_of(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The local midnight that starts `day`."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone)


def seconds_to_midnight(moment: dt.datetime, zone: ZoneInfo) -> int:
    """Whole seconds until the next local midnight; at least 1.

    Aware datetimes in one zone subtract as wall-clock times, which is wrong across a DST
    change, so both ends are converted to UTC first.
    """
    midnight = start_of(local_day(moment, zone) + dt.timedelta(days=1), zone)
    left = midnight.astimezone(dt.UTC) - moment.astimezone(dt.UTC)
    return max(1, math.ceil(left.total_seconds()))


def learner_today(settings: LearnerSettings, default: ZoneInfo) -> tuple[dt.date, int]:
    """The learner's local date now, and the seconds left in it."""
    moment = now()
    zone = zone_of(settings, default)
    return local_day(moment, zone), seconds_to_midnight(moment, zone)
