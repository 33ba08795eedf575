"""A TCP proxy that can cut a service off: what a database outage looks like from the bot.

`TcpProxy` listens on a free loopback port and forwards every connection to a target
(PostgreSQL on 127.0.0.1:5432 by default). `cut()` drops every open connection at once (RST,
as when the server dies) and then refuses new ones (the listening socket is closed, so a
connect gets ECONNREFUSED), or, with `refuse=False`, accepts and drops them at once.
`restore()` listens again on the same port. It runs in the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from tests.e2e.harness import free_port

CHUNK = 64 * 1024


class TcpProxy:
    def __init__(
        self,
        target_port: int = 5432,
        *,
        target_host: str = "127.0.0.1",
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port or free_port()
        self.cut_off = False
        self.accepted = 0
        """Connections accepted and forwarded since the start."""
        self.dropped = 0
        """Connections closed by `cut()` or turned away while cut (with `refuse=False`)."""
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    async def start(self) -> TcpProxy:
        await self._listen()
        return self

    async def stop(self) -> None:
        self._close_listener()
        self._drop_all()

    async def __aenter__(self) -> TcpProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def cut(self, *, refuse: bool = True) -> None:
        """Close every current connection; refuse new ones (or accept and drop them)."""
        self.cut_off = True
        if refuse:
            self._close_listener()
        self._drop_all()

    async def restore(self) -> None:
        """Forward again; listens again on the same port if `cut()` closed the listener."""
        self.cut_off = False
        if self._server is None:
            await self._listen()

    # ------------------------------------------------------------------ internals

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _drop_all(self) -> None:
        for link in list(self._links):
            link.drop()
            self.dropped += 1

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            self.dropped += 1
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        if self.cut_off:  # cut while we were connecting upstream
            _abort(writer)
            _abort(up_writer)
            return
        self.accepted += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
            )
        finally:
            self._links.discard(link)
            link.drop()


class _Link:
    """One proxied connection: the client side and the upstream side."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client, self.upstream = client, upstream

    def drop(self) -> None:
        _abort(self.client)
        _abort(self.upstream)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dead server's kernel would, without waiting."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()
