"""/stats: today, streaks, the last week, mistakes, totals, and a 14-day chart."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, Message
from aiogram.utils.chat_action import ChatActionMiddleware
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.domain import LearnerSettings, Profile, Scene
from bot.handlers.filters import CommandIs
from bot.services.chart import render_async
from bot.services.stats import StatsReport, StatsService
from bot.services.streaks import MAX_FREEZES

BAR_WIDTH = 10


def format_stats(report: StatsReport) -> str:
    today, progress = report.today, report.progress
    lines = [texts.STATS_TITLE, ""]
    if today.messages:
        lines.append(
            texts.STATS_TODAY.format(
                messages=texts.messages_count(today.messages),
                voice=today.voice_messages,
                words=texts.words_count(today.words_spoken),
                spoken=texts.duration(today.seconds_spoken),
            )
        )
        if today.average_score is not None:
            lines.append(
                texts.STATS_TODAY_SCORE.format(
                    score=round(today.average_score), new_words=today.new_words
                )
            )
    else:
        lines.append(texts.STATS_TODAY_EMPTY)
    lines.append("")
    best = texts.days_count(progress.best_streak)
    if progress.current_streak:
        current = texts.days_count(progress.current_streak)
        lines.append(texts.STATS_STREAK.format(current=current, best=best))
    elif progress.streak_broken:
        lines.append(texts.STATS_STREAK_BROKEN.format(best=best))
    else:
        lines.append(texts.STATS_STREAK_NONE)
    if progress.freezes:
        lines.append(texts.STATS_FREEZES.format(count=progress.freezes, most=MAX_FREEZES))
    elif progress.current_streak:
        lines.append(texts.STATS_FREEZES_NONE)
    if progress.mistakes:
        lines += ["", texts.STATS_MISTAKES]
        lines += [
            texts.STATS_MISTAKE.format(
                category=texts.MISTAKE_LABELS[trend.category],
                count=trend.count,
                original=trend.original,
                corrected=trend.corrected,
            )
            for trend in progress.mistakes
        ]
    lines += ["", texts.STATS_WEEK]
    top = max((day.messages for day in report.recent), default=0) or 1
    for day in report.recent:
        bar = "▮" * round(BAR_WIDTH * day.messages / top) or "·"
        lines.append(
            texts.STATS_DAY.format(day=texts.short_date(day.date), bar=bar, count=day.messages)
        )
    totals = progress.totals
    lines += [
        "",
        texts.STATS_TOTALS.format(
            messages=texts.messages_count(totals.messages),
            days=texts.days_count(totals.active_days),
            vocabulary=texts.vocabulary_count(totals.saved_words),
        ),
    ]
    if totals.average_score is not None:
        lines.append(texts.STATS_TOTALS_SCORE.format(score=round(totals.average_score)))
    lines.append(texts.STATS_SCENES.format(count=totals.scenes, total=len(Scene)))
    if progress.empty:
        lines += ["", texts.STATS_NO_CHART]
    return "\n".join(lines)


async def show_stats(
    message: Message,
    bot: Bot,
    session: AsyncSession,
    profile: Profile,
    settings: LearnerSettings,
    stats: StatsService,
) -> None:
    report = await stats.report(session, profile, settings)
    await message.answer(format_stats(report))
    if report.progress.empty:
        return  # an empty chart says nothing: the text ends with a friendly line instead
    uploaded = False

    async def upload() -> str | None:
        nonlocal uploaded
        uploaded = True
        png = await render_async(report.progress.days, texts.CHART_TITLE)
        photo = BufferedInputFile(png, filename="pokroky.png")
        sent = await bot.send_photo(message.chat.id, photo)
        return sent.photo[-1].file_id if sent.photo else None

    file_id = await stats.chart_file_id(profile, settings, upload)
    if uploaded or file_id is None:
        return
    try:
        await bot.send_photo(message.chat.id, file_id)
    except TelegramBadRequest:  # Telegram lost its copy: draw it again
        await stats.forget_chart(profile, settings)
        await stats.chart_file_id(profile, settings, upload)


def create_router() -> Router:
    router = Router(name="progress")
    router.message.middleware(ChatActionMiddleware())
    router.message.register(show_stats, CommandIs("stats"), flags={"chat_action": "upload_photo"})
    return router
