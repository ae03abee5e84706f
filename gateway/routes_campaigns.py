"""Campaigns (issue 20, OUT-6): create, change, schedule, pause, resume, cancel; the
recipients and their states; a preview of the rendered mail. Outbound's CampaignsService
checks and keeps everything (`manage_outreach`); documented in openapi.yaml."""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import web
from switchboard.v1 import outbound_campaigns_pb2 as pb
from switchboard.v1 import outbound_campaigns_pb2_grpc as pb_grpc

from .errors import ApiError
from .request import deps, json_body, metadata, query_int, timestamp
from .responses import json_response, no_content
from .views import iso

_STUBS: weakref.WeakKeyDictionary[Any, pb_grpc.CampaignsServiceStub] = (
    weakref.WeakKeyDictionary()
)  # per outbound channel
TOTALS = ("recipients", "queued", "sent", "failed", "bounced", "replied", "unsubscribed")


def _stub(request: web.Request) -> pb_grpc.CampaignsServiceStub:
    channel = deps(request).channels["outbound"]
    found = _STUBS.get(channel)
    if found is None:
        found = pb_grpc.CampaignsServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
        _STUBS[channel] = found
    return found


def campaign(c: pb.Campaign) -> dict[str, Any]:
    audience = {"list_id": c.list_id} if c.list_id else {"segment_id": c.segment_id}
    return {
        "id": c.id,
        "name": c.name,
        "inbox_id": c.inbox_id,
        "subject": c.subject,
        "body": c.body,
        "language": c.language,
        "audience": audience,
        "scheduled_at": iso(c.scheduled_at) if c.HasField("scheduled_at") else None,
        "window": (
            {"start": c.window.start, "end": c.window.end, "days": list(c.window.days)}
            if c.HasField("window")
            else None
        ),
        "throttle_per_domain_per_minute": c.throttle_per_domain_per_minute or None,
        "state": c.state,
        "totals": {
            **{k: getattr(c.totals, k) for k in TOTALS},
            "suppressed": c.totals.suppressed,
            "pending": c.totals.pending,
            "cancelled": c.totals.cancelled,
        },
        "created_by": c.created_by,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "started_at": iso(c.started_at) if c.HasField("started_at") else None,
        "finished_at": iso(c.finished_at) if c.HasField("finished_at") else None,
        "errors": list(c.errors),
    }


def recipient(r: pb.CampaignRecipient) -> dict[str, Any]:
    return {
        "id": r.id,
        "contact_id": r.contact_id,
        "address": r.address,
        "name": r.name,
        "state": r.state,
        "time_zone": r.time_zone,
        "not_before": iso(r.not_before),
        "sent_at": iso(r.sent_at) if r.HasField("sent_at") else None,
        "error": r.error,
        "updated_at": iso(r.updated_at),
    }


def write_of(body: dict[str, Any], campaign_id: str = "") -> pb.CampaignWrite:
    """The JSON body (create or PATCH) as a CampaignWrite: the fields present are set."""
    w = pb.CampaignWrite(id=campaign_id)
    for key in ("name", "inbox_id", "subject", "body", "language"):
        if key in body:
            setattr(w, key, body[key])
    if "audience" in body:
        audience = body["audience"] or {}
        if bool(audience.get("list_id")) == bool(audience.get("segment_id")):
            raise ApiError(
                400, "invalid_argument", "audience needs a list_id or a segment_id", "audience"
            )
        if audience.get("list_id"):
            w.list_id = audience["list_id"]
        else:
            w.segment_id = audience["segment_id"]
    if "scheduled_at" in body:
        if body["scheduled_at"] is None:
            w.clear_scheduled_at = True
        else:
            w.scheduled_at.CopyFrom(timestamp(body["scheduled_at"], "scheduled_at"))
    if "window" in body:
        window = body["window"]
        if window is None:
            w.clear_window = True
        else:
            w.window.CopyFrom(
                pb.SendingWindow(
                    start=window.get("start", ""),
                    end=window.get("end", ""),
                    days=window.get("days", [1, 2, 3, 4, 5]),
                )
            )
    if "throttle_per_domain_per_minute" in body:
        value = body["throttle_per_domain_per_minute"]
        if value is not None and value < 1:
            field = "throttle_per_domain_per_minute"
            raise ApiError(400, "invalid_argument", f"{field} is at least 1 (null: none)", field)
        w.throttle_per_domain_per_minute = value or 0
    return w


