"""Surveys' storage (issue 20): the settings per inbox."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg

from .survey_domain import SurveyRule


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
    )


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

    async def put_settings(
        self, tenant: str, inbox_id: uuid.UUID, rule: SurveyRule, now: datetime
    ) -> tuple[SurveyRule, datetime]:
        r = await self.pool.fetchrow(
            "INSERT INTO survey_settings (tenant_id, inbox_id, enabled, question_ja, "
            "question_en, scale_style, delay_minutes, skip_auto_resolved, skip_spam_trash, "
            "skip_labels, contact_days, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,"
            "$11,$12) ON CONFLICT (tenant_id, inbox_id) DO UPDATE SET enabled = "
            "excluded.enabled, question_ja = excluded.question_ja, question_en = "
            "excluded.question_en, scale_style = excluded.scale_style, delay_minutes = "
            "excluded.delay_minutes, skip_auto_resolved = excluded.skip_auto_resolved, "
            "skip_spam_trash = excluded.skip_spam_trash, skip_labels = excluded.skip_labels, "
            "contact_days = excluded.contact_days, updated_at = excluded.updated_at "
            "RETURNING *",
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
        )
        return rule_of(r), r["updated_at"]
