"""One learner's backlog: 80 text messages waiting when the bot fetches its updates.

    python -m bench.backlog [--quick]

The whole bot (`bot.app.run`, polling mode) against the Telegram and OpenAI stand-ins and the
machine's Redis. The learner is known (a /help first), then 80 numbered messages are queued at
once, so the bot receives them in one getUpdates page. Every message misses Honzík's cache (the
texts differ). Measured: whether the replies come in the order of the messages, and every Redis
command the process sends from the first message to the last reply (MULTI and EXEC count as
commands, a script as one), divided by the number of messages.

RATE_LIMIT_PER_MINUTE is raised so that no message of the backlog is refused.

Target: the backlog answered in order, at most 15 Redis commands per message.
"""

from __future__ import annotations

import re

from bench._common import HEARD, RedisWire, Result, cli
from bench._live import live_bot, quiet

LEARNER = 7301
TARGET = 15
NUMBERED = re.compile(re.escape(HEARD) + r"Zpráva (\d+)")


async def measure(quick: bool) -> list[Result]:
    count = 10 if quick else 80
    async with live_bot(rate_limit_per_minute=10**9) as live:
        tg = live.tg
        tg.send_command(LEARNER, "help")
        await tg.wait_for_method("sendMessage", chat_id=LEARNER, timeout=30)
        with RedisWire() as wire:
            wire.take()
            for number in range(1, count + 1):
                tg.send_text(LEARNER, f"Zpráva {number}: dneska jdu do kina s kamarádem.")

            def answers() -> list[int]:
                found = (NUMBERED.match(text) for text in tg.sent_messages(LEARNER))
                return [int(m.group(1)) for m in found if m]

            await tg.wait_for(lambda _: len(answers()) >= count, timeout=120)
            await quiet(lambda: len(wire.trips))
            trips = wire.take()
    order = answers()
    commands = sum(len(trip) for trip in trips)
    per_message = commands / count
    in_order = order == list(range(1, count + 1))
    return [
        Result(
            f"one learner's {count}-message backlog: in order",
            "in order" if in_order else f"out of order: {order}",
            in_order,
        ),
        Result(
            f"one learner's {count}-message backlog: ≤ {TARGET} Redis commands per message",
            f"{per_message:.1f} commands per message",
            per_message <= TARGET,
            f"{commands} commands in {len(trips)} round trips for {count} messages",
        ),
    ]


if __name__ == "__main__":
    cli(measure)
