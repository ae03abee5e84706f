"""Surveys' storage (issue 20): the settings per inbox, one row per resolution episode
with its durable due time, the answers and the last survey per contact."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from .survey_domain import Question, SurveyRule


@dataclass(frozen=True, slots=True)
class Survey:
    tenant_id: uuid.UUID
    id: uuid.UUID
    ticket_id: uuid.UUID
    episode: int
    inbox_id: uuid.UUID
    resolved_at: datetime
    resolved_by: uuid.UUID | None
    resolved_by_name: str
    auto_resolved: bool
    due_at: datetime
    state: str
    reason: str
    reopened: bool
    recipient: str
    language: str
    question: str
    scale_style: str
    inbox_name: str
    ticket_number: int
    send_id: uuid.UUID | None
    questions: tuple[Question, ...]  # the additional questions as it was sent


def questions_of(raw: Any) -> tuple[Question, ...]:
    return tuple(Question(q["id"], q["text_ja"], q["text_en"]) for q in raw or ())


def questions_json(questions: tuple[Question, ...]) -> list[dict[str, str]]:
    return [{"id": q.id, "text_ja": q.text_ja, "text_en": q.text_en} for q in questions]


@dataclass(frozen=True, slots=True)
class Answer:
    rating: int
    comment: str
    answers: dict[str, int]  # the additional questions' ratings by id


def survey_of(r: asyncpg.Record) -> Survey:
    return Survey(
        r["tenant_id"],
        r["id"],
        r["ticket_id"],
        r["episode"],
        r["inbox_id"],
        r["resolved_at"],
        r["resolved_by"],
        r["resolved_by_name"],
        r["auto_resolved"],
        r["due_at"],
        r["state"],
        r["reason"],
        r["reopened"],
        r["recipient"],
        r["language"],
        r["question"],
        r["scale_style"],
        r["inbox_name"],
        r["ticket_number"],
        r["send_id"],
        questions_of(r["questions"]),
    )


def rule_of(r: asyncpg.Record) -> SurveyRule:
    return SurveyRule(
        enabled=r["enabled"],
        question_ja=r["question_ja"],
        question_en=r["question_en"],
        scale_style=r["scale_style"],
        delay=timedelta(minutes=r["delay_minutes"]),
        skip_auto_resolved=r["skip_auto_resolved"],
        skip_spam_trash=r["skip_spam_trash"],
        skip_labels=tuple(r["skip_labels"]),
        contact_days=r["contact_days"],
        questions=questions_of(r["questions"]),
    )


@dataclass(frozen=True, slots=True)
class NewEpisode:
    tenant_id: uuid.UUID
    id: uuid.UUID
    ticket_id: uuid.UUID
    inbox_id: uuid.UUID
    resolved_at: datetime
    resolved_by: uuid.UUID | None
    resolved_by_name: str
    auto_resolved: bool
    cause_event_id: str
    due_at: datetime
    state: str
    reason: str


class SurveyRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def settings(
        self, tenant: str, inbox_id: uuid.UUID
    ) -> tuple[SurveyRule, datetime] | None:
        r = await self.pool.fetchrow(
            "SELECT * FROM survey_settings WHERE tenant_id = $1 AND inbox_id = $2",
            uuid.UUID(tenant),
            inbox_id,
        )
        return None if r is None else (rule_of(r), r["updated_at"])

    async def enabled_inboxes(self, tenant: str) -> list[uuid.UUID]:
        rows = await self.pool.fetch(
            "SELECT inbox_id FROM survey_settings WHERE tenant_id = $1 AND enabled",
            uuid.UUID(tenant),
        )
        return [r["inbox_id"] for r in rows]

    async def put_settings(
        self, tenant: str, inbox_id: uuid.UUID, rule: SurveyRule, now: datetime
    ) -> tuple[SurveyRule, datetime]:
        r = await self.pool.fetchrow(
            "INSERT INTO survey_settings (tenant_id, inbox_id, enabled, question_ja, "
            "question_en, scale_style, delay_minutes, skip_auto_resolved, skip_spam_trash, "
            "skip_labels, contact_days, updated_at, questions) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,"
            "$9,$10,$11,$12,$13) ON CONFLICT (tenant_id, inbox_id) DO UPDATE SET enabled = "
            "excluded.enabled, question_ja = excluded.question_ja, question_en = "
            "excluded.question_en, scale_style = excluded.scale_style, delay_minutes = "
            "excluded.delay_minutes, skip_auto_resolved = excluded.skip_auto_resolved, "
            "skip_spam_trash = excluded.skip_spam_trash, skip_labels = excluded.skip_labels, "
            "contact_days = excluded.contact_days, updated_at = excluded.updated_at, "
            "questions = excluded.questions RETURNING *",
            uuid.UUID(tenant),
            inbox_id,
            rule.enabled,
            rule.question_ja,
            rule.question_en,
            rule.scale_style,
            int(rule.delay.total_seconds() // 60),
            rule.skip_auto_resolved,
            rule.skip_spam_trash,
            list(rule.skip_labels),
            rule.contact_days,
            now,
            questions_json(rule.questions),
        )
        return rule_of(r), r["updated_at"]

    # -- episodes --------------------------------------------------------------------

    async def open_episode(
        self, conn: asyncpg.Connection, tenant: str, ticket_id: uuid.UUID
    ) -> bool:
        """Whether the ticket has an episode that was not reopened since."""
        found = await conn.fetchval(
            "SELECT 1 FROM surveys WHERE tenant_id = $1 AND ticket_id = $2 AND NOT reopened "
            "LIMIT 1",
            uuid.UUID(tenant),
            ticket_id,
        )
        return found is not None

    async def add_episode(self, conn: asyncpg.Connection, e: NewEpisode) -> int:
        """Insert the ticket's next episode; its number."""
        episode: int = await conn.fetchval(
            "INSERT INTO surveys (tenant_id, id, ticket_id, episode, inbox_id, resolved_at, "
            "resolved_by, resolved_by_name, auto_resolved, cause_event_id, due_at, state, "
            "reason, created_at, updated_at) SELECT $1, $2, $3, coalesce(max(episode), 0) + 1, "
            "$4, $5, $6, $7, $8, $9, $10, $11, $12, $5, $5 FROM surveys WHERE tenant_id = $1 "
            "AND ticket_id = $3 RETURNING episode",
            e.tenant_id,
            e.id,
            e.ticket_id,
            e.inbox_id,
            e.resolved_at,
            e.resolved_by,
            e.resolved_by_name,
            e.auto_resolved,
            e.cause_event_id,
            e.due_at,
            e.state,
            e.reason,
        )
        return episode

    async def end_episodes(
        self, conn: asyncpg.Connection, tenant: str, ticket_id: uuid.UUID, now: datetime
    ) -> None:
        """A reopen: the ticket's open episode ends (a later resolution starts another)."""
        await conn.execute(
            "UPDATE surveys SET reopened = true, updated_at = $3 WHERE tenant_id = $1 AND "
            "ticket_id = $2 AND NOT reopened",
            uuid.UUID(tenant),
            ticket_id,
            now,
        )

    async def claim_due(self, conn: asyncpg.Connection, now: datetime) -> Survey | None:
        """The oldest due survey, locked for the caller's transaction (another replica
        skips it)."""
        r = await conn.fetchrow(
            "SELECT * FROM surveys WHERE state = 'due' AND due_at <= $1 ORDER BY due_at "
            "LIMIT 1 FOR UPDATE SKIP LOCKED",
            now,
        )
        return None if r is None else survey_of(r)

    async def postpone(self, survey_id: uuid.UUID, until: datetime) -> None:
        await self.pool.execute(
            "UPDATE surveys SET due_at = $2 WHERE id = $1 AND state = 'due'", survey_id, until
        )

    async def skip(
        self, conn: asyncpg.Connection, survey_id: uuid.UUID, reason: str, now: datetime
    ) -> None:
        await conn.execute(
            "UPDATE surveys SET state = 'skipped', reason = $2, updated_at = $3 WHERE id = $1",
            survey_id,
            reason,
            now,
        )

    async def mark_sent(
        self, conn: asyncpg.Connection, survey_id: uuid.UUID, values: dict[str, Any]
    ) -> None:
        cols = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=2))
        await conn.execute(
            f"UPDATE surveys SET state = 'sent', {cols} WHERE id = $1",
            survey_id,
            *values.values(),
        )

    async def note_contact(
        self, conn: asyncpg.Connection, tenant: str, address: str, now: datetime, days: int
    ) -> bool:
        """Claim the contact's slot for `days` (0: always); False when a survey went to
        them within it."""
        got = await conn.fetchval(
            "INSERT INTO survey_contact_log (tenant_id, address, sent_at) VALUES ($1,$2,$3) "
            "ON CONFLICT (tenant_id, address) DO UPDATE SET sent_at = excluded.sent_at "
            "WHERE survey_contact_log.sent_at <= $4 RETURNING 1",
            uuid.UUID(tenant),
            address.lower(),
            now,
            now - timedelta(days=days),
        )
        return got is not None

    # -- answers ---------------------------------------------------------------------

    async def survey(self, tenant: str, survey_id: uuid.UUID) -> Survey | None:
        r = await self.pool.fetchrow(
            "SELECT * FROM surveys WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant),
            survey_id,
        )
        return None if r is None else survey_of(r)

    async def answer(
        self, conn: asyncpg.Connection, survey_id: uuid.UUID, *, lock: bool = False
    ) -> Answer | None:
        r = await conn.fetchrow(
            "SELECT rating, comment, answers FROM survey_answers WHERE survey_id = $1"
            + (" FOR UPDATE" if lock else ""),
            survey_id,
        )
        return None if r is None else Answer(r["rating"], r["comment"], dict(r["answers"]))

    async def put_answer(
        self,
        conn: asyncpg.Connection,
        tenant: uuid.UUID,
        survey_id: uuid.UUID,
        answer: Answer,
        now: datetime,
    ) -> None:
        await conn.execute(
            "INSERT INTO survey_answers (tenant_id, survey_id, rating, comment, answers, "
            "answered_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$6) ON CONFLICT (survey_id) "
            "DO UPDATE SET rating = excluded.rating, comment = excluded.comment, answers = "
            "excluded.answers, changes = survey_answers.changes + 1, updated_at = "
            "excluded.updated_at",
            tenant,
            survey_id,
            answer.rating,
            answer.comment,
            answer.answers,
            now,
        )