async def list_campaigns(request: web.Request) -> web.Response:
    resp = await _stub(request).ListCampaigns(
        pb.ListCampaignsRequest(state=request.query.get("state", "")),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response({"campaigns": [campaign(c) for c in resp.campaigns]}, customer_data=False)


async def create_campaign(request: web.Request) -> web.Response:
    write = write_of(await json_body(request))
    resp = await _stub(request).CreateCampaign(write, metadata=metadata(request), timeout=15)
    return json_response(campaign(resp), status=201, customer_data=False)


async def get_campaign(request: web.Request) -> web.Response:
    resp = await _stub(request).GetCampaign(
        pb.CampaignRef(id=request.match_info["campaign_id"]), metadata=metadata(request), timeout=10
    )
    return json_response(campaign(resp), customer_data=False)


async def patch_campaign(request: web.Request) -> web.Response:
    write = write_of(await json_body(request), request.match_info["campaign_id"])
    resp = await _stub(request).UpdateCampaign(write, metadata=metadata(request), timeout=15)
    return json_response(campaign(resp), customer_data=False)


async def delete_campaign(request: web.Request) -> web.Response:
    await _stub(request).DeleteCampaign(
        pb.CampaignRef(id=request.match_info["campaign_id"]), metadata=metadata(request), timeout=10
    )
    return no_content()


async def schedule_campaign(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = pb.ScheduleCampaignRequest(id=request.match_info["campaign_id"])
    if body.get("scheduled_at"):
        req.scheduled_at.CopyFrom(timestamp(body["scheduled_at"], "scheduled_at"))
    resp = await _stub(request).ScheduleCampaign(req, metadata=metadata(request), timeout=15)
    return json_response(campaign(resp), customer_data=False)


def _action(name: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        call = getattr(_stub(request), name)
        resp = await call(
            pb.CampaignRef(id=request.match_info["campaign_id"]),
            metadata=metadata(request),
            timeout=15,
        )
        return json_response(campaign(resp), customer_data=False)

    return handler


async def list_recipients(request: web.Request) -> web.Response:
    resp = await _stub(request).ListRecipients(
        pb.ListRecipientsRequest(
            campaign_id=request.match_info["campaign_id"],
            state=request.query.get("state", ""),
            cursor=request.query.get("cursor", ""),
            limit=query_int(request, "limit", default=100, low=1, high=1000),
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(
        {"recipients": [recipient(r) for r in resp.recipients], "next_cursor": resp.next_cursor}
    )


async def preview_campaign(request: web.Request) -> web.Response:
    body = await json_body(request)
    contact = body.get("contact") or {}
    resp = await _stub(request).PreviewCampaign(
        pb.PreviewCampaignRequest(
            subject=body.get("subject", ""),
            body=body.get("body", ""),
            inbox_id=body.get("inbox_id", ""),
            address=contact.get("address", ""),
            name=contact.get("name", ""),
            custom={str(k): str(v) for k, v in (contact.get("custom") or {}).items()},
            time_zone=contact.get("time_zone", ""),
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(
        {"subject": resp.subject, "body": resp.body, "problems": list(resp.problems)}
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/campaigns", list_campaigns)
    r.add_post("/api/v1/campaigns", create_campaign)
    r.add_post("/api/v1/campaigns/preview", preview_campaign)
    r.add_get("/api/v1/campaigns/{campaign_id}", get_campaign)
    r.add_patch("/api/v1/campaigns/{campaign_id}", patch_campaign)
    r.add_delete("/api/v1/campaigns/{campaign_id}", delete_campaign)
    r.add_post("/api/v1/campaigns/{campaign_id}/schedule", schedule_campaign)
    r.add_post("/api/v1/campaigns/{campaign_id}/pause", _action("PauseCampaign"))
    r.add_post("/api/v1/campaigns/{campaign_id}/resume", _action("ResumeCampaign"))
    r.add_post("/api/v1/campaigns/{campaign_id}/cancel", _action("CancelCampaign"))
    r.add_get("/api/v1/campaigns/{campaign_id}/recipients", list_recipients)
