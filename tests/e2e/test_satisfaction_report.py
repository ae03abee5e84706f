"""The satisfaction report (issue 20, OUT-5) through the real processes: two tickets
resolved, one by an agent and one by the administrator, get their surveys from outbound
(to the aiosmtpd peer); the customer clicks 4 on the first, then changes it to 2. Reporting
counts it once with the new rating — also after the older answer is published again under
a new event id, and the same answer redelivered — per period, per resolving operator and
per inbox, and the CSV holds exactly the JSON's table, as does the aggregate export. The
ratings deleted by hand come back by replaying the streams; an answer that reaches
reporting before its survey's `survey.sent` counts once too. An agent without `see_reports` is 403,
an inbox the viewer may not see 404, bad parameters 400 naming each."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import nats
import pytest
from switchboard.v1 import common_pb2, events_pb2

from services.devstack.stack import Stack
from services.runtime import events
from services.runtime.db import with_database
from tests.e2e.test_access import own_operator
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk, mail_ticket
from tests.e2e.test_exports import _download, _export, _finished
from tests.e2e.test_surveys import MORE, mailed, page, rating_links, set_status, survey_on
from tests.e2e.test_ui import other_inbox
from tests.helpers import Tenant, api_get, eventually, published
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@dataclass
class Office:
    stack: Stack
    tenant: Tenant
    admin: str
    agent: str
    supervisor: str
    agent_me: dict[str, Any]
    admin_me: dict[str, Any]
    seen: list[events_pb2.EventEnvelope]  # the surveys' events as outbound published them
    first: dict[str, Any]  # the ticket the agent resolved (answered)
    days: tuple[str, str]

    def path(self, suffix: str = "", **params: str) -> str:
        query = {"from": self.days[0], "to": self.days[1], "tz": "UTC", **params}
        return (
            "/api/v1/reports/satisfaction"
            + suffix
            + "?"
            + "&".join(f"{k}={v}" for k, v in query.items())
        )


@pytest.fixture(scope="module")
async def office(stack: Stack, smtp_peer: SmtpPeer) -> AsyncIterator[Office]:
    tenant, admin, agent, supervisor = await desk(stack)
    today = datetime.now(UTC).date()
    days = ((today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat())
    agent_me = (await call(stack, "GET", "/api/v1/me", token=agent))[1]
    admin_me = (await call(stack, "GET", "/api/v1/me", token=admin))[1]
    await survey_on(stack, admin, tenant.inbox_id, questions=MORE)
    async with published(stack, "sb.outbound.survey.>") as seen:
        first = await mail_ticket(stack, tenant, agent, f"Parcel {uuid.uuid4().hex[:6]}")
        await set_status(stack, agent, first["id"], "resolved")
        second = await mail_ticket(stack, tenant, agent, f"Invoice {uuid.uuid4().hex[:6]}")
        await set_status(stack, admin, second["id"], "resolved")
        [got] = await mailed(smtp_peer, tenant, first["number"])
        await mailed(smtp_peer, tenant, second["number"])
        links = rating_links(got)
        assert (await page(links[3]))[0] == 200  # 4 …
        assert (await page(links[1]))[0] == 200  # … changed to 2
        # the additional questions and a comment, then changed: speed 5 → 3
        form = links[0].split("?", 1)[0]
        first_form = {"q.speed": "5", "q.clarity": "4", "comment": "Slow at first"}
        assert (await page(form, method="POST", data=first_form))[0] == 200
        second = {"q.speed": "3", "q.clarity": "4", "comment": "=Fine in the end"}
        assert (await page(form, method="POST", data=second))[0] == 200

        async def answered_four_times() -> bool:
            return len([e for e in seen if e.type == "survey.answered"]) == 4

        await eventually(answered_four_times, timeout=20)
        nc = await nats.connect(stack.nats_url)
        try:  # reporting has taken both answers (the second could lag the first)
            await drained(nc.jetstream())
        finally:
            await nc.close()
        yield Office(stack, tenant, admin, agent, supervisor, agent_me, admin_me, seen, first,
                     days)  # fmt: skip


async def report(o: Office, token: str = "", **params: str) -> tuple[int, Any]:
    return await api_get(o.stack, token or o.supervisor, o.path(**params))


async def settled(o: Office, answered: int, sent: int) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        code, body = await report(o)
        assert code == 200, body
        t = body["totals"]
        return body if (t["surveys_sent"], t["surveys_answered"]) == (sent, answered) else None

    body: dict[str, Any] = await eventually(probe, timeout=30, every=0.3)
    return body


async def drained(js: Any) -> None:
    async def done() -> bool:
        info = await js.consumer_info(events.OUTBOUND.name, "reporting__surveys")
        return not (info.num_pending or info.num_ack_pending)

    await eventually(done, timeout=30)


async def test_the_changed_answer_counts_once_with_its_new_rating_for_the_resolver(
    office: Office,
) -> None:
    body = await settled(office, answered=1, sent=2)
    t = body["totals"]
    assert t["response_rate"] == 0.5 and t["average_rating"] == 2.0
    assert [t[f"rating_{k}"] for k in range(1, 6)] == [0, 1, 0, 0, 0]
    today = datetime.now(UTC).date().isoformat()
    [point] = [p for p in body["series"] if p["surveys_sent"]]
    assert point["period"] == today and point["surveys_answered"] == 1
    assert point["average_rating"] == 2.0
    # per resolving operator: the agent's survey answered, the administrator's not
    by_op = {r["operator_id"]: r for r in body["per_operator"]}
    assert set(by_op) == {office.agent_me["id"], office.admin_me["id"]}
    mine = by_op[office.agent_me["id"]]
    assert mine["operator"] == office.agent_me["display_name"]
    assert (mine["surveys_sent"], mine["surveys_answered"], mine["rating_2"]) == (1, 1, 1)
    assert (mine["average_rating"], mine["response_rate"]) == (2.0, 1.0)
    theirs = by_op[office.admin_me["id"]]
    assert (theirs["surveys_sent"], theirs["surveys_answered"]) == (1, 0)
    assert theirs["average_rating"] is None and theirs["response_rate"] == 0.0
    [inbox] = body["per_inbox"]
    assert inbox["inbox_id"] == office.tenant.inbox_id and inbox["inbox"] == "Help"
    assert (inbox["surveys_sent"], inbox["surveys_answered"], inbox["average_rating"]) == (
        2,
        1,
        2.0,
    )

    assert body["source"] == "ratings"  # what it reads: the ratings, not the rollups

    # older answers (4; 2 with speed 5) published again under new event ids, and the
    # latest one redelivered under its own: reporting keeps the latest answer, counted once
    answers = [e for e in office.seen if e.type == "survey.answered"]
    assert [e.survey.rating for e in answers] == [4, 2, 2, 2]
    nc = await nats.connect(office.stack.nats_url)
    try:
        js = nc.jetstream()
        again_sent = []
        for older in (answers[0], answers[2]):
            old = events_pb2.EventEnvelope()
            old.CopyFrom(older)
            old.event_id = str(uuid.uuid4())
            again_sent.append((old, old.event_id))
        for env, msg_id in (*again_sent, (answers[3], str(uuid.uuid4()))):
            await js.publish(events.subject_of(env), env.SerializeToString(),
                             headers={"Nats-Msg-Id": msg_id})  # fmt: skip
        await drained(js)
    finally:
        await nc.close()
    code, again = await report(office)
    assert code == 200
    assert again["totals"] == t and again["per_operator"] == body["per_operator"]
    assert again["per_question"] == body["per_question"]


async def test_each_additional_question_counts_once_with_its_changed_answer(
    office: Office,
) -> None:
    body = await settled(office, answered=1, sent=2)
    got = {q["question_id"]: q for q in body["per_question"]}
    assert set(got) == {"speed", "clarity"}
    speed, clarity = got["speed"], got["clarity"]
    assert (speed["answered"], speed["average_rating"], speed["rating_3"]) == (1, 3.0, 1)
    assert speed["rating_5"] == 0  # the first form's 5 was changed
    assert (speed["question_ja"], speed["question_en"]) == (MORE[0]["text_ja"], MORE[0]["text_en"])
    assert (clarity["answered"], clarity["average_rating"]) == (1, 4.0)
    today = datetime.now(UTC).date().isoformat()
    [point] = [p for p in speed["series"] if p["answered"]]
    assert (point["period"], point["average_rating"]) == (today, 3.0)
    # the question removed from the settings keeps its answers under its id and texts
    await survey_on(office.stack, office.admin, office.tenant.inbox_id, questions=[MORE[1]])
    code, later = await report(office)
    assert code == 200 and later["per_question"] == body["per_question"]


async def comments(o: Office, token: str = "", **params: str) -> tuple[int, Any]:
    query = {"from": o.days[0], "to": o.days[1], "tz": "UTC", **params}
    path = "/api/v1/reports/satisfaction/comments?" + "&".join(f"{k}={v}" for k, v in query.items())
    return await api_get(o.stack, token or o.supervisor, path)


async def test_the_comments_are_read_by_supervisors_of_their_inboxes_only(
    office: Office,
) -> None:
    await settled(office, answered=1, sent=2)
    code, body = await comments(office)
    assert code == 200, body
    [c] = body["items"]
    assert body["next"] is None
    assert (c["ticket_number"], c["rating"], c["comment"]) == (
        office.first["number"], 2, "=Fine in the end"
    )  # fmt: skip
    assert (c["operator_id"], c["operator"]) == (
        office.agent_me["id"], office.agent_me["display_name"]
    )  # fmt: skip
    assert c["inbox_id"] == office.tenant.inbox_id and c["inbox"] == "Help"
    assert c["answered_at"].endswith("+00:00")
    code, mine = await comments(office, operator_id=office.agent_me["id"])
    assert code == 200 and mine["items"] == body["items"]
    code, theirs = await comments(office, operator_id=office.admin_me["id"])
    assert code == 200 and theirs["items"] == []
    # a supervisor of another inbox of the tenant: none of ours, and not ours by name
    _address, other = await other_inbox(office.stack, office.admin, "Other")
    _, _, elsewhere = await own_operator(
        office.stack, office.admin, office.tenant, roles=["supervisor"], inbox_ids=[other]
    )
    code, none = await comments(office, token=elsewhere)
    assert code == 200 and none["items"] == [], none
    code, refused = await comments(office, token=elsewhere, inbox_id=office.tenant.inbox_id)
    assert code == 404 and refused["error"]["field"] == "inbox_id"
    # an agent without see_reports; bad parameters named
    assert (await comments(office, token=office.agent))[0] == 403
    for params, field in (
        ({"cursor": "nonsense"}, "cursor"),
        ({"operator_id": "x"}, "operator_id"),
        ({"limit": "0"}, "limit"),
        ({"tz": "Mars/Olympus"}, "tz"),
    ):
        code, out = await comments(office, **params)
        assert code == 400 and out["error"]["field"] == field, (params, out)


async def test_the_csv_is_the_json_table(office: Office) -> None:
    await settled(office, answered=1, sent=2)
    code, body = await report(office, inbox_id=office.tenant.inbox_id)
    assert code == 200, body
    async with aiohttp.ClientSession() as http:
        async with http.get(
            office.stack.gateway_url + office.path(".csv", inbox_id=office.tenant.inbox_id),
            headers={"Authorization": f"Bearer {office.supervisor}"},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/csv")
            assert f"satisfaction_{office.days[0]}" in resp.headers["Content-Disposition"]
            text = (await resp.read()).decode("utf-8")
    lines = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    # the table, then the additional questions, then the comments, each after an empty line
    end = lines.index([])
    got, rest = lines[:end], lines[end + 1 :]
    questions, comment_lines = rest[: rest.index([])], rest[rest.index([]) + 1 :]
    assert questions[0][:6] == ["period", "start", "end", "question_id", "question_ja",
                                "question_en"]  # fmt: skip
    speed_total = next(r for r in questions if r[0] == "total" and r[3] == "speed")
    assert speed_total[6:8] == ["1", "3.0"]
    assert comment_lines[0] == ["answered_at", "ticket_number", "inbox_id", "inbox",
                                "operator_id", "operator", "rating", "comment"]  # fmt: skip
    [row] = comment_lines[1:]
    assert row[1] == str(office.first["number"]) and row[6:] == ["2", "'=Fine in the end"]
    assert got[0] == body["table"]["columns"]
    assert got[1:] == [["" if v is None else str(v) for v in r] for r in body["table"]["rows"]]
    total = dict(zip(got[0], got[-1], strict=True))
    assert (total["period"], total["surveys_sent"], total["surveys_answered"]) == (
        "total",
        "2",
        "1",
    )
    assert (total["response_rate"], total["average_rating"], total["rating_2"]) == (
        "0.5",
        "2.0",
        "1",
    )
    agent_row = next(r for r in got if r[4] == office.agent_me["id"])
    assert agent_row[3] == "operator" and agent_row[5] == office.agent_me["display_name"]


async def csv_of(o: Office, **params: str) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            o.stack.gateway_url + o.path(".csv", **params),
            headers={"Authorization": f"Bearer {o.supervisor}"},
        ) as resp:
            assert resp.status == 200
            return await resp.read()


async def test_the_aggregate_export_is_the_same_file(office: Office) -> None:
    await settled(office, answered=1, sent=2)
    params = {"from": office.days[0], "to": office.days[1], "tz": "UTC", "granularity": "day"}
    body = {"kind": "report_csv", "report": "satisfaction", **params}
    export = await _finished(
        office.stack, office.admin, (await _export(office.stack, office.admin, body))["id"]
    )
    assert export["report"] == "satisfaction"
    data = await _download(office.stack, office.admin, export)
    assert data == await csv_of(office) and b",operator," in data


async def test_ratings_lost_are_made_again_by_replaying_the_streams(office: Office) -> None:
    """reporting's rows of the tenant deleted by hand; `rebuild --replay-since` replays
    OUTBOUND's survey events (the older answer re-published later in the stream too):
    the same report again, the latest answer kept."""
    before = await settled(office, answered=1, sent=2)
    conn = await asyncpg.connect(with_database(office.stack.database_url, "sb_reporting"))
    try:
        tenant = uuid.UUID(office.tenant.tenant_id)
        await conn.execute("DELETE FROM ratings WHERE tenant_id = $1", tenant)
        assert (await report(office))[1]["totals"]["surveys_sent"] == 0
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.reporting.rebuild", "--tenant", str(tenant),
            "--replay-since", since,
            env={**os.environ, **office.stack.env_for("reporting")},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        assert "through reporting__surveys" in out.decode()
    finally:
        await conn.close()
    code, after = await report(office)
    assert code == 200
    assert after["totals"] == before["totals"] and after["totals"]["average_rating"] == 2.0
    assert after["per_operator"] == before["per_operator"]


async def test_an_answer_before_its_survey_sent_counts_once(office: Office) -> None:
    """Published as outbound would, backdated to a day of its own (so the other tests'
    figures stay), the answer first, then the survey's `survey.sent` twice."""
    day = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    survey = events_pb2.SurveyChanged(
        survey_id=str(uuid.uuid4()),
        ticket_id=office.first["id"],
        inbox_id=office.tenant.inbox_id,
        episode=2,
        language="en",
    )  # resolved by nobody
    survey.resolved_at.FromDatetime(day - timedelta(minutes=2))
    answered = events_pb2.SurveyChanged()
    answered.CopyFrom(survey)
    answered.rating = 5
    answered.comment = "Back in March"
    answered.answers.add(question_id="gone", rating=1, text_ja="旧", text_en="Old question")

    def env(etype: events.EventType, payload: Any, at: datetime) -> events_pb2.EventEnvelope:
        system = common_pb2.Actor(kind=common_pb2.Actor.KIND_SYSTEM)
        tenant = office.tenant.tenant_id
        return events.envelope(
            etype, event_id=str(uuid.uuid4()), tenant_id=tenant, occurred_at=at, payload=payload,
            actor=system,
        )  # fmt: skip

    nc = await nats.connect(office.stack.nats_url)
    try:
        js = nc.jetstream()
        late_sent = env(events.SURVEY_SENT, survey, day - timedelta(minutes=1))
        for e in (env(events.SURVEY_ANSWERED, answered, day), late_sent, late_sent):
            await js.publish(events.subject_of(e), e.SerializeToString(),
                             headers={"Nats-Msg-Id": str(uuid.uuid4())})  # fmt: skip
        await drained(js)
    finally:
        await nc.close()
    code, body = await report(office, **{"from": "2026-03-02", "to": "2026-03-02"})
    assert code == 200, body
    t = body["totals"]
    assert (t["surveys_sent"], t["surveys_answered"], t["rating_5"]) == (1, 1, 1)
    assert (t["average_rating"], t["response_rate"]) == (5.0, 1.0)
    [nobody] = body["per_operator"]
    assert (nobody["operator_id"], nobody["operator"], nobody["rating_5"]) == (None, None, 1)
    [point] = body["series"]
    assert point["period"] == "2026-03-02" and point["surveys_answered"] == 1
    [gone] = body["per_question"]
    assert (gone["question_id"], gone["question_en"], gone["average_rating"]) == (
        "gone", "Old question", 1.0
    )  # fmt: skip
    # the comments over both days, a page at a time, newest first
    code, first = await comments(office, **{"from": "2026-03-01", "limit": "1"})
    assert code == 200 and first["next"], first
    code, second = await comments(office, **{"from": "2026-03-01", "cursor": first["next"]})
    assert code == 200 and second["next"] is None
    assert [c["comment"] for c in first["items"] + second["items"]] == [
        "=Fine in the end", "Back in March"
    ]  # fmt: skip
    assert second["items"][0]["operator_id"] is None


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"from": "2026-11-05", "to": "2026-11-01"}, 400, "to"),
        ({"tz": "Mars/Olympus"}, 400, "tz"),
        ({"granularity": "fortnight"}, 400, "granularity"),
        ({"from": "last tuesday"}, 400, "from"),
        ({"inbox_id": "not-an-id"}, 400, "inbox_id"),
        ({"inbox_id": str(uuid.uuid4())}, 404, "inbox_id"),
    ],
)
async def test_bad_parameters_are_refused_naming_them(
    office: Office, params: dict[str, str], status: int, field: str
) -> None:
    code, body = await report(office, **params)
    assert code == status, body
    assert body["error"]["field"] == field


async def test_another_tenants_inbox_and_no_permission(office: Office) -> None:
    other, _admin, _agent, other_supervisor = await desk(office.stack)
    code, body = await report(office, inbox_id=other.inbox_id)
    assert code == 404 and body["error"]["field"] == "inbox_id"
    code, body = await report(office, token=other_supervisor)
    assert code == 200 and body["totals"]["surveys_sent"] == 0  # nothing of ours
    assert body["per_operator"] == [] and body["totals"]["average_rating"] is None
    code, body = await report(office, token=office.agent)
    assert code == 403, body
    code, body, _ = await call(office.stack, "GET", office.path(".csv"), token=office.agent)
    assert code == 403
