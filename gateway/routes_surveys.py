"""Satisfaction surveys (issue 20, OUT-5): each inbox's survey settings (manage_inboxes,
under /api/v1); outbound checks and keeps them. Documented in openapi.yaml."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import outbound_pb2

from .request import deps, json_body, metadata
from .responses import json_response

COMMENT_BODY_MAX = 16 * 1024


def settings_json(s: Any) -> dict[str, Any]:
    return {
        "inbox_id": s.inbox_id,
        "enabled": s.enabled,
        "question_ja": s.question_ja,
        "question_en": s.question_en,
        "scale": 5,
        "scale_style": s.scale_style,
        "delay_minutes": s.delay_minutes,
        "skip_auto_resolved": s.skip_auto_resolved,
        "skip_spam_trash": s.skip_spam_trash,
        "skip_labels": list(s.skip_labels),
        "contact_days": s.contact_days,
    }


async def get_survey_settings(request: web.Request) -> web.Response:
    resp = await deps(request).outbound.GetSurveySettings(
        outbound_pb2.GetSurveySettingsRequest(inbox_id=request.match_info["inbox_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(settings_json(resp), customer_data=False)


async def put_survey_settings(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).outbound.SetSurveySettings(
        outbound_pb2.SurveySettings(
            inbox_id=request.match_info["inbox_id"],
            enabled=body.get("enabled", False),
            question_ja=body.get("question_ja", ""),
            question_en=body.get("question_en", ""),
            scale_style=body.get("scale_style") or "stars",
            delay_minutes=body.get("delay_minutes", 60),
            skip_auto_resolved=body.get("skip_auto_resolved", True),
            skip_spam_trash=body.get("skip_spam_trash", True),
            skip_labels=body.get("skip_labels", []),
            contact_days=body.get("contact_days", 0),
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(settings_json(resp), customer_data=False)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/inboxes/{inbox_id}/survey", get_survey_settings)
    r.add_put("/api/v1/inboxes/{inbox_id}/survey", put_survey_settings)
