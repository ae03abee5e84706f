"""The files of exports (issue 19, DAT-1) in the export directory, written so that a job
cut short at any moment (even by SIGKILL) ends up with the very same bytes when resumed:

- a CSV or an mbox is appended to `<id>.part`; its length is checkpointed with the
  stream's cursor, and a resumed job first cuts the file back to that length;
- so is a zip of .eml files (each entry stored, dated by the mail's received time, with
  fixed attributes — the bytes `zipfile` would write — a batch of entries at a time in one
  write); a resumed job cuts it back too, and finds the entries written before the
  checkpoint again by reading their local headers, so that the central directory written
  at the end (by `zipfile`) lists them all — the same mails always make the same zip;
- the file's SHA-256 is computed as it is written (a resumed job first reads back what it
  keeps), so finishing does not read the file again;
- the finished file is renamed to `<id>.<ext>` once complete."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from .direct_file import DirectAppender, refused

CHUNK = 1024 * 1024
SYNC_EVERY_S = 5.0
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip entry's local header (APPNOTE 4.3.7)
# an entry's central directory record (4.3.12), the end records (4.3.14–16), as zipfile's
_CENTRAL, _CENTRAL_SIG = struct.Struct("<4s4B4HL2L5H2L"), b"PK\x01\x02"
_END, _END_SIG = struct.Struct("<4s4H2LH"), b"PK\x05\x06"
_END64, _END64_SIG = struct.Struct("<4sQ2H2L4Q"), b"PK\x06\x06"
_LOCATOR, _LOCATOR_SIG = struct.Struct("<4sLQL"), b"PK\x06\x07"
_STAMP = re.compile(r"(\d{4})(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)", re.ASCII)  # an entry's time
_MODE = 0o644 << 16  # the entries' external attributes (rw-r--r--, from Unix)
_EXT = {"tickets_csv": "csv", "messages_csv": "csv", "eml_zip": "zip", "mbox": "mbox",
        "report_csv": "csv"}  # fmt: skip


class ExportFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def final(self, tenant_id: str, job_id: str, kind: str) -> Path:
        return self.root / tenant_id / f"{job_id}.{_EXT[kind]}"

    def part(self, tenant_id: str, job_id: str) -> Path:
        return self.root / tenant_id / f"{job_id}.part"


def open_resumed(path: Path, length: int) -> BinaryIO:
    """The partial file opened for appending, cut back to the checkpointed `length`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "r+b" if path.exists() else "w+b")
    f.truncate(length)
    f.seek(length)
    return f


def synced(f: BinaryIO) -> int:
    """Flush and fsync; the file's length, now on disk."""
    f.flush()
    os.fsync(f.fileno())
    return f.tell()


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def resumable(part: Path, length: int) -> bool:
    """Whether what a job wrote up to its checkpoint is still there."""
    return length == 0 or (part.exists() and part.stat().st_size >= length)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_zip_time(name))
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = _MODE
    return info


# an entry written: its name, CRC-32, size and the offset of its local header
_Written = tuple[str, int, int, int]


def _info(written: _Written) -> zipfile.ZipInfo:
    """An entry's ZipInfo, for the central directory."""
    name, crc, size, offset = written
    info = _entry(name)
    info.CRC, info.compress_size, info.file_size = crc, size, size
    info.header_offset = offset
    return info


def _local_header(name: str, crc: int, size: int) -> bytes:
    """A stored entry's local header as `ZipFile.writestr` writes it into a seekable file
    (tests/unit/test_export_files.py compares them); `zipfile`'s own for a huge one."""
    if size * 1.05 > zipfile.ZIP64_LIMIT:  # as writestr decides
        return _info((name, crc, size, 0)).FileHeader(True)
    raw = name.encode("ascii")
    dostime, dosdate = _dos_time(name)
    fixed = _LOCAL_HEADER.pack(
        b"PK\x03\x04", zipfile.DEFAULT_VERSION, 0, 0, zipfile.ZIP_STORED, dostime, dosdate,
        crc, size, size, len(raw), 0,
    )  # fmt: skip
    return fixed + raw


def _written_entries(f: BinaryIO, length: int) -> list[_Written]:
    """The entries of a zip cut at `length` (the end of an entry), from their local
    headers: as they were when written (all of them ours, stored, ASCII names)."""
    entries, offset = [], 0
    while offset < length:
        f.seek(offset)
        fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
        if fields[0] != b"PK\x03\x04":
            raise OSError(f"not a zip entry at {offset}")
        crc, size, name_len, extra_len = fields[7], fields[8], fields[10], fields[11]
        name = f.read(name_len).decode("ascii")
        entries.append((name, crc, size, offset))
        offset += _LOCAL_HEADER.size + name_len + extra_len + size
    return entries


