"""The JSON of the live figures (RPT-5, RPT-7), the same for the REST answers and the
live socket's pushes: reporting answers per inbox (and per inbox × assignee); these keep
the inboxes the viewer may see and sum across them (docs: gateway/openapi.yaml,
LiveQueue / LiveAssignment)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import reporting_live_pb2 as pb

from .views import iso

Sees = Callable[[str], bool]


def _wait_seconds(at: pb.LiveQueue, since: Timestamp) -> int | None:
    if not since.seconds and not since.nanos:
        return None
    return max(0, int(at.at.seconds) - int(since.seconds))


def queue(resp: pb.LiveQueue, sees: Sees, inbox_id: str | None) -> dict[str, Any]:
    inboxes: list[dict[str, Any]] = []
    totals = {"waiting": 0, "late_total": 0, "near_breach": 0, "breached": 0}
    oldest: Timestamp | None = None
    for q in resp.inboxes:
        if not sees(q.inbox_id) or (inbox_id and q.inbox_id != inbox_id):
            continue
        late = [
            {"level": x.level, "after_minutes": x.after_minutes, "color": x.color, "count": x.count}
            for x in q.late
        ]
        late_total = sum(x.count for x in q.late)
        row: dict[str, Any] = {
            "inbox_id": q.inbox_id,
            "name": q.name,
            "waiting": q.waiting,
            "oldest_waiting_since": iso(q.oldest_waiting_since),
            "oldest_wait_seconds": _wait_seconds(resp, q.oldest_waiting_since),
            "late": late,
            "late_total": late_total,
            "near_breach": q.near_breach,
            "breached": q.breached,
        }
        inboxes.append(row)
        totals["waiting"] += q.waiting
        totals["late_total"] += late_total
        totals["near_breach"] += q.near_breach
        totals["breached"] += q.breached
        if q.waiting and (
            oldest is None or q.oldest_waiting_since.ToSeconds() < oldest.ToSeconds()
        ):
            oldest = q.oldest_waiting_since
    return {
        "at": iso(resp.at),
        "inbox_id": inbox_id or None,
        "inboxes": inboxes,
        "totals": {
            "waiting": totals["waiting"],
            "oldest_waiting_since": iso(oldest) if oldest is not None else None,
            "oldest_wait_seconds": _wait_seconds(resp, oldest) if oldest is not None else None,
            "late_total": totals["late_total"],
            "near_breach": totals["near_breach"],
            "breached": totals["breached"],
        },
    }


def assignment(resp: pb.LiveAssignment, sees: Sees, inbox_id: str | None) -> dict[str, Any]:
    counted = [i for i in resp.inboxes if sees(i.id) and (not inbox_id or i.id == inbox_id)]
    ids = {i.id for i in counted}
    people: dict[str, dict[str, Any]] = {}
    unassigned = {"open": 0, "pending": 0}
    for r in resp.rows:
        if r.inbox_id not in ids:
            continue
        if not r.operator_id:
            unassigned["open"] += r.open
            unassigned["pending"] += r.pending
            continue
        p = people.setdefault(
            r.operator_id,
            {"operator_id": r.operator_id, "display_name": r.display_name, "open": 0, "pending": 0},
        )
        p["open"] += r.open
        p["pending"] += r.pending
    assignees = sorted(
        people.values(),
        key=lambda p: (-(p["open"] + p["pending"]), p["display_name"].casefold(), p["operator_id"]),
    )
    return {
        "at": iso(resp.at),
        "inbox_id": inbox_id or None,
        "inboxes": [{"id": i.id, "name": i.name} for i in counted],
        "assignees": assignees,
        "unassigned": unassigned,
        "totals": {
            "open": unassigned["open"] + sum(p["open"] for p in assignees),
            "pending": unassigned["pending"] + sum(p["pending"] for p in assignees),
        },
    }
