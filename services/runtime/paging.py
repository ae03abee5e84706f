"""Keyset paging shared by the services: an opaque cursor of (time, id) for lists sorted
newest first, and the page size rule."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from .errors import InvalidArgument

T = TypeVar("T")


@dataclass(frozen=True)
class Cursor:
    """A keyset position (time, id) — newest first lists."""

    received_at: datetime
    id: uuid.UUID

    @classmethod
    def of(cls, at: Timestamp, id: str) -> Cursor:
        """The position of a message with a timestamp and an id (as repositories give)."""
        return cls(at.ToDatetime(tzinfo=UTC), uuid.UUID(id))

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


def page(rows: list[T], limit: int, cursor_of: Callable[[T], Cursor]) -> tuple[list[T], str]:
    """The first `limit` of `rows` (fetched `limit + 1`, newest first) and the cursor of
    the next page ("" when there is none), the position of the last row."""
    if len(rows) <= limit:
        return rows, ""
    return rows[:limit], cursor_of(rows[limit - 1]).encode()
