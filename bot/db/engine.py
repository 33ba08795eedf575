"""The async engine and the session factory, one of each per process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import FromClause, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create the engine with settings that suit the backend.

    PostgreSQL gets pre-ping so a restarted database does not hand out dead connections.
    SQLite gets foreign keys switched on and a busy timeout, so cascades behave as on
    PostgreSQL and concurrent writers wait instead of failing.
    """
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": 15}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_timeout", 10)
    return create_async_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def end_read(session: AsyncSession) -> None:
    """Finish a read-only transaction so its pooled connection is free again.

    Called before slow upstream calls: a learner waiting seconds for OpenAI must not hold one
    of the pool's few connections meanwhile.
    """
    if session.in_transaction():
        await session.commit()


def upsert(session: AsyncSession, table: FromClause) -> Any:
    """INSERT … ON CONFLICT exists on both backends, but each dialect builds its own."""
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)
