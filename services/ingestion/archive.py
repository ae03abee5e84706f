"""Splitting an import file into mails (DAT-2): a single .eml, an mbox, or a zip of .eml
files. Pure, no I/O beyond the bytes given.

Limits keep a hostile file from exhausting the machine: each member is read with a bounded
read (a zip bomb stops at the limit and is listed as a failure, never expanded), the
member count is capped, and nested archives are not opened.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

KINDS = ("eml", "mbox", "zip")


@dataclass(frozen=True)
class ImportLimits:
    max_message_bytes: int = 50 * 1024 * 1024
    max_members: int = 200_000
    max_total_bytes: int = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class Item:
    index: int
    name: str
    raw: bytes | None
    problem: str | None = None


class ArchiveError(Exception):
    """The file as a whole cannot be read (not a zip, empty …)."""


def detect(data: bytes, filename: str = "") -> str:
    """eml, mbox or zip, from the content first and the name second."""
    name = filename.lower()
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06" or name.endswith(".zip"):
        return "zip"
    if data.startswith(b"From ") or name.endswith((".mbox", ".mbx")):
        return "mbox"
    return "eml"


_FROM_LINE = re.compile(rb"^From ")
_QUOTED_FROM = re.compile(rb"^>(>*From )")


def split_mbox(data: bytes) -> Iterator[bytes]:
    """mboxo/mboxrd: a message starts at a line beginning with "From " (at the start of the
    file or after a blank line); ">From " lines are unquoted one level (mboxrd)."""
    current: list[bytes] | None = None
    previous_blank = True
    for line in data.splitlines(keepends=True):
        if _FROM_LINE.match(line) and previous_blank:
            if current is not None:
                yield _finish(current)
            current = []
            previous_blank = False
            continue
        if current is None:  # bytes before the first From line: not a message
            previous_blank = line.strip() == b""
            continue
        m = _QUOTED_FROM.match(line)
        current.append(line[1:] if m else line)
        previous_blank = line in (b"\n", b"\r\n")
    if current is not None:
        yield _finish(current)


def _finish(lines: list[bytes]) -> bytes:
    # The blank line that separates messages belongs to the mbox, not to the mail.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def items(data: bytes, kind: str, limits: ImportLimits | None = None) -> Iterator[Item]:
    """Every mail of the file, in a stable order, numbered from 0 (so a job can resume at
    an index). A mail that cannot be taken out is an Item with `problem` and no bytes."""
    lim = limits or ImportLimits()
    if kind not in KINDS:
        raise ArchiveError(f"unknown import kind {kind!r}")
    if not data:
        raise ArchiveError("the file is empty")
    if kind == "eml":
        yield _sized(0, "message.eml", data, lim)
        return
    if kind == "mbox":
        for i, raw in enumerate(split_mbox(data)):
            if i >= lim.max_members:
                yield Item(i, f"message {i + 1}", None, "more messages than an import may hold")
                return
            yield _sized(i, f"message {i + 1}", raw, lim)
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"not a readable zip file: {exc}") from None
    members = sorted((m for m in archive.infolist() if not m.is_dir()), key=lambda m: m.filename)
    total = 0
    for i, member in enumerate(members):
        name = member.filename
        if i >= lim.max_members:
            yield Item(i, name, None, "more files than an import may hold")
            return
        if not name.lower().endswith(".eml"):
            yield Item(i, name, None, "not an .eml file (skipped)")
            continue
        try:
            with archive.open(member) as f:
                raw = f.read(lim.max_message_bytes + 1)  # bounded: a bomb stops here
        # zipfile raises NotImplementedError for a member stored with a compression
        # method it does not support (e.g. deflate64): that member is listed, not fatal.
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
            yield Item(i, name, None, f"cannot be read from the zip: {exc}")
            continue
        total += len(raw)
        if total > lim.max_total_bytes:
            yield Item(i, name, None, "the archive expands beyond what an import may hold")
            return
        yield _sized(i, name, raw, lim)


def _sized(index: int, name: str, raw: bytes, lim: ImportLimits) -> Item:
    if not raw.strip():
        return Item(index, name, None, "empty message")
    if len(raw) > lim.max_message_bytes:
        return Item(index, name, None, f"larger than {lim.max_message_bytes} bytes")
    return Item(index, name, raw)
