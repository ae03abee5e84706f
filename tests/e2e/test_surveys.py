"""Satisfaction surveys after resolution (issue 20, OUT-5) on the running system: each
inbox's settings, checked naming the field, for administrators only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.devstack.stack import Stack
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk

pytestmark = pytest.mark.e2e

QUESTIONS = {"question_ja": "今回の対応はいかがでしたか？", "question_en": "How did we do?"}


async def survey_on(stack: Stack, admin: str, inbox_id: str, **over: Any) -> dict[str, Any]:
    body = {"enabled": True, **QUESTIONS, "delay_minutes": 0, **over}
    code, out, _ = await call(stack, "PUT", f"/api/v1/inboxes/{inbox_id}/survey", body, token=admin)
    assert code == 200, out
    return out


async def test_settings_are_checked_and_only_for_administrators(stack: Stack) -> None:
    tenant, admin, agent, _ = await desk(stack)
    path = f"/api/v1/inboxes/{tenant.inbox_id}/survey"
    code, first, _ = await call(stack, "GET", path, token=admin)
    assert code == 200 and first["enabled"] is False and first["scale"] == 5
    assert (await call(stack, "GET", path, token=agent))[0] == 403
    assert (await call(stack, "PUT", path, {"enabled": False}, token=agent))[0] == 403
    for bad, field in (
        ({"question_ja": ""}, "question_ja"),
        ({"question_en": "  "}, "question_en"),
        ({"question_en": "x" * 501}, "question_en"),
        ({"scale_style": "hearts"}, "scale_style"),
        ({"delay_minutes": -1}, "delay_minutes"),
        ({"delay_minutes": 43201}, "delay_minutes"),
        ({"contact_days": 366}, "contact_days"),
        ({"skip_labels": [""]}, "skip_labels"),
    ):
        body = {"enabled": True, **QUESTIONS, **bad}
        code, out, _ = await call(stack, "PUT", path, body, token=admin)
        assert code == 400 and out["error"]["field"] == field, (bad, out)
    code, _same, _ = await call(stack, "GET", path, token=admin)
    assert _same == first  # nothing stored
    saved = await survey_on(
        stack, admin, tenant.inbox_id, scale_style="faces", skip_labels=["クレーム"], contact_days=7
    )
    assert saved["scale_style"] == "faces" and saved["skip_labels"] == ["クレーム"]
    assert saved["contact_days"] == 7 and saved["question_ja"] == QUESTIONS["question_ja"]
    code, again, _ = await call(stack, "GET", path, token=admin)
    assert again == saved
    missing = f"/api/v1/inboxes/{uuid.uuid4()}/survey"
    assert (await call(stack, "PUT", missing, {"enabled": False}, token=admin))[0] == 404
