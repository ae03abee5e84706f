"""The satisfaction report's maths (issue 20, OUT-5), I/O-free: the counts per period,
operator and inbox, the response rate and the average from the distribution, a survey
nobody resolved last; and what a survey event says (an answer that is no rating is
ignored, an operator id that is not one credits nobody)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from switchboard.v1 import common_pb2, events_pb2

from services.reporting import periods, ratings
from services.reporting.report_build import Context
from services.reporting.report_model import Cell, Query
from services.reporting.stats import Durations
from services.runtime import events


def query() -> Query:
    now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    r = periods.report_range("2026-11-01", "2026-11-02", "day", periods.zone_of("UTC"), now)
    bounds = tuple(periods.periods(r))
    return Query("satisfaction", r, bounds, "wall", None, periods.source_for(list(bounds)))


def cell(period: int, metric: str, operator: str, n: int, inbox: str = "i1") -> list[Cell]:
    """One group of surveys as the store counts it: in its period, for its operator and
    for its inbox."""
    return [
        Cell(period, metric, "", "", "", Durations(n)),
        Cell(-1, metric, "", "operator", operator, Durations(n)),
        Cell(-1, metric, inbox, "inbox", inbox, Durations(n)),
    ]


def test_periods_operators_inboxes_and_the_totals_last() -> None:
    cells = [
        *cell(0, "survey", "alice", 3),
        *cell(0, "rating_5", "alice", 1),
        *cell(0, "rating_2", "alice", 1),
        *cell(1, "survey", "", 1, inbox="i2"),
        *cell(1, "rating_4", "", 1, inbox="i2"),
    ]
    ctx = Context(operator_names={"alice": "Alice"}, inbox_names={"i1": "Help", "i2": "Sales"})
    series, table, _questions = ratings.satisfaction(query(), cells, ctx)
    rows = [dict(zip(table.columns, r, strict=True)) for r in table.rows]
    assert [r["period"] for r in rows] == ["2026-11-01", "2026-11-02"] + ["total"] * 5
    first = rows[0]
    assert (first["surveys_sent"], first["surveys_answered"]) == (3, 2)
    assert (first["response_rate"], first["average_rating"]) == (0.6667, 3.5)
    assert [first[f"rating_{k}"] for k in range(1, 6)] == [0, 1, 0, 0, 1]
    assert [(r["dimension"], r["id"], r["name"]) for r in rows[2:]] == [
        ("operator", "alice", "Alice"),
        ("operator", None, None),  # resolved by nobody: after the named ones
        ("inbox", "i1", "Help"),
        ("inbox", "i2", "Sales"),
        ("", "", ""),
    ]
    total = rows[-1]
    assert (total["surveys_sent"], total["surveys_answered"], total["average_rating"]) == (
        4,
        3,
        3.67,
    )
    assert [r[3:] for r in series.rows] == [tuple(r[6:]) for r in table.rows[:2]]


def test_nothing_sent_is_null_rate_and_average() -> None:
    _, table, questions = ratings.satisfaction(query(), [], Context())
    assert questions.rows == ()  # no additional question answered
    total = dict(zip(table.columns, table.rows[-1], strict=True))
    assert (total["surveys_sent"], total["response_rate"], total["average_rating"]) == (
        0,
        None,
        None,
    )


def envelope(etype: events.EventType, rating: int = 0, by: str = "") -> events_pb2.EventEnvelope:
    s = events_pb2.SurveyChanged(
        survey_id=str(uuid.uuid4()), ticket_id=str(uuid.uuid4()), inbox_id=str(uuid.uuid4()),
        episode=1, rating=rating,
    )  # fmt: skip
    s.resolved_by.id = by
    s.resolved_by.display_name = "Alice"
    return events.envelope(
        etype, event_id=str(uuid.uuid4()), tenant_id=str(uuid.uuid4()),
        occurred_at=datetime(2026, 11, 1, 9, tzinfo=UTC), payload=s,
        actor=common_pb2.Actor(kind=common_pb2.Actor.KIND_SYSTEM),
    )  # fmt: skip


def test_what_a_survey_event_says() -> None:
    alice = str(uuid.uuid4())
    sent = ratings.survey_event(envelope(events.SURVEY_SENT, by=alice))
    assert sent is not None and sent.rating is None and str(sent.operator_id) == alice
    assert sent.operator_name == "Alice" and sent.resolved_at == sent.at  # unset: the event's
    answered = ratings.survey_event(envelope(events.SURVEY_ANSWERED, 4, by="system"))
    assert answered is not None and answered.rating == 4
    assert answered.operator_id is None and answered.operator_name == ""
    assert ratings.survey_event(envelope(events.SURVEY_ANSWERED, 0)) is None
    assert ratings.survey_event(envelope(events.SURVEY_ANSWERED, 6)) is None


def test_each_additional_question_per_period_and_in_total() -> None:
    def q(period: int, qid: str, rating: int, n: int) -> Cell:
        return Cell(period, f"rating_{rating}", "", "question", qid, Durations(n))

    cells = [q(0, "speed", 5, 1), q(0, "speed", 2, 1), q(1, "speed", 4, 2), q(1, "gone", 1, 1)]
    ctx = Context(question_texts={"speed": ("速さ", "Speed"), "gone": ("旧", "Old")})
    *_, table = ratings.satisfaction(query(), cells, ctx)
    rows = [dict(zip(table.columns, r, strict=True)) for r in table.rows]
    got = [(r["question_id"], r["period"], r["answered"], r["average_rating"]) for r in rows]
    assert got == [
        ("gone", "2026-11-01", 0, None),  # a question no longer asked keeps its id and text
        ("gone", "2026-11-02", 1, 1.0),
        ("gone", "total", 1, 1.0),
        ("speed", "2026-11-01", 2, 3.5),
        ("speed", "2026-11-02", 2, 4.0),
        ("speed", "total", 4, 3.75),
    ]
    assert (rows[0]["question_ja"], rows[0]["question_en"]) == ("旧", "Old")
    assert [rows[-1][f"rating_{k}"] for k in range(1, 6)] == [0, 1, 0, 2, 1]


def test_an_answer_carries_its_questions_and_comment() -> None:
    env = envelope(events.SURVEY_ANSWERED, 3)
    env.survey.comment = "ok"
    env.survey.ticket_number = 12
    env.survey.answers.add(question_id="speed", rating=5, text_ja="速さ", text_en="Speed")
    env.survey.answers.add(question_id="bad", rating=9)  # not a rating: left out
    e = ratings.survey_event(env)
    assert e is not None and (e.comment, e.ticket_number) == ("ok", 12)
    assert e.answers == ({"id": "speed", "rating": 5, "text_ja": "速さ", "text_en": "Speed"},)
