"""Splitting import files: mbox quoting, zips of .eml, and the limits that keep a hostile
file (a zip bomb, a flood of members) from taking the machine down."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from services.ingestion.archive import ArchiveError, ImportLimits, detect, items, split_mbox

MAIL_A = b"From: a@x\nSubject: one\n\nbody one\n>From the start\n"
MAIL_B = b"From: b@x\nSubject: two\n\nbody two\n"


def test_mbox_is_split_and_mboxrd_quoting_undone() -> None:
    mbox = (
        b"From a@x Mon Jan  1 00:00:00 2024\n"
        + MAIL_A.replace(b"\n>From", b"\n>>From")
        + b"\nFrom b@x Mon Jan  1 00:00:01 2024\n"
        + MAIL_B
        + b"\n"
    )
    assert list(split_mbox(mbox)) == [MAIL_A, MAIL_B]
    assert detect(mbox) == "mbox"


def test_a_from_line_inside_a_body_without_blank_line_before_is_not_a_separator() -> None:
    mbox = b"From a@x Mon Jan  1 00:00:00 2024\nSubject: s\n\nline\nFrom here on\n"
    assert len(list(split_mbox(mbox))) == 1


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_of_eml_files_in_name_order_with_other_files_listed_as_skipped() -> None:
    data = _zip({"b.eml": MAIL_B, "a.EML": MAIL_A, "notes.txt": b"hello", "dir/empty.eml": b""})
    got = list(items(data, "zip"))
    assert [(i.name, i.raw, i.problem) for i in got] == [
        ("a.EML", MAIL_A, None),
        ("b.eml", MAIL_B, None),
        ("dir/empty.eml", None, "empty message"),
        ("notes.txt", None, "not an .eml file (skipped)"),
    ]
    assert [i.index for i in got] == [0, 1, 2, 3]
    assert detect(data, "x.zip") == "zip"


def test_a_zip_bomb_is_read_only_up_to_the_limit() -> None:
    bomb = _zip({"bomb.eml": b"\0" * (200 * 1024 * 1024)})  # 200 MiB of zeros, ~200 KB zipped
    assert len(bomb) < 1_000_000
    started = time.monotonic()
    [item] = list(items(bomb, "zip", ImportLimits(max_message_bytes=5 * 1024 * 1024)))
    assert item.raw is None and "larger than" in (item.problem or "")
    assert time.monotonic() - started < 5


def test_broken_and_empty_files_are_refused_clearly() -> None:
    with pytest.raises(ArchiveError, match="empty"):
        list(items(b"", "eml"))
    with pytest.raises(ArchiveError, match="zip"):
        list(items(b"PK\x03\x04 definitely not a zip", "zip"))
    many = _zip({f"{i:03}.eml": MAIL_A for i in range(30)})
    got = list(items(many, "zip", ImportLimits(max_members=10)))
    assert len(got) == 11 and got[-1].problem == "more files than an import may hold"