class _Sink:
    """A partial file being written. `flushed()` hands what was written to the kernel —
    which a killed process does not lose — and `sync()` (when `sync_due()`, every
    SYNC_EVERY_S) puts it on the disk; after a crash of the machine, a file shorter than its
    checkpoint starts over. The SHA-256 of the file so far is kept up to date. Written with
    O_DIRECT where the file system allows it (direct_file.py), else through the cache."""

    def __init__(self, part: Path, length: int) -> None:
        self._f = open_resumed(part, length)
        self._sha = hashlib.sha256()
        self._f.seek(0)
        _hash_into(self._sha, self._f, length)
        self._f.seek(length)
        self._f.flush()
        self._direct = DirectAppender.open(part, length)
        self._synced_at = time.monotonic()

    def _write(self, data: bytes) -> None:
        self._write_all([data])

    def _write_all(self, pieces: Sequence[bytes | memoryview]) -> None:
        if self._direct is not None:
            sha = self._sha.copy()
            try:
                self._direct.write(pieces, self._sha.update)
                return
            except OSError as exc:
                if not refused(exc):
                    raise
                self._sha = sha
                self._cached()
        data = b"".join(pieces)
        self._sha.update(data)
        self._f.write(data)

    def _cached(self) -> None:
        """Go on through the page cache (the file system refused a direct write)."""
        assert self._direct is not None
        length = self._direct.length
        self._direct.close()
        self._direct = None
        self._f.truncate(length)
        self._f.seek(length)

    def _length(self) -> int:
        return self._direct.length if self._direct is not None else self._f.tell()

    def _done(self) -> tuple[int, str]:
        """Synced and closed: the file's size and SHA-256 (hex)."""
        if self._direct is not None:
            size = self._direct.length
            self._direct.sync()
            self._close()
        else:
            size = synced(self._f)
            self._f.close()
        return size, self._sha.hexdigest()

    def flushed(self) -> int:
        """The file's length now; call it before checkpointing that length."""
        if self._direct is not None:
            return self._direct.length
        self._f.flush()
        return self._f.tell()

    def sync_due(self) -> bool:
        return time.monotonic() - self._synced_at >= SYNC_EVERY_S

    def sync(self) -> None:
        if self._direct is not None:
            self._direct.sync()
        else:
            os.fsync(self._f.fileno())
        self._synced_at = time.monotonic()

    def _close(self) -> None:
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        self._f.close()

    def abandon(self) -> None:
        self._close()


class Appender(_Sink):
    """A CSV or an mbox appended to `part`, resumable at any checkpointed length."""

    def write(self, data: bytes) -> None:
        self._write(data)

    def finish(self) -> tuple[int, str]:
        """Sync and close; the file's size and SHA-256 (hex)."""
        return self._done()


class ZipAppender(_Sink):
    """A zip of mails written entry by entry into `part`, resumable at any entry's end."""

    def __init__(self, part: Path, length: int) -> None:
        super().__init__(part, length)
        self._entries = _written_entries(self._f, length)
        self._f.seek(length)

    def add(self, name: str, data: bytes) -> None:
        self.add_all([(name, data)])

    def add_all(self, mails: Iterable[tuple[str, bytes | memoryview]]) -> None:
        """Entries (name, bytes), stored, as `ZipFile.writestr` writes them into a seekable
        file — written together in one write."""
        offset = self._length()
        pieces: list[bytes | memoryview] = []
        for name, data in mails:
            crc, size = zlib.crc32(data), len(data)
            header = _local_header(name, crc, size)
            pieces += (header, data)
            self._entries.append((name, crc, size, offset))
            offset += len(header) + size
        self._write_all(pieces)

    def finish(self) -> tuple[int, str]:
        """Write the central directory (as `zipfile` writes it), sync and close; the
        file's size and SHA-256 (hex)."""
        self._write(central_directory(self._entries, self._length()))
        return self._done()


