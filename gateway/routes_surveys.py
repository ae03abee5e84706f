"""Satisfaction surveys (issue 20, OUT-5): each inbox's survey settings (manage_inboxes,
under /api/v1) and the public page a survey mail's links open — no login: the signed
token in the path is the only key. `GET /survey/{token}?rating=N` records the rating at
once and offers the comment; `POST /survey/{token}` (a form) saves the comment. Both are
limited per client address; a POST from another site's page is refused (Origin). Outbound
checks the token (signature and age) and keeps the answer; documented in openapi.yaml."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import grpc
from aiohttp import web
from switchboard.v1 import outbound_pb2

from . import survey_page, views
from .access import CLIENT
from .errors import ApiError, from_grpc
from .request import deps, json_body, metadata, over_rate
from .responses import json_response, public_page

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
        "updated_at": views.iso(s.updated_at),
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
    if body.get("inbox_id", request.match_info["inbox_id"]) != request.match_info["inbox_id"]:
        raise ApiError(400, "invalid_argument", "inbox_id is not this inbox's", "inbox_id")
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


# -- the public page -------------------------------------------------------------------


def _html(text: str, status: int = 200) -> web.Response:
    return public_page(text, status, survey_page.CSP)


def _refused(request: web.Request, why: str, status: int) -> web.Response:
    lang = survey_page.language_of(request.headers.get("Accept-Language", ""))
    return _html(survey_page.refusal_page(lang, why), status)


async def _limited(request: web.Request) -> bool:
    key = f"sb:gw:survey-rate:{request[CLIENT] or 'unknown'}"
    return await over_rate(request, key, deps(request).settings.survey_rate_per_minute)


async def _answer(
    request: web.Request, rating: int, comment: str | None
) -> outbound_pb2.SurveyAnswer | web.Response:
    req = outbound_pb2.AnswerSurveyRequest(token=request.match_info["token"], rating=rating)
    if comment is not None:
        req.comment = comment
    try:
        answer: outbound_pb2.SurveyAnswer = await deps(request).outbound.AnswerSurvey(
            req, timeout=10
        )
        return answer
    except grpc.aio.AioRpcError as exc:
        err = from_grpc(exc)
        if err.status >= 500:
            return _refused(request, "down", 503)
        if err.field == "token":
            return _refused(
                request,
                "expired" if err.status == 409 else "invalid",
                410 if err.status == 409 else 400,
            )
        return _refused(request, "invalid", 400)


async def survey_get(request: web.Request) -> web.Response:
    if await _limited(request):
        return _refused(request, "busy", 429)
    raw = request.query.get("rating", "")
    rating = int(raw) if raw.isdigit() and len(raw) == 1 and 1 <= int(raw) <= 5 else 0
    if raw and not rating:
        return _refused(request, "invalid", 400)
    got = await _answer(request, rating, None)
    if isinstance(got, web.Response):
        return got
    return _html(survey_page.answer_page(request.match_info["token"], got))


async def survey_post(request: web.Request) -> web.Response:
    """The comment. No session and no cookie to ride on: the unguessable token in the path
    is the key; a form posted from another origin is refused all the same."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        return _refused(request, "invalid", 403)
    if await _limited(request):
        return _refused(request, "busy", 429)
    if request.content_length is not None and request.content_length > COMMENT_BODY_MAX:
        return _refused(request, "invalid", 413)
    raw = await request.content.read(COMMENT_BODY_MAX + 1)
    if len(raw) > COMMENT_BODY_MAX:
        return _refused(request, "invalid", 413)
    fields = dict(parse_qsl(raw.decode("utf-8", "replace"), max_num_fields=10))
    got = await _answer(request, 0, fields.get("comment", "")[:2000])
    if isinstance(got, web.Response):
        return got
    return _html(survey_page.answer_page(request.match_info["token"], got, comment_saved=True))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/inboxes/{inbox_id}/survey", get_survey_settings)
    r.add_put("/api/v1/inboxes/{inbox_id}/survey", put_survey_settings)
    r.add_get("/survey/{token}", survey_get)
    r.add_post("/survey/{token}", survey_post)
