"""Appending to an export's file without the page cache (issue 19, DAT-1): with O_DIRECT
each write goes from an aligned buffer of this process straight to the device — no copy
into the kernel's cache, which for a zip of a month of mail (1–1.5 GB) cost as much CPU
as everything else the worker does, and no other data pushed out of that cache.

A direct write starts and ends on a block boundary, so the file's last partial block is
kept here and written again in front of the next bytes, and the file is cut back to its
true length after each write (what lies past it until then is never read: a resumed job
cuts the file to its checkpoint first). A written block is on the device when the call
returns, so a killed process loses nothing it wrote; `fsync` still makes the length and
the device's own cache durable. Where the file system refuses O_DIRECT (tmpfs, some
network file systems), `DirectAppender.open` returns None and the caller writes as
usual."""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable, Sequence
from pathlib import Path

BLOCK = 4096  # a multiple of every device's logical block size and of the page size
_FIRST_BUFFER = 4 * 1024 * 1024


class DirectAppender:
    def __init__(self, fd: int, start: int, tail: bytes) -> None:
        self._fd = fd
        self._start = start  # where the buffer's first byte goes: a block boundary
        self._buf = mmap.mmap(-1, _FIRST_BUFFER)  # page-aligned, as O_DIRECT needs
        self._view = memoryview(self._buf)
        self._view[: len(tail)] = tail
        self._used = len(tail)

    @classmethod
    def open(cls, path: Path, length: int) -> DirectAppender | None:
        """An appender at `length` of the file, or None where O_DIRECT is refused."""
        flag = getattr(os, "O_DIRECT", 0)
        if not flag:
            return None
        try:
            fd = os.open(path, os.O_WRONLY | flag)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return None
            raise
        start = length - length % BLOCK
        with open(path, "rb") as f:
            f.seek(start)
            tail = f.read(length - start)
        return cls(fd, start, tail)

    @property
    def length(self) -> int:
        return self._start + self._used

    def write(
        self, pieces: Sequence[bytes | memoryview], seen: Callable[[memoryview], object]
    ) -> None:
        """Append the pieces in one write of whole blocks, once gathered handed all
        together to `seen` (a hash's update). OSError EINVAL: the file system refused the
        write; nothing changed but `seen`'s."""
        need = self._used + sum(map(len, pieces))
        if need + BLOCK > len(self._buf):
            self._grow(need + BLOCK)
        view, pos = self._view, self._used
        for piece in pieces:
            end = pos + len(piece)
            view[pos:end] = piece
            pos = end
        seen(view[self._used : pos])
        whole = -(-pos // BLOCK) * BLOCK
        done = 0
        while done < whole:
            done += os.pwrite(self._fd, view[done:whole], self._start + done)
        if pos != whole:
            os.ftruncate(self._fd, self._start + pos)
        keep = pos - pos % BLOCK  # the last partial block stays for the next write
        if keep:
            view[: pos - keep] = view[keep:pos]
        self._start, self._used = self._start + keep, pos - keep

    def _grow(self, size: int) -> None:
        size = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
        buf = mmap.mmap(-1, size)
        view = memoryview(buf)
        view[: self._used] = self._view[: self._used]
        self._view.release()
        self._buf.close()
        self._buf, self._view = buf, view

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        self._view.release()
        self._buf.close()
        os.close(self._fd)


def refused(exc: OSError) -> bool:
    """Whether a write failed because the file system refuses direct writes."""
    return exc.errno == errno.EINVAL
