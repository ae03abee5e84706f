"""A small client of clamd's INSTREAM command (ClamAV's daemon), on asyncio streams.

The protocol (clamd(8)): send `zINSTREAM\\0`, then the data in chunks, each preceded by
its length as 4 bytes big-endian, then a zero-length chunk; clamd answers one line ending
in NUL: `stream: OK`, `stream: <signature> FOUND`, or `<reason> ERROR` (for instance
when the stream is longer than its StreamMaxLength). A connection per scan.

Why not a library: aioclamd, the one async client, speaks TCP only (no unix socket),
reads the data 1 KiB at a time through a thread each, and has no types; the protocol is
this small.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

CHUNK_BYTES = 64 * 1024
MAX_REPLY_BYTES = 4096


class ScanError(Exception):
    """clamd answered an error for this data (e.g. longer than its StreamMaxLength)."""


class ScannerDown(ScanError):
    """clamd could not be reached, or did not answer in time."""


@dataclass(frozen=True)
class Address:
    """Where clamd listens: `host:port` (`[::1]:3310` for IPv6), or a unix socket's path
    (absolute, or `unix:` before it)."""

    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> Address:
        text = text.strip()
        if text.startswith("unix:"):
            text = text[len("unix:") :]
            if not text:
                raise ValueError("a unix socket address needs a path")
            return cls(path=text)
        if text.startswith("/"):
            return cls(path=text)
        host, sep, port = text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"not host:port or a socket path: {text!r}")
        return cls(host=host, port=int(port))

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"


class Clamd:
    def __init__(self, address: Address, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.address = address
        self._chunk = chunk_bytes

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.address.path:
            return await asyncio.open_unix_connection(self.address.path)
        return await asyncio.open_connection(self.address.host, self.address.port)

    async def _call(self, parts: list[bytes | memoryview], timeout_s: float) -> str:
        """Send the command (and data), and read the one reply."""

        async def talk() -> bytes:
            reader, writer = await self._open()
            try:
                try:
                    for part in parts:
                        writer.write(part)
                        await writer.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # clamd may refuse a stream half-way: its reason is still to read
                return await reader.readuntil(b"\0")
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass

        try:
            reply = await asyncio.wait_for(talk(), timeout_s)
        except TimeoutError:
            raise ScannerDown(
                f"clamd at {self.address} did not answer within {timeout_s:g}s"
            ) from None
        except asyncio.IncompleteReadError:
            raise ScannerDown(f"clamd at {self.address} closed the connection") from None
        except asyncio.LimitOverrunError:
            raise ScanError(f"clamd at {self.address} answered too much") from None
        except OSError as exc:
            raise ScannerDown(f"clamd at {self.address}: {exc.strerror or exc}") from None
        if len(reply) > MAX_REPLY_BYTES:
            raise ScanError(f"clamd at {self.address} answered too much")
        return reply.rstrip(b"\0").decode("utf-8", "replace").strip()

    async def ping(self, timeout_s: float = 5.0) -> None:
        reply = await self._call([b"zPING\0"], timeout_s)
        if reply != "PONG":
            raise ScanError(f"clamd at {self.address} answered PING with {reply[:200]!r}")

    async def instream(self, data: bytes, timeout_s: float) -> str | None:
        """The signature clamd finds in `data`, or None when it finds none."""
        view = memoryview(data)
        parts: list[bytes | memoryview] = [b"zINSTREAM\0"]
        for pos in range(0, len(view), self._chunk):
            chunk = view[pos : pos + self._chunk]
            parts += [struct.pack(">I", len(chunk)), chunk]
        parts.append(struct.pack(">I", 0))
        reply = await self._call(parts, timeout_s)
        return verdict_of(reply)


def verdict_of(reply: str) -> str | None:
    """`stream: OK` → None; `stream: X FOUND` → "X"; anything else is an error."""
    if reply == "stream: OK":
        return None
    if reply.startswith("stream: ") and reply.endswith(" FOUND"):
        signature = reply[len("stream: ") : -len(" FOUND")].strip()
        if signature:
            return signature
    raise ScanError(f"clamd: {reply[:200]}")
