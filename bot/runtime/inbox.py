"""The polling inbox: every fetched update is in the database before Telegram forgets it.

`getUpdates` confirms a batch when the next call passes its offset, so the batch is written
(one INSERT) before that call, and a row is deleted once its update has finished and its
confirmation has come back (one DELETE per flush). Whatever is still there at start-up was
received and not finished: it is handled first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.models import InboxUpdate
from bot.runtime.parse import loads

Raw = dict[str, Any]


class Inbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert

    async def pending(self) -> list[Raw]:
        """Updates received before a stop and never finished, oldest first."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(InboxUpdate.payload).order_by(InboxUpdate.update_id))
            return [loads(payload) for (payload,) in rows]

    async def add(self, batch: Sequence[Raw]) -> set[int]:
        """Store a fetched batch; the ids that were new (a refetched update is not)."""
        if not batch:
            return set()
        rows = [{"update_id": int(raw["update_id"]), "payload": json.dumps(raw)} for raw in batch]
        statement = (
            self._insert(InboxUpdate)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["update_id"])
            .returning(InboxUpdate.update_id)
        )
        async with self.engine.begin() as conn:
            return {update_id for (update_id,) in await conn.execute(statement)}

    async def remove(self, update_ids: Sequence[int]) -> None:
        if not update_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(delete(InboxUpdate).where(InboxUpdate.update_id.in_(update_ids)))
