"""The satisfaction surveys' comments (issue 20, OUT-5) as supervisors read them: from
reporting's `ratings` (the latest answer's comment, kept exactly once as the rating is),
newest answer first, paged by a cursor (`GET /api/v1/reports/satisfaction/comments`), and
the newest CSV_MAX of them as the satisfaction report's `comments` table (its CSV's last
section). A comment belongs to the range its survey counts in (`counted_at`: when it was
sent), as its rating does in the report."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.runtime.errors import InvalidArgument

from .periods import local_iso
from .report_model import Query, Table, Value

PAGE_DEFAULT, PAGE_MAX = 50, 200
CSV_MAX = 5000  # the report's CSV: the newest comments of the range (the list pages them all)
COLUMNS = ("answered_at", "ticket_number", "inbox_id", "inbox", "operator_id", "operator",
           "rating", "comment")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Comment:
    survey_id: uuid.UUID
    ticket_id: uuid.UUID
    ticket_number: int
    inbox_id: str
    operator_id: str  # "" nobody
    operator_name: str  # as the survey's events named them
    rating: int
    comment: str
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    start: datetime
    end: datetime
    inbox_ids: tuple[str, ...] | None  # None: every inbox of the tenant
    operator_id: uuid.UUID | None = None
    after: tuple[datetime, uuid.UUID] | None = None  # the cursor's position
    limit: int = PAGE_DEFAULT


def cursor_of(c: Comment) -> str:
    raw = json.dumps([c.answered_at.isoformat(), str(c.survey_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    """A page's next_cursor back; InvalidArgument (`cursor`) for anything else."""
    try:
        at, sid = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError(at)
        return when, uuid.UUID(sid)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("cursor is not one this list gave", field="cursor") from None


async def page(conn: asyncpg.Connection, tenant_id: str, p: Page) -> list[Comment]:
    after_at, after_id = p.after if p.after else (None, None)
    rows = await conn.fetch(
        """
        SELECT survey_id, ticket_id, ticket_number, inbox_id::text AS inbox_id,
               coalesce(operator_id::text, '') AS operator_id, operator_name, rating, comment,
               answered_at
        FROM ratings
        WHERE tenant_id = $1 AND comment <> '' AND rating IS NOT NULL
          AND counted_at >= $2 AND counted_at < $3
          AND ($4::uuid[] IS NULL OR inbox_id = ANY($4::uuid[]))
          AND ($5::uuid IS NULL OR operator_id = $5)
          AND ($6::timestamptz IS NULL OR (answered_at, survey_id) < ($6, $7::uuid))
        ORDER BY answered_at DESC, survey_id DESC
        LIMIT $8
        """,
        tenant_id,
        p.start,
        p.end,
        None if p.inbox_ids is None else list(p.inbox_ids),
        p.operator_id,
        after_at,
        after_id,
        p.limit,
    )
    return [Comment(**dict(r)) for r in rows]


def operator_name(c: Comment, names: Mapping[str, str]) -> str:
    return names.get(c.operator_id) or c.operator_name if c.operator_id else ""


def table(
    q: Query,
    comments: Sequence[Comment],
    operator_names: Mapping[str, str],
    inbox_names: Mapping[str, str],
) -> Table:
    """`comments`: the newest first, the time in the report's zone; nobody's operator null."""
    rows: list[tuple[Value, ...]] = [
        (
            local_iso(c.answered_at, q.range.zone),
            c.ticket_number,
            c.inbox_id,
            inbox_names.get(c.inbox_id, ""),
            c.operator_id or None,
            operator_name(c, operator_names) if c.operator_id else None,
            c.rating,
            c.comment,
        )
        for c in comments
    ]
    return Table("comments", COLUMNS, tuple(rows))
