"""Lifecycle and waiting machinery shared by the stand-in servers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from aiohttp import web

T = TypeVar("T")


class Pulse:
    """Wakes every waiter whenever server state changes.

    `notify()` is synchronous so plain helpers (enqueueing an update, recording a call)
    can wake long polls and `wait_for` loops without awaiting anything.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return after the next `notify()` or after `timeout` seconds, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


async def poll(pulse: Pulse, check: Callable[[], T | None], timeout: float) -> T | None:  # noqa: ASYNC109
    """Re-run `check` on every pulse until it returns non-None, or None after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (result := check()) is None:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        await pulse.wait(remaining)
    return result


async def wait_until(
    pulse: Pulse,
    check: Callable[[], T | None],
    timeout: float,  # noqa: ASYNC109
    describe: Callable[[], str],
) -> T:
    """Like `poll`, but a timeout fails the test with `describe()` (what was awaited and seen)."""
    result = await poll(pulse, check, timeout)
    if result is None:
        raise AssertionError(f"timed out after {timeout:g}s waiting for {describe()}")
    return result


def ogg_opus_seconds(data: bytes) -> float:
    """Playing time of an Ogg/Opus stream from its last granule position (0.0 if not Ogg/Opus)."""
    last, head = data.rfind(b"OggS"), data.find(b"OpusHead")
    if last < 0 or head < 0 or len(data) < last + 14 or len(data) < head + 12:
        return 0.0
    granule = int.from_bytes(data[last + 6 : last + 14], "little", signed=True)
    pre_skip = int.from_bytes(data[head + 10 : head + 12], "little")
    return max(0.0, (granule - pre_skip) / 48000)


class StandInServer:
    """An aiohttp app bound to 127.0.0.1 on an ephemeral port, usable as `async with`."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        raise NotImplementedError

    async def on_stop(self) -> None:
        """Hook to release pending handlers (e.g. long polls) before the runner shuts down."""

    @property
    def root_url(self) -> str:
        if self._runner is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"

    async def start(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self.on_stop()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def run_cli(
    parser: argparse.ArgumentParser, make: Callable[[argparse.Namespace], StandInServer]
) -> None:
    """Serve one stand-in until interrupted; prints its URL so a parent process can read it."""
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()

    async def serve() -> None:
        server = make(args)
        await server.start(args.port)
        print(f"listening on {server.root_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
