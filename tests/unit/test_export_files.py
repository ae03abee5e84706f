"""Export files (issue 19, DAT-1): a zip is what `zipfile` writes; a zip or CSV cut short
after a checkpoint and resumed is byte-identical to one written in one go, with its
SHA-256; CSV times in any zone, across DST; the worker asks for an owner's next batch
while it writes one."""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from switchboard.v1 import tickets_pb2

from services.reporting import export_files as ef
from services.reporting.export_formats import CsvShape, eml_name, mbox_entry
from services.runtime.export_rows import micros, read_ahead


@pytest.fixture(autouse=True, params=["direct", "cached"])
def _writes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test with the file written with O_DIRECT and through the page cache (as where
    the file system refuses O_DIRECT)."""
    if request.param == "cached":
        monkeypatch.setattr(ef.DirectAppender, "open", classmethod(lambda cls, p, n: None))


def test_a_zip_written_in_odd_sized_batches_across_blocks_is_the_same_zip(tmp_path: Path) -> None:
    mails = [(eml_name(1_767_225_600 + i, f"b-{i}"), bytes([i % 251]) * (i * 977 % 9000))
             for i in range(60)]  # fmt: skip
    out = ef.ZipAppender(tmp_path / "a.part", 0)
    for i in range(0, 60, 7):
        out.add_all(mails[i : i + 7])
    cut = out.flushed()
    out.abandon()
    again = ef.ZipAppender(tmp_path / "a.part", cut)  # resumed mid-block
    size, sha = again.finish()
    theirs = io.BytesIO()
    with zipfile.ZipFile(theirs, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in mails:
            zf.writestr(ef._entry(name), data)
    assert (tmp_path / "a.part").read_bytes() == theirs.getvalue()
    assert (size, sha) == (len(theirs.getvalue()), hashlib.sha256(theirs.getvalue()).hexdigest())


MAILS = [(eml_name(1_767_225_600 + i, f"id-{i}"), f"mail {i}\r\n".encode() * (i + 1))
         for i in range(7)]  # fmt: skip


def _zip_in_one_go(path: Path) -> bytes:
    out = ef.ZipAppender(path, 0)
    out.add(*MAILS[0])
    out.add_all(MAILS[1:])
    assert out.finish() == ef.digest(path)
    return path.read_bytes()


def test_a_zip_is_what_zipfile_writes_for_the_same_entries(tmp_path: Path) -> None:
    ours = _zip_in_one_go(tmp_path / "ours.part")
    theirs = io.BytesIO()
    with zipfile.ZipFile(theirs, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, data in MAILS:
            zf.writestr(ef._entry(name), data)
    assert ours == theirs.getvalue()


class _At(io.BytesIO):
    """A file whose first byte is at `base` (zipfile writes its records as if there)."""

    def __init__(self, base: int) -> None:
        super().__init__()
        self.base = base

    def tell(self) -> int:
        return super().tell() + self.base

    def seek(self, pos: int, whence: int = 0) -> int:
        return super().seek(pos - self.base if whence == 0 else pos, whence) + self.base


def test_the_central_directory_is_zipfiles_with_zip64_offsets_sizes_and_counts() -> None:
    huge = zipfile.ZIP64_LIMIT + 7
    few = [("20260101-000000-a.eml", 1, 10, 0), ("20260101-000001-b.eml", 2, huge, 100),
           ("19700101-000000-c.eml", 3, 5, huge), ("odd.eml", 4, 6, huge + 50)]  # fmt: skip
    many = [(f"20260102-{i % 240000:06d}-{i}.eml", i, i % 9, i * 60) for i in range(70_000)]
    for entries, start in ((few, 2 * huge), (few, 5000), (many, 4_200_000)):
        theirs = _At(start)
        zf = zipfile.ZipFile(theirs, "w", zipfile.ZIP_STORED, allowZip64=True)
        zf.filelist.extend(map(ef._info, entries))
        zf.close()
        assert ef.central_directory(entries, start) == theirs.getvalue()


def test_a_zip_resumed_after_its_checkpoint_is_the_same_zip(tmp_path: Path) -> None:
    whole = _zip_in_one_go(tmp_path / "whole.part")
    part = tmp_path / "cut.part"
    out = ef.ZipAppender(part, 0)
    for name, data in MAILS[:3]:
        out.add(name, data)
    checkpoint = out.flushed()
    for name, data in MAILS[3:5]:  # written after the checkpoint, then killed
        out.add(name, data)
    out.abandon()
    assert part.stat().st_size > checkpoint

    resumed = ef.ZipAppender(part, checkpoint)
    resumed.add_all(MAILS[3:])
    assert resumed.finish() == (len(whole), hashlib.sha256(whole).hexdigest())
    assert part.read_bytes() == whole
    with zipfile.ZipFile(io.BytesIO(whole)) as zf:
        assert zf.testzip() is None
        assert [zf.read(n) for n in zf.namelist()] == [d for _, d in MAILS]


def test_a_csv_resumed_after_its_checkpoint_is_the_same_file(tmp_path: Path) -> None:
    part = tmp_path / "x.part"
    out = ef.Appender(part, 0)
    out.write(b"a,b\r\n")
    checkpoint = out.flushed()
    out.write(b"half a row")
    out.abandon()
    again = ef.Appender(part, checkpoint)
    again.write(b"1,2\r\n")
    assert again.finish() == (10, hashlib.sha256(b"a,b\r\n1,2\r\n").hexdigest())
    assert part.read_bytes() == b"a,b\r\n1,2\r\n"
    assert ef.resumable(part, checkpoint) and not ef.resumable(tmp_path / "gone", 5)


@pytest.mark.parametrize(
    ("tz", "at", "expected"),
    [
        ("UTC", datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "2026-03-08T07:00:00Z"),
        ("Asia/Tokyo", datetime(2026, 12, 31, 15, 0, tzinfo=UTC), "2027-01-01T00:00:00+09:00"),
        ("America/New_York", datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC),
         "2026-03-08T01:59:59-05:00"),
        ("America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "2026-03-08T03:00:00-04:00"),
        ("Asia/Kolkata", datetime(2026, 1, 1, tzinfo=UTC), "2026-01-01T05:30:00+05:30"),
    ],
)  # fmt: skip
def test_csv_times_in_the_zone_asked(tz: str, at: datetime, expected: str) -> None:
    batch = tickets_pb2.TicketExportBatch(received_at_us=[micros(at)], closed_at_us=[0])
    shape = CsvShape(("received_at", "closed_at"), tz)
    assert shape.rows(batch) == f"{expected},\r\n".encode()


def test_csv_cells_masked_and_kept_from_spreadsheet_formulas() -> None:
    batch = tickets_pb2.TicketExportBatch(
        subject=["=HYPERLINK(1)", "mail taro@example.com or 090-1234-5678"],
        from_address=["taro@example.com", "help@ours.example"],
        status=["open", "open"],
    )
    shape = CsvShape(("subject", "from_address", "status"), masked=True,
                     keep=frozenset({"help@ours.example"}))  # fmt: skip
    assert shape.header() == b"\xef\xbb\xbfsubject,from_address,status\r\n"
    assert shape.rows(batch).decode().splitlines() == [
        "'=HYPERLINK(1),t***@e***.com,open",
        "mail t***@e***.com or ***-****-**78,help@ours.example,open",
    ]


def test_an_mbox_entry_quotes_from_lines_and_ends_with_an_empty_line() -> None:
    raw = b"Subject: x\r\n\r\nFrom here\r\n>From there"
    entry = mbox_entry(raw, "a@example.com", datetime(2026, 1, 2, 3, 4, 5))
    assert entry == (
        b"From a@example.com Fri Jan 02 03:04:05 2026\n"
        b"Subject: x\r\n\r\n>From here\r\n>>From there\n\n"
    )


async def test_a_stream_read_ahead_is_asked_for_the_next_batch_while_one_is_written() -> None:
    asked: list[int] = []

    async def stream() -> AsyncIterator[int]:
        for i in range(3):
            asked.append(i)
            yield i

    seen = []
    async for item in read_ahead(stream()):
        await asyncio.sleep(0)  # the batch being written: the loop runs meanwhile
        seen.append((item, list(asked)))
    assert seen == [(0, [0, 1]), (1, [0, 1, 2]), (2, [0, 1, 2])]
