"""What the owners' export streams share (issue 19, DAT-1; tickets' ExportTickets and
ExportMessages, ingestion's ExportRawMails): the period asked, the keyset cursor over
(received_at, id), and the inboxes a stream may cover. I/O-free."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from switchboard.v1 import common_pb2

from .errors import InvalidArgument
from .identity import Identity

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def period_bounds(period: common_pb2.Period) -> tuple[datetime, datetime]:
    """[start, end) of a period; both required, end after start (INVALID_ARGUMENT)."""
    if not period.HasField("start"):
        raise InvalidArgument("the period needs a start", field="period.start")
    if not period.HasField("end"):
        raise InvalidArgument("the period needs an end", field="period.end")
    start = period.start.ToDatetime(tzinfo=UTC)
    end = period.end.ToDatetime(tzinfo=UTC)
    if end <= start:
        raise InvalidArgument("the period ends before it starts", field="period.end")
    return start, end


def micros(at: datetime) -> int:
    """Microseconds since the epoch, exactly (no float on the way)."""
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def encode_cursor(received_at: datetime, row_id: str) -> str:
    return f"{micros(received_at)}:{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    """The (received_at, id) after which a stream goes on; None for the start."""
    if not cursor:
        return None
    us, _, row_id = cursor.partition(":")
    try:
        return from_micros(int(us)), uuid.UUID(row_id)
    except (ValueError, OverflowError):
        raise InvalidArgument("not a cursor of this stream", field="cursor") from None


def inbox_scope(ident: Identity, wanted: Sequence[str]) -> list[uuid.UUID] | None:
    """The inboxes a stream covers: those asked (or every one: None), within those the
    caller sees; an empty list when that leaves none."""
    asked = [_inbox_id(i) for i in wanted]
    seen = ident.inbox_filter()
    if seen is None:
        return asked or None
    visible = {uuid.UUID(i) for i in seen if _is_uuid(i)}
    return [i for i in asked if i in visible] if asked else sorted(visible)


def _inbox_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument("not an inbox id", field="inbox_ids") from None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def prefetching(
    first: Awaitable[T], following: Callable[[T], Awaitable[T] | None]
) -> AsyncIterator[T]:
    """Batches of a stream, each next one fetched while the one before is being sent
    (`following(batch)`: the next batch's fetch, or None after the last)."""
    task: asyncio.Future[T] | None = asyncio.ensure_future(first)
    try:
        while task is not None:
            item = await task
            nxt = following(item)
            task = asyncio.ensure_future(nxt) if nxt is not None else None
            yield item
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def read_ahead(stream: AsyncIterable[T]) -> AsyncIterator[T]:
    """The items of a stream, each next one already asked for while the caller works on
    the one before (the receiving side of `prefetching`: a gRPC stream only takes in
    more while a read is pending)."""
    items = aiter(stream)
    task: asyncio.Future[T] = asyncio.ensure_future(anext(items))
    try:
        while True:
            try:
                item = await task
            except StopAsyncIteration:
                return
            task = asyncio.ensure_future(anext(items))
            yield item
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
