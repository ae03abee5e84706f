"""What approval's storage returns: frozen dataclasses, and the JSON shapes of a
policy's body and a request's copied stages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .policy import Approver, ApproverKind, Condition, ConditionKind, Policy, Stage
from .stages import PastDecision, RequestFacts, State, Verdict


def _approvers_json(approvers: Sequence[Approver]) -> list[dict[str, str]]:
    return [{"kind": a.kind.value, "id": a.id} for a in approvers]


def _approvers_of(raw: Sequence[Mapping[str, str]]) -> tuple[Approver, ...]:
    return tuple(Approver(ApproverKind(a["kind"]), a.get("id", "")) for a in raw)


def stages_data(stages: Sequence[Stage]) -> list[dict[str, Any]]:
    """The stages as JSONB (the pool's codec encodes them)."""
    return [
        {
            "name": s.name,
            "approvers": _approvers_json(s.approvers),
            "required": s.required,
            "deadline_minutes": s.deadline_minutes,
        }
        for s in stages
    ]


def stages_of(raw: Any) -> tuple[Stage, ...]:
    data = json.loads(raw) if isinstance(raw, str) else raw
    return tuple(
        Stage(s["name"], _approvers_of(s["approvers"]), s["required"], s["deadline_minutes"])
        for s in data
    )


def policy_body(p: Policy) -> dict[str, Any]:
    return {
        "stages": stages_data(p.stages),
        "conditions": [
            {"kind": c.kind.value, "values": list(c.values), "count": c.count} for c in p.conditions
        ],
        "skip": _approvers_json(p.skip),
        "allow_self_approval": p.allow_self_approval,
    }


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    policy: Policy
    updated_at: datetime


def policy_of(row: Mapping[str, Any]) -> StoredPolicy:
    body = json.loads(row["body"]) if isinstance(row["body"], str) else row["body"]
    policy = Policy(
        id=str(row["id"]),
        inbox_id=str(row["inbox_id"] or ""),
        name=row["name"],
        stages=stages_of(body["stages"]),
        conditions=tuple(
            Condition(ConditionKind(c["kind"]), tuple(c["values"]), c["count"])
            for c in body["conditions"]
        ),
        skip=_approvers_of(body["skip"]),
        allow_self_approval=body["allow_self_approval"],
        version=row["version"],
    )
    return StoredPolicy(policy, row["updated_at"])


@dataclass(frozen=True, slots=True)
class Flag:
    operator_id: str
    until: datetime
    set_by: str
    set_by_name: str


def flag_of(row: Mapping[str, Any]) -> Flag:
    return Flag(str(row["operator_id"]), row["until"], str(row["set_by"]), row["set_by_name"])


@dataclass(frozen=True, slots=True)
class Decision:
    stage: int
    approver_id: str
    approver_name: str
    verdict: Verdict
    comment: str
    revision: int
    decided_at: datetime

    def past(self) -> PastDecision:
        return PastDecision(
            self.stage, self.approver_id, self.approver_name, self.verdict, self.decided_at
        )


def decision_of(row: Mapping[str, Any]) -> Decision:
    return Decision(
        row["stage"],
        str(row["approver_id"]),
        row["approver_name"],
        Verdict(row["verdict"]),
        row["comment"],
        row["revision"],
        row["decided_at"],
    )


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    draft_id: str
    revision: int
    content_hash: str
    ticket_id: str
    inbox_id: str
    author_id: str
    author_name: str
    subject: str
    policy_id: str
    stages: tuple[Stage, ...]
    allow_self_approval: bool
    state: State
    stage: int
    note: str
    send_at: datetime | None
    status_after: int
    requested_at: datetime
    stage_started_at: datetime
    finished_at: datetime | None
    finished_by: str
    finished_by_name: str
    submitted_revision: int  # the author's, when requested (`revision` moves with decisions)
    without_survey: bool = False  # resolve without a satisfaction survey (OUT-5)

    def facts(self) -> RequestFacts:
        return RequestFacts(
            self.state,
            self.stage,
            self.stages,
            self.author_id,
            self.inbox_id,
            self.allow_self_approval,
            self.finished_by_name,
            self.finished_at,
        )


def request_of(row: Mapping[str, Any]) -> Request:
    return Request(
        id=str(row["id"]),
        draft_id=str(row["draft_id"]),
        revision=row["revision"],
        content_hash=row["content_hash"],
        ticket_id=str(row["ticket_id"] or ""),
        inbox_id=str(row["inbox_id"]),
        author_id=str(row["author_id"]),
        author_name=row["author_name"],
        subject=row["subject"],
        policy_id=str(row["policy_id"] or ""),
        stages=stages_of(row["stages"]),
        allow_self_approval=row["allow_self_approval"],
        state=State(row["state"]),
        stage=row["stage"],
        note=row["note"],
        send_at=row["send_at"],
        status_after=row["status_after"],
        requested_at=row["requested_at"],
        stage_started_at=row["stage_started_at"],
        finished_at=row["finished_at"],
        finished_by=str(row["finished_by"] or ""),
        finished_by_name=row["finished_by_name"],
        submitted_revision=row["submitted_revision"],
        without_survey=row["without_survey"],
    )
