"""Reporting's `ratings` table (issue 20, OUT-5): one row per survey, kept by the consumer
`reporting__surveys` from outbound's `survey.sent` and `survey.answered`, and read by the
`satisfaction` report counted per period, resolving operator and inbox, each by rating.

Each fetch of events is one transaction: the events not applied before (`processed_events`,
`first_times`), each one an upsert of its survey's row. The answer is the latest
`survey.answered` by (occurred_at, event id — a UUIDv7): an older one, redelivered or
arriving late, changes nothing, so a survey answered twice counts once, with its latest
rating. An answer seen before the survey's `survey.sent` makes the row; the sent time
fills in when that comes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg
from switchboard.v1 import events_pb2

from services.runtime.bus import Delivery, Item
from services.runtime.db import Database
from services.runtime.outbox import first_times

from .ratings import RATINGS, SENT, SurveyEvent, survey_event
from .report_model import Cell, Query
from .stats import Durations

_COLUMNS = """tenant_id, survey_id, ticket_id, inbox_id, episode, operator_id, operator_name,
              resolved_at, ticket_number"""

_SENT = f"""
INSERT INTO ratings ({_COLUMNS}, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant_id, survey_id) DO UPDATE
   SET sent_at = least(ratings.sent_at, EXCLUDED.sent_at),
       ticket_number = greatest(ratings.ticket_number, EXCLUDED.ticket_number)
"""

# the additional questions' answers and the comment go with the rating: all of the latest
# answer, never part of an older one
_ANSWERED = f"""
INSERT INTO ratings ({_COLUMNS}, answered_at, answer_event, rating, comment, answers)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (tenant_id, survey_id) DO UPDATE
   SET answered_at = EXCLUDED.answered_at, answer_event = EXCLUDED.answer_event,
       rating = EXCLUDED.rating, comment = EXCLUDED.comment, answers = EXCLUDED.answers,
       ticket_number = greatest(ratings.ticket_number, EXCLUDED.ticket_number)
 WHERE ratings.answer_event IS NULL
    OR (EXCLUDED.answered_at, EXCLUDED.answer_event) > (ratings.answered_at, ratings.answer_event)
"""


def _args(e: SurveyEvent) -> tuple[object, ...]:
    return (e.tenant_id, e.survey_id, e.ticket_id, e.inbox_id, e.episode, e.operator_id,
            e.operator_name, e.resolved_at, e.ticket_number)  # fmt: skip


async def apply(conn: asyncpg.Connection, found: Sequence[SurveyEvent]) -> None:
    """The events' changes, in order, in the caller's transaction."""
    sent = [(*_args(e), e.at) for e in found if e.rating is None]
    answered = [
        (*_args(e), e.at, e.event_id, e.rating, e.comment, list(e.answers))
        for e in found
        if e.rating is not None
    ]
    if sent:
        await conn.executemany(_SENT, sent)
    if answered:  # the latest wins whatever the order, so sent and answered apart is fine
        await conn.executemany(_ANSWERED, answered)


_WHERE = """
 WHERE tenant_id = $1 AND counted_at >= $2 AND counted_at < $3
   AND ($4::uuid[] IS NULL OR inbox_id = ANY($4::uuid[]))"""


def _scope(tenant_id: str, q: Query) -> tuple[object, ...]:
    inboxes = None if q.inbox_ids is None else list(q.inbox_ids)
    return tenant_id, q.range.start, q.range.end, inboxes


_BY_PERIOD, _BY_INBOX, _BY_OPERATOR = 3, 5, 6  # grouping(period, inbox_id, operator_id)


async def cells(conn: asyncpg.Connection, tenant_id: str, q: Query) -> list[Cell]:
    """The surveys (metric `survey`) and the answers of each rating (`rating_<k>`) counted
    per period (dimension ''), per resolving operator and per inbox over the range
    (dimension `operator` / `inbox`, period -1; '' for nobody) — one statement of
    grouping sets over narrow rows, so the cells are few however many surveys."""
    rows = await _counted(conn, tenant_id, q)
    out: list[Cell] = []
    for r in rows:
        if r["g"] == _BY_PERIOD:
            where = (r["period"], "", "", "")
        elif r["g"] == _BY_OPERATOR:
            where = (-1, "", "operator", r["operator_id"] or "")
        else:
            where = (-1, r["inbox_id"], "inbox", r["inbox_id"])
        counted = Durations(r["n"])
        out.append(Cell(where[0], SENT, *where[1:], counted))
        if r["rating"] is not None:
            out.append(Cell(where[0], f"rating_{r['rating']}", *where[1:], counted))
    return out


async def _counted(conn: asyncpg.Connection, tenant_id: str, q: Query) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""
        SELECT period, inbox_id::text AS inbox_id, operator_id::text AS operator_id, rating,
               count(*)::bigint AS n, grouping(period, inbox_id, operator_id) AS g
        FROM (SELECT width_bucket(counted_at, $5::timestamptz[]) - 1 AS period,
                     inbox_id, operator_id, rating
              FROM ratings {_WHERE}) x
        GROUP BY GROUPING SETS ((period, rating), (operator_id, rating), (inbox_id, rating))
        """,
        *_scope(tenant_id, q),
        [p.start for p in q.periods],
    )
    return rows