def central_directory(entries: list[_Written], start: int) -> bytes:
    """The central directory and end records of a zip of these stored entries, starting
    at `start`: the bytes `ZipFile.close()` writes (tests/unit/test_export_files.py
    compares them), packed here without a ZipInfo per entry."""
    pieces: list[bytes] = []
    for name, crc, size, offset in entries:
        if size > zipfile.ZIP64_LIMIT or offset > zipfile.ZIP64_LIMIT:
            pieces.append(_central_zip64(name, crc, size, offset))
            continue
        raw = name.encode("ascii")
        dostime, dosdate = _dos_time(name)
        record = _CENTRAL.pack(
            _CENTRAL_SIG, zipfile.DEFAULT_VERSION, 3, zipfile.DEFAULT_VERSION,
            0, 0, zipfile.ZIP_STORED, dostime, dosdate, crc, size, size, len(raw), 0, 0,
            0, 0, _MODE, offset,
        )  # fmt: skip
        pieces += (record, raw)
    size = sum(map(len, pieces))
    pieces.append(_end_records(len(entries), size, start))
    return b"".join(pieces)


def _central_zip64(name: str, crc: int, size: int, offset: int) -> bytes:
    """An entry's central record with its zip64 extra field (`zipfile`'s logic)."""
    extra: list[int] = []
    if size > zipfile.ZIP64_LIMIT:
        extra += (size, size)
    if offset > zipfile.ZIP64_LIMIT:
        extra.append(offset)
    data = struct.pack("<HH" + "Q" * len(extra), 1, 8 * len(extra), *extra)
    raw = name.encode("ascii")
    dostime, dosdate = _dos_time(name)
    stored = 0xFFFFFFFF if size > zipfile.ZIP64_LIMIT else size
    return _CENTRAL.pack(
        _CENTRAL_SIG, zipfile.ZIP64_VERSION, 3, zipfile.ZIP64_VERSION, 0, 0,
        zipfile.ZIP_STORED, dostime, dosdate, crc, stored, stored, len(raw), len(data), 0, 0,
        0, _MODE, 0xFFFFFFFF if offset > zipfile.ZIP64_LIMIT else offset,
    ) + raw + data  # fmt: skip


def _end_records(count: int, size: int, offset: int) -> bytes:
    """The end-of-archive records (zip64 ones first when needed), as `zipfile`'s."""
    out = b""
    if (
        count > zipfile.ZIP_FILECOUNT_LIMIT
        or offset > zipfile.ZIP64_LIMIT
        or (size > zipfile.ZIP64_LIMIT)
    ):
        out = _END64.pack(_END64_SIG, 44, 45, 45, 0, 0, count, count, size, offset)
        out += _LOCATOR.pack(_LOCATOR_SIG, 0, offset + size, 1)
        count, size, offset = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(offset, 0xFFFFFFFF)
    return out + _END.pack(_END_SIG, 0, 0, count, count, size, offset, 0)


def _dos_time(name: str) -> tuple[int, int]:
    """The MS-DOS (time, date) of an entry named `20261201-093000-…`, as `zipfile` packs
    its date_time (`_zip_time`)."""
    stamp = _STAMP.match(name)
    if stamp is None or stamp[1] < "1980":
        y, mo, d, h, mi, s = _zip_time(name)
    else:
        y, mo, d, h, mi, s = map(int, stamp.groups())
    return h << 11 | mi << 5 | s // 2, (y - 1980) << 9 | mo << 5 | d


def _zip_time(name: str) -> tuple[int, int, int, int, int, int]:
    """`20261201-093000-…` → (2026, 12, 1, 9, 30, 0); zip dates start in 1980."""
    d, t = name[:8], name[9:15]
    try:
        parts = (int(d[:4]), int(d[4:6]), int(d[6:8]), int(t[:2]), int(t[2:4]), int(t[4:6]))
    except ValueError:
        return (1980, 1, 1, 0, 0, 0)
    return parts if parts[0] >= 1980 else (1980, 1, 1, 0, 0, 0)


def _hash_into(sha: hashlib._Hash, f: BinaryIO, length: int) -> None:
    """The first `length` bytes from `f`'s position into `sha`."""
    while length > 0 and (chunk := f.read(min(CHUNK, length))):
        sha.update(chunk)
        length -= len(chunk)


def digest(path: Path) -> tuple[int, str]:
    """A file's size and SHA-256 (hex)."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        _hash_into(sha, f, path.stat().st_size)
        return f.tell(), sha.hexdigest()


def place(part: Path, final: Path) -> None:
    """Rename the complete (synced) file into place."""
    os.replace(part, final)
    sync_dir(final.parent)
