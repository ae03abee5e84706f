"""OutboundService's survey calls (issue 20, OUT-5): each inbox's survey settings
(manage_inboxes, as the automatic replies) and the public answer from a survey mail's
link — a signed, expiring token; a second click changes the answer, never adds one."""

from __future__ import annotations

from datetime import datetime

from switchboard.v1 import common_pb2, events_pb2, outbound_pb2

from services.runtime import events, identity, log
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import survey_domain
from .api import Deps
from .api_admin import OutboundApi, _admin
from .survey_domain import SurveyRule
from .survey_repo import Answer, Survey, SurveyRepo
from .surveys import SurveyConfig, announce, survey_changed


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
        questions=[
            outbound_pb2.SurveyQuestion(id=q.id, text_ja=q.text_ja, text_en=q.text_en)
            for q in rule.questions
        ],
    )
    if updated_at is not None:
        out.updated_at.FromDatetime(updated_at)
    return out


class OutboundWithSurveys(OutboundApi):
    def __init__(self, deps: Deps, surveys: SurveyRepo, config: SurveyConfig) -> None:
        super().__init__(deps)
        self._surveys = surveys
        self._survey_config = config
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
            questions=[(q.id, q.text_ja, q.text_en) for q in request.questions],
        )
        inbox_id = await self._known_inbox(ident, request.inbox_id)
        rule, at = await self._surveys.put_settings(
            ident.tenant_id, inbox_id, rule, self._d.clock.now()
        )
        self._survey_log.info("survey settings saved", inbox_id=str(inbox_id), on=rule.enabled)
        return settings_pb(str(inbox_id), rule, at)

    async def ListSurveyInboxes(
        self, request: outbound_pb2.ListSurveyInboxesRequest, context: Context
    ) -> outbound_pb2.ListSurveyInboxesResponse:
        """Any operator of the tenant: which of the inboxes they see have surveys on."""
        ident = identity.require_operator()
        ids = {str(i) for i in await self._surveys.enabled_inboxes(ident.tenant_id)}
        visible = ident.inbox_filter()
        if visible is not None:
            ids &= set(visible)
        return outbound_pb2.ListSurveyInboxesResponse(inbox_ids=sorted(ids))

    async def AnswerSurvey(
        self, request: outbound_pb2.AnswerSurveyRequest, context: Context
    ) -> outbound_pb2.SurveyAnswer:
        """Public: the token says who (tenant, survey); nothing else is trusted."""
        cfg = self._survey_config
        try:
            tenant, raw_id = survey_domain.read_token(cfg.secret, request.token, cfg.link_max_age)
        except survey_domain.TokenRefused as err:
            if err.why == "expired":
                raise FailedPrecondition("this survey link has expired", field="token") from None
            raise InvalidArgument("this survey link is not valid", field="token") from None
        survey_id = parse_uuid(raw_id, "token")
        row = await self._surveys.survey(tenant, survey_id)
        if row is None or row.state != "sent":
            raise InvalidArgument("this survey link is not valid", field="token")
        if not 0 <= request.rating <= survey_domain.SCALE:
            raise InvalidArgument("rating must be between 1 and 5", field="rating")
        comment = request.comment.strip() if request.HasField("comment") else None
        if comment is not None and len(comment) > survey_domain.COMMENT_MAX:
            raise InvalidArgument(
                f"comment is at most {survey_domain.COMMENT_MAX} characters", field="comment"
            )
        given = None
        if comment is not None:  # the page's form: its answers replace the previous ones
            given = survey_domain.check_answers(
                row.questions, [(a.question_id, a.rating) for a in request.answers]
            )
        d = self._d
        now = d.clock.now()
        changed = False
        async with d.db.transaction() as conn:
            before = await self._surveys.answer(conn, survey_id, lock=True)
            rating = request.rating or (before.rating if before else 0)
            if (request.rating or comment is not None) and not rating:
                raise FailedPrecondition("choose a rating first", field="rating")
            now_answer = Answer(
                rating,
                comment if comment is not None else (before.comment if before else ""),
                given if given is not None else (before.answers if before else {}),
            )
            if rating and now_answer != before:
                changed = True
                await self._surveys.put_answer(conn, row.tenant_id, survey_id, now_answer, now)
                payload = survey_changed(
                    row,
                    language=row.language,
                    send_id=str(row.send_id or ""),
                    rating=rating,
                    previous_rating=before.rating if before else 0,
                    commented=bool(now_answer.comment),
                    comment=now_answer.comment,
                    ticket_number=row.ticket_number,
                    answers=_answered(row, now_answer),
                )
                customer = common_pb2.Actor(
                    kind=common_pb2.Actor.KIND_CUSTOMER, id=row.recipient, display=row.recipient
                )
                await announce(d, conn, events.SURVEY_ANSWERED, row, payload, customer, now)
        if changed:
            d.outbox.wake()
            self._survey_log.info(
                "survey answered", tenant_id=tenant, survey_id=str(survey_id), rating=rating
            )
        return outbound_pb2.SurveyAnswer(
            survey_id=str(survey_id),
            language=row.language,
            question=row.question,
            scale_style=row.scale_style,
            rating=rating,
            comment=now_answer.comment,
            inbox_name=row.inbox_name,
            ticket_number=row.ticket_number,
            changed=changed,
            questions=[
                outbound_pb2.AskedQuestion(
                    id=q.id, text=q.text(row.language), rating=now_answer.answers.get(q.id, 0)
                )
                for q in row.questions
            ],
        )


def _answered(row: Survey, answer: Answer) -> list[events_pb2.SurveyQuestionAnswer]:
    """The additional questions answered, with their texts as the survey was sent."""
    return [
        events_pb2.SurveyQuestionAnswer(
            question_id=q.id, rating=answer.answers[q.id], text_ja=q.text_ja, text_en=q.text_en
        )
        for q in row.questions
        if q.id in answer.answers
    ]
