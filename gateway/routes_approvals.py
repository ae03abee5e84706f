"""Approval routes of issue 17 (APR-1…5): requesting approval of a draft, the approvers'
queue, a request with its draft and the diff against what the author submitted,
decisions, cancelling, a draft's rounds, policies and "always needs approval" flags.
The approval service decides and checks everything (who may decide, self-approval, the
stage and revision seen, the policy's fields); documented in openapi.yaml."""

from __future__ import annotations

import asyncio

from aiohttp import web
from switchboard.v1 import approval_pb2, approval_pb2_grpc, composition_pb2

from services.runtime import ticket_names

from . import views_approval, views_compose
from .request import (
    deps,
    json_body,
    local_time,
    metadata,
    optional_body,
    query_int,
)
from .responses import json_response, no_content

A = approval_pb2
QUEUE_MAX = 500  # the service's largest page: the count of a queue longer than this is 500


def _stub(request: web.Request) -> approval_pb2_grpc.ApprovalServiceStub:
    return deps(request).approval


# -- requests ----------------------------------------------------------------------------


async def request_approval(request: web.Request) -> web.Response:
    body = await optional_body(request) or {}
    req = A.RequestApprovalRequest(
        draft_id=request.match_info["draft_id"], note=body.get("note") or ""
    )
    if body.get("send_at") is not None:
        req.send_at.CopyFrom(local_time(request, body["send_at"], "send_at"))
    if body.get("status_after") is not None:
        req.status_after = ticket_names.STATUS_VALUES[body["status_after"]]
    req.without_survey = body.get("without_survey") is True
    resp = await _stub(request).RequestApproval(req, metadata=metadata(request), timeout=15)
    return json_response(views_approval.approval(resp), status=201)


async def draft_approvals(request: web.Request) -> web.Response:
    """The draft's rounds, newest first."""
    resp = await _stub(request).ListHistory(
        A.ListHistoryRequest(draft_id=request.match_info["draft_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    rounds = [views_approval.approval(r) for r in reversed(resp.requests)]
    return json_response({"approvals": rounds})


async def _queue(request: web.Request) -> list[approval_pb2.ApprovalRequest]:
    resp = await _stub(request).ListQueue(
        A.ListQueueRequest(inbox_id=request.query.get("inbox_id", "")[:100], limit=QUEUE_MAX),
        metadata=metadata(request),
        timeout=15,
    )
    return list(resp.requests)


async def queue(request: web.Request) -> web.Response:
    """The caller's queue, oldest first: what they may decide now."""
    limit = query_int(request, "limit", default=100, low=1, high=QUEUE_MAX)
    found = await _queue(request)
    return json_response(
        {"approvals": [views_approval.approval(r) for r in found[:limit]], "count": len(found)}
    )


async def queue_count(request: web.Request) -> web.Response:
    return json_response({"count": len(await _queue(request))}, customer_data=False)


async def get_approval(request: web.Request) -> web.Response:
    """The request, its draft as the caller may see it (composition's own checks), and
    what changed from the author's submitted revision to the one bound (while pending:
    the draft's current one, with an approver's edits)."""
    md = metadata(request)
    found = await _stub(request).GetRequest(
        A.GetRequestRequest(request_id=request.match_info["approval_id"]), metadata=md, timeout=10
    )
    compose = deps(request).composition
    pending = found.state == A.REQUEST_STATE_PENDING
    submitted = found.submitted_revision or found.revision
    draft, diff = await asyncio.gather(
        compose.GetDraft(
            composition_pb2.GetDraftRequest(draft_id=found.draft_id), metadata=md, timeout=10
        ),
        compose.DiffDraft(
            composition_pb2.DiffDraftRequest(
                draft_id=found.draft_id,
                from_revision=submitted,
                to_revision=0 if pending else found.revision,
            ),
            metadata=md,
            timeout=15,
        ),
    )
    out = views_approval.approval(found)
    out["draft"] = views_compose.draft(draft)
    out["diff"] = {
        "from_revision": submitted,
        "to_revision": draft.current.revision if pending else found.revision,
        **views_compose.draft_diff(diff),
    }
    return json_response(out)


async def decide(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).Decide(
        A.DecideRequest(
            request_id=request.match_info["approval_id"],
            verdict=views_approval.VERDICT_VALUES[body["verdict"]],
            comment=body.get("comment") or "",
            stage=body["stage"],
            revision=body["revision"],
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(views_approval.approval(resp))


async def cancel(request: web.Request) -> web.Response:
    resp = await _stub(request).CancelRequest(
        A.CancelRequestRequest(request_id=request.match_info["approval_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(views_approval.approval(resp))


# -- policies, flags ---------------------------------------------------------------------


async def list_policies(request: web.Request) -> web.Response:
    resp = await _stub(request).ListPolicies(
        A.ListPoliciesRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {"policies": [views_approval.policy(p) for p in resp.policies]}, customer_data=False
    )


async def create_policy(request: web.Request) -> web.Response:
    write = views_approval.policy_write(await json_body(request))
    resp = await _stub(request).CreatePolicy(write, metadata=metadata(request), timeout=15)
    return json_response(views_approval.policy(resp), status=201, customer_data=False)


async def get_policy(request: web.Request) -> web.Response:
    resp = await _stub(request).GetPolicy(
        A.GetPolicyRequest(policy_id=request.match_info["policy_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_approval.policy(resp), customer_data=False)


async def update_policy(request: web.Request) -> web.Response:
    write = views_approval.policy_write(await json_body(request), request.match_info["policy_id"])
    resp = await _stub(request).UpdatePolicy(write, metadata=metadata(request), timeout=15)
    return json_response(views_approval.policy(resp), customer_data=False)


async def delete_policy(request: web.Request) -> web.Response:
    await _stub(request).DeletePolicy(
        A.DeletePolicyRequest(policy_id=request.match_info["policy_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def list_flags(request: web.Request) -> web.Response:
    resp = await _stub(request).ListOperatorFlags(
        A.ListOperatorFlagsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {"flags": [views_approval.flag(f) for f in resp.flags]}, customer_data=False
    )


async def put_flag(request: web.Request) -> web.Response:
    body = await json_body(request)
    flag = A.OperatorFlag(operator_id=request.match_info["operator_id"])
    if body.get("until") is not None:
        flag.until.CopyFrom(local_time(request, body["until"], "until"))
    resp = await _stub(request).SetOperatorFlag(flag, metadata=metadata(request), timeout=10)
    return json_response(views_approval.flag(resp), customer_data=False)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/drafts/{draft_id}/approval", request_approval)
    r.add_get("/api/v1/drafts/{draft_id}/approvals", draft_approvals)
    r.add_get("/api/v1/approvals", queue)
    r.add_get("/api/v1/approvals/count", queue_count)
    r.add_get("/api/v1/approvals/{approval_id}", get_approval)
    r.add_post("/api/v1/approvals/{approval_id}/decisions", decide)
    r.add_delete("/api/v1/approvals/{approval_id}", cancel)
    r.add_get("/api/v1/approval-policies", list_policies)
    r.add_post("/api/v1/approval-policies", create_policy)
    r.add_get("/api/v1/approval-policies/{policy_id}", get_policy)
    r.add_put("/api/v1/approval-policies/{policy_id}", update_policy)
    r.add_delete("/api/v1/approval-policies/{policy_id}", delete_policy)
    r.add_get("/api/v1/approval-flags", list_flags)
    r.add_put("/api/v1/operators/{operator_id}/approval-flag", put_flag)
