"""The 14-day activity chart sent with /stats, drawn with matplotlib off the event loop."""

from __future__ import annotations

import asyncio
import io

import matplotlib

matplotlib.use("Agg")  # no display: render straight to PNG bytes

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.services.stats import DayCount

BAR = "#d7141a"  # the red of the Czech flag
TODAY = "#11457e"  # and its blue


def render(days: list[DayCount], title: str) -> bytes:
    """A small PNG bar chart: messages per day, today highlighted, titled in the learner's
    language."""
    figure = Figure(figsize=(6, 2.6), dpi=110)
    axes = figure.subplots()
    labels = [f"{day.date.day}.{day.date.month}." for day in days]
    colors = [BAR] * (len(days) - 1) + [TODAY]
    axes.bar(range(len(days)), [day.messages for day in days], color=colors)
    axes.set_xticks(range(len(days)), labels, fontsize=7, rotation=45)
    axes.set_title(title, fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


async def render_async(days: list[DayCount], title: str) -> bytes:
    return await asyncio.to_thread(render, days, title)
