"""/remind and /timezone, typed or by button, and noticing a learner who blocked the bot."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import KICKED, ChatMemberUpdatedFilter, CommandObject
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.domain import LearnerSettings, Profile
from bot.handlers.filters import CommandIs
from bot.handlers.keyboards import RemindCb, TimezoneCb, remind_choices, zone_choices
from bot.i18n import speaking_to
from bot.services import days
from bot.services.reminders import ReminderService, find_zone, parse_time, quiet
from bot.services.users import UserService

OFF = frozenset({"off", "vyp", "ne"})  # what a learner types to stop the reminders


def _clock(at: dt.time) -> str:
    return at.strftime("%H:%M")


def _reminder_state(reminders: ReminderService, settings: LearnerSettings) -> str:
    zone = reminders.zone(settings).key
    if settings.reminder_time is None:
        return texts.REMIND_NONE
    return texts.REMIND_CURRENT.format(time=_clock(settings.reminder_time), zone=zone)


async def _set_reminder(
    session: AsyncSession,
    reminders: ReminderService,
    profile: Profile,
    settings: LearnerSettings,
    at: dt.time | None,
) -> str:
    """Store the choice; the answer to give, in the learner's language."""
    if at is not None and quiet(at):
        return texts.REMIND_QUIET
    profile, settings = await reminders.remind_at(session, profile, settings, at)
    with speaking_to(profile, settings):
        if at is None:
            return texts.REMIND_OFF
        return texts.REMIND_SET.format(time=_clock(at), zone=reminders.zone(settings).key)


async def remind(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    reminders: ReminderService,
) -> None:
    raw = (command.args or "").strip().lower()
    if not raw:
        markup = remind_choices() if settings.reminder_time is None else None
        await message.answer(_reminder_state(reminders, settings), reply_markup=markup)
        return
    at = None if raw in OFF else parse_time(raw)
    if at is None and raw not in OFF:
        await message.answer(texts.REMIND_BAD, reply_markup=remind_choices())
        return
    await message.answer(await _set_reminder(session, reminders, profile, settings, at))


async def remind_button(
    query: CallbackQuery,
    callback_data: RemindCb,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    reminders: ReminderService,
) -> None:
    """A time from the buttons; at the end of /start, what to do next follows."""
    packed = callback_data.at
    at = None if packed == "off" else dt.time(int(packed[:2]), int(packed[2:]))
    answer = await _set_reminder(session, reminders, profile, settings, at)
    await query.answer()
    if not isinstance(query.message, Message):
        return
    await query.message.edit_text(answer)
    if callback_data.onboarding:
        await query.message.answer(texts.ONBOARDING_DONE)


def _now_in(zone: str) -> str:
    return days.now().astimezone(ZoneInfo(zone)).strftime("%H:%M")


async def timezone(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    reminders: ReminderService,
) -> None:
    current = reminders.zone(settings).key
    if not command.args:
        await message.answer(
            texts.TIMEZONE_CURRENT.format(zone=current, time=_now_in(current)),
            reply_markup=zone_choices(current),
        )
        return
    zone = find_zone(command.args)
    if zone is None:
        await message.answer(texts.TIMEZONE_UNKNOWN, reply_markup=zone_choices(current))
        return
    profile, settings = await reminders.move_to(session, profile, settings, zone)
    await message.answer(texts.TIMEZONE_SET.format(zone=zone, time=_now_in(zone)))


async def timezone_button(
    query: CallbackQuery,
    callback_data: TimezoneCb,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    reminders: ReminderService,
) -> None:
    await reminders.move_to(session, profile, settings, callback_data.zone)
    await query.answer()
    if isinstance(query.message, Message):
        zone = callback_data.zone
        await query.message.edit_text(texts.TIMEZONE_SET.format(zone=zone, time=_now_in(zone)))


async def blocked(
    _: ChatMemberUpdated, session: AsyncSession, users: UserService, profile: Profile
) -> None:
    """No more reminders; any update from them later (unblocking the bot sends one) is the
    learner back, and `UserService.context` lets reminders go out again."""
    await users.set_blocked(session, profile, True)


def create_router() -> Router:
    router = Router(name="reminders")
    router.message.register(remind, CommandIs("remind"))
    router.message.register(timezone, CommandIs("timezone"))
    router.callback_query.register(remind_button, RemindCb.filter())
    router.callback_query.register(timezone_button, TimezoneCb.filter())
    # In a group, "kicked" is the bot removed from the group by someone: no learner blocked it.
    router.my_chat_member.register(
        blocked, F.chat.type == "private", ChatMemberUpdatedFilter(member_status_changed=KICKED)
    )
    return router
