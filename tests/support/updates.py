"""Build the updates a learner's Telegram app would send."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from aiogram.types import CallbackQuery, Chat, Message, Update, User

_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


def learner(user_id: int = 1001, **extra: Any) -> User:
    fields: dict[str, Any] = {
        "id": user_id,
        "is_bot": False,
        "first_name": "Anna",
        "username": f"anna{user_id}",
        "language_code": "en",
    }
    fields.update(extra)
    return User(**fields)


def message(
    text: str | None = None,
    *,
    user: User | None = None,
    chat_type: str = "private",
    **extra: Any,
) -> Update:
    sender = user or learner()
    chat_id = sender.id if chat_type == "private" else -100500
    return Update(
        update_id=next(_update_ids),
        message=Message(
            message_id=next(_message_ids),
            date=dt.datetime.now(dt.UTC),
            chat=Chat(id=chat_id, type=chat_type),
            from_user=sender,
            text=text,
            **extra,
        ),
    )


def callback(data: str, *, user: User | None = None) -> Update:
    sender = user or learner()
    origin = Message(
        message_id=next(_message_ids),
        date=dt.datetime.now(dt.UTC),
        chat=Chat(id=sender.id, type="private"),
        text="…",
    )
    return Update(
        update_id=next(_update_ids),
        callback_query=CallbackQuery(
            id=str(next(_update_ids)),
            from_user=sender,
            chat_instance="ci",
            message=origin,
            data=data,
        ),
    )
