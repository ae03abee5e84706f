"""The files of exports (issue 19, DAT-1) in the export directory, written so that a job
cut short at any moment (even by SIGKILL) ends up with the very same bytes when resumed:

- a CSV or an mbox is appended to `<id>.part`; its length is checkpointed with the
  stream's cursor, and a resumed job first cuts the file back to that length;
- a zip of .eml files is built from one file per mail in `<id>.d/`, named by its place in
  the stream; a resumed job deletes those past the checkpoint, and at the end the zip is
  assembled from them in order with fixed metadata (stored, the mail's received time), so
  the same mails always make the same zip;
- the finished file is renamed to `<id>.<ext>` once complete."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
_EXT = {"tickets_csv": "csv", "messages_csv": "csv", "eml_zip": "zip", "mbox": "mbox"}


class ExportFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def final(self, tenant_id: str, job_id: str, kind: str) -> Path:
        return self.root / tenant_id / f"{job_id}.{_EXT[kind]}"

    def part(self, tenant_id: str, job_id: str) -> Path:
        return self.root / tenant_id / f"{job_id}.part"

    def staging(self, tenant_id: str, job_id: str) -> Path:
        return self.root / tenant_id / f"{job_id}.d"


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


def staged_name(seq: int, name: str) -> str:
    return f"{seq:010d}_{name}"


def drop_staged_after(staging: Path, done: int) -> None:
    """A resumed zip job: forget the mails written after the last checkpoint."""
    staging.mkdir(parents=True, exist_ok=True)
    for entry in staging.iterdir():
        seq = entry.name.partition("_")[0]
        if not seq.isdigit() or int(seq) > done:
            entry.unlink()


def resumable(kind: str, part: Path, staging: Path, done: int, length: int) -> bool:
    """Whether what a job wrote up to its checkpoint is still there."""
    if kind == "eml_zip":
        if not staging.is_dir():
            return done == 0
        kept = sum(
            1 for e in staging.iterdir() if e.name[:10].isdigit() and int(e.name[:10]) <= done
        )
        return kept == done
    return length == 0 or (part.exists() and part.stat().st_size >= length)


def write_staged(staging: Path, seq: int, name: str, data: bytes) -> None:
    with open(staging / staged_name(seq, name), "wb") as f:
        f.write(data)


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def assemble_zip(staging: Path, target: Path) -> None:
    """The zip of the staged mails in order: stored (a mail's bytes as they are), each
    entry dated by its name's received time, no other varying metadata."""
    entries = sorted(staging.iterdir(), key=lambda p: p.name)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for path in entries:
            name = path.name.partition("_")[2]
            info = zipfile.ZipInfo(name, date_time=_zip_time(name))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())


def _zip_time(name: str) -> tuple[int, int, int, int, int, int]:
    """`20261201-093000-…` → (2026, 12, 1, 9, 30, 0); zip dates start in 1980."""
    d, t = name[:8], name[9:15]
    try:
        parts = (int(d[:4]), int(d[4:6]), int(d[6:8]), int(t[:2]), int(t[2:4]), int(t[4:6]))
    except ValueError:
        return (1980, 1, 1, 0, 0, 0)
    return parts if parts[0] >= 1980 else (1980, 1, 1, 0, 0, 0)


def digest(path: Path) -> tuple[int, str]:
    """A file's size and SHA-256 (hex)."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
        return f.tell(), sha.hexdigest()


def finish(part: Path, final: Path) -> tuple[int, str]:
    """Rename the complete file into place; its size and SHA-256 (hex)."""
    size, hexdigest = digest(part)
    os.replace(part, final)
    sync_dir(final.parent)
    return size, hexdigest


def remove_staging(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)