async def question_cells(conn: asyncpg.Connection, tenant_id: str, q: Query) -> list[Cell]:
    """The additional questions' answers of each rating (`rating_<k>`) per period
    (dimension `question`, `value` its id), counted as the surveys they belong to."""
    rows = await conn.fetch(
        f"""
        SELECT period, a->>'id' AS id, (a->>'rating')::int AS rating, count(*)::bigint AS n
        FROM (SELECT width_bucket(counted_at, $5::timestamptz[]) - 1 AS period, answers
              FROM ratings {_WHERE} AND rating IS NOT NULL AND answers <> '[]') x
        CROSS JOIN LATERAL jsonb_array_elements(x.answers) AS e(a)
        GROUP BY 1, 2, 3
        """,
        *_scope(tenant_id, q),
        [p.start for p in q.periods],
    )
    return [
        Cell(r["period"], f"rating_{r['rating']}", "", "question", r["id"], Durations(r["n"]))
        for r in rows
        if 1 <= r["rating"] <= len(RATINGS)
    ]


async def question_texts(
    conn: asyncpg.Connection, tenant_id: str, q: Query
) -> dict[str, tuple[str, str]]:
    """Each additional question's texts (ja, en) as its latest answer in the range saw
    them: a question removed or reworded since keeps the words it was answered under."""
    rows = await conn.fetch(
        f"""
        SELECT DISTINCT ON (a->>'id') a->>'id' AS id, a->>'text_ja' AS ja, a->>'text_en' AS en
        FROM (SELECT answers, answered_at FROM ratings {_WHERE}
                AND rating IS NOT NULL AND answers <> '[]') x
        CROSS JOIN LATERAL jsonb_array_elements(x.answers) AS e(a)
        ORDER BY a->>'id', answered_at DESC
        """,
        *_scope(tenant_id, q),
    )
    return {r["id"]: (r["ja"] or "", r["en"] or "") for r in rows}


async def names_missing(
    conn: asyncpg.Connection, tenant_id: str, found: Sequence[Cell], known: Mapping[str, str]
) -> dict[str, str]:
    """The names the events gave the resolving operators of `found` whom `known` (accounts'
    active operators) lacks: one deactivated since keeps a name."""
    missing = sorted(
        {c.value for c in found if c.dimension == "operator" and c.value and c.value not in known}
    )
    if not missing:
        return {}
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (operator_id) operator_id::text AS id, operator_name
        FROM ratings WHERE tenant_id = $1 AND operator_id = ANY($2::uuid[])
        ORDER BY operator_id, resolved_at DESC
        """,
        tenant_id,
        missing,
    )
    return {r["id"]: r["operator_name"] for r in rows if r["operator_name"]}


class RatingsIntake:
    """The consumer `reporting__surveys`: one event (`survey`) or a fetch's events in stream
    order (`surveys_batch`) in one transaction."""

    def __init__(self, db: Database, *, once: bool = True) -> None:
        """`once=False` (a replay): not recorded in `processed_events`; the latest answer
        wins anyway, so an event applied twice changes nothing."""
        self._db = db
        self._once = once

    async def survey(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        await self.surveys_batch([(env, delivery)])

    async def surveys_batch(self, items: Sequence[Item]) -> None:
        if not items:
            return
        async with self._db.transaction() as conn:
            envs = [env for env, _ in items]
            if self._once:
                envs = await first_times(conn, items[0][1].consumer, envs)
            await apply(conn, [e for env in envs if (e := survey_event(env)) is not None])
