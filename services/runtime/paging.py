"""Keyset paging shared by the services: an opaque cursor of (time, id) for lists sorted
newest first, and the page size rule."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import InvalidArgument


@dataclass(frozen=True)
class Cursor:
    """A keyset position (time, id) — newest first lists."""

    received_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.received_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            when, ident = raw.split("|", 1)
            return cls(datetime.fromisoformat(when), uuid.UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("cursor is not one this API gave out", field="cursor") from None


def page_size(limit: int, default: int = 50, maximum: int = 200) -> int:
    """The rows of a page: `limit`, or `default` when 0, at most `maximum`."""
    if limit < 0:
        raise InvalidArgument("limit must not be negative", field="limit")
    return min(limit or default, maximum)


def page(rows: list[Any], limit: int, at: str) -> tuple[list[Any], str]:
    """The first `limit` of `rows` (fetched `limit + 1`, newest first) and the cursor of
    the next page ("" when there is none), from the last row's `at` column and id."""
    if len(rows) <= limit:
        return rows, ""
    last = rows[limit - 1]
    return rows[:limit], Cursor(last[at], last["id"]).encode()
