"""Answers written straight onto the connection, for faults aiohttp's responses cannot make.

aiohttp always frames a body (a ``Content-Length`` it enforces, or chunked encoding it ends
properly), so lies about length, cut-off bodies and resets are written here by hand. Every
such answer ends the connection, and says ``Connection: close`` so no client pools it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Mapping
from email.utils import formatdate

from aiohttp import web

from ._content import StoredObject
from ._ranges import Span

_CHUNK = 64 * 1024
_REASONS = {200: "OK", 206: "Partial Content"}


class RawAnswer:
    """One hand-written HTTP/1.1 answer on the request's own connection."""

    def __init__(self, request: web.Request) -> None:
        transport = request.transport
        if not isinstance(transport, asyncio.Transport):
            raise ConnectionResetError("the client has gone")
        self._transport = transport
        self._writer = request.writer
        self.chunked = False
        # With a zero high-water mark every drain() waits until the kernel holds all we
        # wrote, so a close or reset right after loses none of the promised bytes.
        transport.set_write_buffer_limits(high=0)

    async def head(self, status: int, headers: Mapping[str, str]) -> None:
        """The status line and headers (plus ``Date`` and ``Connection: close``)."""
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Date: {formatdate(usegmt=True)}", "Connection: close", "", ""]
        self.chunked = headers.get("Transfer-Encoding") == "chunked"
        await self._send("\r\n".join(lines).encode("latin-1"))

    async def body(self, stored: StoredObject, span: Span) -> None:
        """The object's bytes in ``span`` (as chunks if the head said chunked)."""
        for piece in stored.chunks(span.start, span.stop, size=_CHUNK):
            if self.chunked:
                piece = b"%x\r\n%b\r\n" % (len(piece), piece)
            await self._send(piece)

    async def _send(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise ConnectionResetError("the client has gone")
        self._transport.write(data)
        await self._writer.drain()

    def close(self) -> None:
        """End the connection cleanly (FIN) once the written bytes are out."""
        self._transport.close()

    def reset(self) -> None:
        """End the connection with a TCP RST: a zero linger time makes close() abortive."""
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._transport.abort()
