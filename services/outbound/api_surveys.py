"""OutboundService's survey calls (issue 20, OUT-5): each inbox's survey settings
(manage_inboxes, as the automatic replies)."""

from __future__ import annotations

from datetime import datetime

from switchboard.v1 import outbound_pb2

from services.runtime import log
from services.runtime.grpc_server import Context

from . import survey_domain
from .api import Deps
from .api_admin import OutboundApi, _admin
from .survey_domain import SurveyRule
from .survey_repo import SurveyRepo


def settings_pb(
    inbox_id: str, rule: SurveyRule | None, updated_at: datetime | None
) -> outbound_pb2.SurveySettings:
    if rule is None:
        return outbound_pb2.SurveySettings(
            inbox_id=inbox_id,
            enabled=False,
            scale_style="stars",
            delay_minutes=60,
            skip_auto_resolved=True,
            skip_spam_trash=True,
        )
    out = outbound_pb2.SurveySettings(
        inbox_id=inbox_id,
        enabled=rule.enabled,
        question_ja=rule.question_ja,
        question_en=rule.question_en,
        scale_style=rule.scale_style,
        delay_minutes=int(rule.delay.total_seconds() // 60),
        skip_auto_resolved=rule.skip_auto_resolved,
        skip_spam_trash=rule.skip_spam_trash,
        skip_labels=list(rule.skip_labels),
        contact_days=rule.contact_days,
    )
    if updated_at is not None:
        out.updated_at.FromDatetime(updated_at)
    return out


class OutboundWithSurveys(OutboundApi):
    def __init__(self, deps: Deps, surveys: SurveyRepo) -> None:
        super().__init__(deps)
        self._surveys = surveys
        self._survey_log = log.get("outbound.surveys")

    async def GetSurveySettings(
        self, request: outbound_pb2.GetSurveySettingsRequest, context: Context
    ) -> outbound_pb2.SurveySettings:
        ident = _admin()
        inbox_id = await self._known_inbox(ident, request.inbox_id)
        found = await self._surveys.settings(ident.tenant_id, inbox_id)
        return settings_pb(str(inbox_id), *(found or (None, None)))

    async def SetSurveySettings(
        self, request: outbound_pb2.SurveySettings, context: Context
    ) -> outbound_pb2.SurveySettings:
        ident = _admin()
        rule = survey_domain.check_settings(
            enabled=request.enabled,
            question_ja=request.question_ja,
            question_en=request.question_en,
            scale_style=request.scale_style,
            delay_minutes=request.delay_minutes,
            skip_auto_resolved=request.skip_auto_resolved,
            skip_spam_trash=request.skip_spam_trash,
            skip_labels=list(request.skip_labels),
            contact_days=request.contact_days,
        )
        inbox_id = await self._known_inbox(ident, request.inbox_id)
        rule, at = await self._surveys.put_settings(
            ident.tenant_id, inbox_id, rule, self._d.clock.now()
        )
        self._survey_log.info("survey settings saved", inbox_id=str(inbox_id), on=rule.enabled)
        return settings_pb(str(inbox_id), rule, at)
