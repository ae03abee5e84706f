"""Satisfaction surveys after resolution (issue 20, OUT-5) on the running system, to the
aiosmtpd peer: one survey per resolution episode after the inbox's delay, another after
a reopen and a second resolution; none for "resolve without survey", a label rule, a
contact surveyed within N days or an automatic sender; the public page records a
one-click rating (a second click changes it, one answer), takes a comment, and refuses a
tampered or expired link with a page of its own, never a 500."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest
from switchboard.v1.events_pb2 import EventEnvelope

from services.devstack.stack import Stack
from services.outbound import survey_domain
from services.runtime.db import with_database
from tests.e2e.test_access import operator_token
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk, mail_ticket
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.helpers import Tenant, eventually, make_mail, published
from tests.smtp_peer import Received, SmtpPeer

pytestmark = pytest.mark.e2e

QUESTIONS = {"question_ja": "今回の対応はいかがでしたか？", "question_en": "How did we do?"}
MORE = [
    {"id": "speed", "text_ja": "対応の速さはいかがでしたか？", "text_en": "How fast were we?"},
    {"id": "clarity", "text_ja": "説明は分かりやすかったですか？", "text_en": "Were we clear?"},
]


async def survey_on(stack: Stack, admin: str, inbox_id: str, **over: Any) -> dict[str, Any]:
    body = {"enabled": True, **QUESTIONS, "delay_minutes": 0, **over}
    code, out, _ = await call(stack, "PUT", f"/api/v1/inboxes/{inbox_id}/survey", body, token=admin)
    assert code == 200, out
    return out


async def set_status(stack: Stack, token: str, ticket_id: str, status: str, **more: Any) -> None:
    code, out, _ = await call(
        stack, "PATCH", f"/api/v1/tickets/{ticket_id}", {"status": status, **more}, token=token
    )
    assert code == 200, out


def surveys_to(peer: SmtpPeer, tenant: Tenant, number: int) -> list[Received]:
    return [
        r
        for r in peer.received
        if r.message["Auto-Submitted"] == "auto-generated"
        and r.mail_from == tenant.address
        and f"[#{number}]" in str(r.message["Subject"])
    ]


async def mailed(peer: SmtpPeer, tenant: Tenant, number: int, count: int = 1) -> list[Received]:
    """The survey mails of ticket `number` once there are `count` of them."""

    async def probe() -> list[Received] | None:
        got = surveys_to(peer, tenant, number)
        return got if len(got) >= count else None

    result: list[Received] = await eventually(probe, timeout=30, every=0.1)
    return result


async def episodes(stack: Stack, ticket_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        return list(
            await conn.fetch(
                "SELECT * FROM surveys WHERE ticket_id = $1 ORDER BY episode",
                uuid.UUID(ticket_id),
            )
        )
    finally:
        await conn.close()


async def settled_episodes(stack: Stack, ticket_id: str, count: int) -> list[asyncpg.Record]:
    async def probe() -> list[asyncpg.Record] | None:
        rows = await episodes(stack, ticket_id)
        return rows if len(rows) == count and all(r["state"] != "due" for r in rows) else None

    result: list[asyncpg.Record] = await eventually(probe, timeout=30, every=0.2)
    return result


def rating_links(got: Received) -> list[str]:
    text = got.message.get_body(("plain",)).get_content()
    return re.findall(r"(http://\S+/survey/\S+\?rating=\d)", text)


async def page(
    url: str, *, method: str = "GET", data: Any = None, headers: Any = None
) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, data=data, headers=headers) as r:
            return r.status, await r.text()


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
    # what GET answers can be sent back whole, changed: the read-only fields are read
    code, back, _ = await call(stack, "PUT", path, {**again, "contact_days": 8}, token=admin)
    assert code == 200 and back["contact_days"] == 8 and back["scale"] == 5, back
    for bad, field in (({"scale": 10}, "scale"), ({"inbox_id": str(uuid.uuid4())}, "inbox_id")):
        code, out, _ = await call(stack, "PUT", path, {**again, **bad}, token=admin)
        assert code == 400 and out["error"]["field"] == field, (bad, out)
    missing = f"/api/v1/inboxes/{uuid.uuid4()}/survey"
    assert (await call(stack, "PUT", missing, {"enabled": False}, token=admin))[0] == 404


async def test_additional_questions_are_saved_in_order_and_bad_ones_refused(stack: Stack) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    path = f"/api/v1/inboxes/{tenant.inbox_id}/survey"
    saved = await survey_on(stack, admin, tenant.inbox_id, questions=MORE)
    assert saved["questions"] == MORE
    five = [*MORE, *({"id": f"q{n}", "text_ja": "x", "text_en": "x"} for n in range(3))]
    for bad, words in (
        ([MORE[0], {**MORE[1], "id": "speed"}], "questions[2].id speed is used twice"),
        ([{**MORE[0], "text_ja": "  "}], "questions[1].text_ja is required"),
        ([MORE[0], {**MORE[1], "text_en": ""}], "questions[2].text_en is required"),
        (five, "at most 4"),
        ([{**MORE[0], "id": "Not ok"}], "questions[1].id"),
        ("speed", ""),  # not a list, not objects of strings: the schema's 400
        ([{"id": 1}], ""),
        ([{**MORE[0], "colour": "red"}], ""),
    ):
        body = {"enabled": True, **QUESTIONS, "questions": bad}
        code, out, _ = await call(stack, "PUT", path, body, token=admin)
        assert code == 400 and out["error"]["field"].startswith("questions"), (bad, out)
        assert words in out["error"]["message"], out
    code, again, _ = await call(stack, "GET", path, token=admin)
    assert code == 200 and again == saved  # nothing stored
    # reordered and one removed: kept as given
    saved = await survey_on(stack, admin, tenant.inbox_id, questions=[MORE[1]])
    assert saved["questions"] == [MORE[1]]


async def test_one_survey_per_episode_after_the_delay_also_across_a_restart_and_after_a_reopen(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    await survey_on(stack, admin, tenant.inbox_id, delay_minutes=1)
    ticket = await mail_ticket(stack, tenant, agent, f"Parcel {uuid.uuid4().hex[:6]}")
    await set_status(stack, agent, ticket["id"], "resolved")
    [row] = await eventually(lambda: episodes(stack, ticket["id"]), timeout=20)
    assert row["state"] == "due" and row["episode"] == 1
    assert (row["due_at"] - row["resolved_at"]).total_seconds() == 60
    await asyncio.sleep(2)
    assert surveys_to(smtp_peer, tenant, ticket["number"]) == []  # not before the delay
    # outbound dies; the delay passes meanwhile (the due time is a row of its database);
    # back, it sends the survey once
    stack.kill("outbound", signal.SIGKILL)
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        await conn.execute("UPDATE surveys SET due_at = now() WHERE id = $1", row["id"])
    finally:
        await conn.close()
    stack.start_process("outbound")
    await stack.wait_healthy(timeout=60)
    [got] = await mailed(smtp_peer, tenant, ticket["number"])
    assert got.rcpt_tos == ["taro@customer.example"]
    assert got.message["X-Auto-Response-Suppress"] == "All"
    assert got.message["In-Reply-To"]  # threads with the customer's mail
    assert len(rating_links(got)) == 5
    [row] = await settled_episodes(stack, ticket["id"], 1)
    assert row["state"] == "sent" and row["language"] == "en"
    # resolved → pending → resolved without a reopen: the same episode, nothing more
    await set_status(stack, agent, ticket["id"], "pending")
    await set_status(stack, agent, ticket["id"], "resolved")
    # a reopen and a new resolution: a second episode, a second survey
    await survey_on(stack, admin, tenant.inbox_id, delay_minutes=0)
    await set_status(stack, agent, ticket["id"], "open")
    await set_status(stack, agent, ticket["id"], "resolved")
    rows = await settled_episodes(stack, ticket["id"], 2)
    assert [r["state"] for r in rows] == ["sent", "sent"]
    both = await mailed(smtp_peer, tenant, ticket["number"], 2)
    assert both[0].message_id != both[1].message_id
    await asyncio.sleep(1.5)
    assert len(surveys_to(smtp_peer, tenant, ticket["number"])) == 2  # never more
    # the survey is a send of the ticket, kind survey
    code, listed, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=agent)
    assert code == 200, listed
    assert sorted(s["kind"] for s in listed["items"]) == ["survey", "survey"]


async def test_suppressed_by_choice_label_contact_days_and_automatic_senders(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    await survey_on(stack, admin, tenant.inbox_id, skip_labels=["complaint"], contact_days=30)

    # "resolve without survey" on the status change
    t1 = await mail_ticket(stack, tenant, agent, f"No survey {uuid.uuid4().hex[:6]}")
    await set_status(stack, agent, t1["id"], "resolved", without_survey=True)
    [r1] = await settled_episodes(stack, t1["id"], 1)
    assert (r1["state"], r1["reason"]) == ("skipped", "resolved without survey")

    # … on a bulk change
    tb = await mail_ticket(stack, tenant, agent, f"Bulk no survey {uuid.uuid4().hex[:6]}")
    code, out, _ = await call(
        stack,
        "POST",
        "/api/v1/tickets/bulk",
        {"ticket_ids": [tb["id"]], "change": {"status": "resolved", "without_survey": True}},
        token=agent,
    )
    assert code == 200 and out["results"][0]["ok"], out
    [rb] = await settled_episodes(stack, tb["id"], 1)
    assert (rb["state"], rb["reason"]) == ("skipped", "resolved without survey")

    # … and on a reply sent with status_after resolved
    t2 = await mail_ticket(stack, tenant, agent, f"Reply no survey {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, t2)
    code, item = await send_draft(
        stack, agent, draft["id"], fence, status_after="resolved", without_survey=True
    )
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")
    [r2] = await settled_episodes(stack, t2["id"], 1)
    assert (r2["state"], r2["reason"]) == ("skipped", "resolved without survey")

    # a label of the rule
    t3 = await mail_ticket(stack, tenant, agent, f"Labelled {uuid.uuid4().hex[:6]}")
    await set_status(stack, agent, t3["id"], "resolved", add_labels=["complaint"])
    [r3] = await settled_episodes(stack, t3["id"], 1)
    assert (r3["state"], r3["reason"]) == ("skipped", "label complaint")

    # an automatic sender (an autoresponder's mail opened the ticket)
    subject = f"Out of office {uuid.uuid4().hex[:6]}"
    robot = make_mail(subject, sender="Robot <robot@customer.example>", to=tenant.address)
    robot["Auto-Submitted"] = "auto-replied"
    t4 = await mail_ticket(stack, tenant, agent, subject, msg=robot)
    await set_status(stack, agent, t4["id"], "resolved")
    [r4] = await settled_episodes(stack, t4["id"], 1)
    assert (r4["state"], r4["reason"]) == ("skipped", "automatic mail")

    # the contact's N days: the first resolution surveys taro, the next one does not
    t5 = await mail_ticket(stack, tenant, agent, f"First {uuid.uuid4().hex[:6]}")
    await set_status(stack, agent, t5["id"], "resolved")
    [r5] = await settled_episodes(stack, t5["id"], 1)
    assert r5["state"] == "sent"
    t6 = await mail_ticket(stack, tenant, agent, f"Second {uuid.uuid4().hex[:6]}")
    await set_status(stack, agent, t6["id"], "resolved")
    [r6] = await settled_episodes(stack, t6["id"], 1)
    assert (r6["state"], r6["reason"]) == ("skipped", "contact surveyed recently")

    await mailed(smtp_peer, tenant, t5["number"])
    for t in (t1, tb, t2, t3, t4, t6):
        assert surveys_to(smtp_peer, tenant, t["number"]) == [], t["subject"]


async def test_resolve_without_survey_travels_with_an_approval_request(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    """A trainee chooses "resolved" and "resolve without survey" when asking for approval;
    the supervisor approves and sends: the ticket is resolved, no survey is sent. The same
    request without the choice gets a survey (the control)."""
    tenant, admin, _agent, supervisor = await desk(stack)
    await survey_on(stack, admin, tenant.inbox_id)
    trainee = await operator_token(stack, admin, tenant, roles=["trainee"])

    async def approved_and_sent(without: bool) -> dict[str, Any]:
        ticket = await mail_ticket(stack, tenant, trainee, f"Approved {uuid.uuid4().hex[:6]}")
        draft, _fence = await reply_draft(stack, tenant, trainee, ticket)
        body: dict[str, Any] = {"status_after": "resolved"}
        if without:
            body["without_survey"] = True
        code, req, _ = await call(
            stack, "POST", f"/api/v1/drafts/{draft['id']}/approval", body, token=trainee
        )
        assert code == 201 and req["without_survey"] is without, req
        decision = {
            "verdict": "approve_and_send",
            "stage": req["stage"],
            "revision": req["revision"],
        }
        code, out, _ = await call(
            stack, "POST", f"/api/v1/approvals/{req['id']}/decisions", decision, token=supervisor
        )
        assert code == 200 and out["state"] == "approved", out
        return ticket

    without = await approved_and_sent(True)
    control = await approved_and_sent(False)
    [r1] = await settled_episodes(stack, without["id"], 1)
    assert (r1["state"], r1["reason"]) == ("skipped", "resolved without survey")
    [r2] = await settled_episodes(stack, control["id"], 1)
    assert r2["state"] == "sent"
    await mailed(smtp_peer, tenant, control["number"])
    assert surveys_to(smtp_peer, tenant, without["number"]) == []


async def test_the_public_page_records_one_answer_and_refuses_bad_links(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    async with published(stack, "sb.outbound.survey.>") as seen:
        await _answers(stack, smtp_peer, seen)


async def _answers(stack: Stack, smtp_peer: SmtpPeer, seen: list[EventEnvelope]) -> None:
    tenant, admin, agent, _ = await desk(stack)
    code, me, _ = await call(stack, "GET", "/api/v1/me", token=agent)
    assert code == 200, me
    await survey_on(stack, admin, tenant.inbox_id, scale_style="stars")
    body = "注文した商品がまだ届きません。確認していただけますか。よろしくお願いいたします。\n"
    ticket = await mail_ticket(stack, tenant, agent, f"配送について {uuid.uuid4().hex[:6]}", body)
    await set_status(stack, agent, ticket["id"], "resolved")
    [got] = await mailed(smtp_peer, tenant, ticket["number"])
    links = rating_links(got)
    assert len(links) == 5 and "アンケート" in str(got.message["Subject"])

    # one click records the rating at once (no login), in the mail's language
    code, html = await page(links[3])
    assert code == 200, html
    assert "評価 4 を記録しました" in html and QUESTIONS["question_ja"] in html
    # a second click changes it: still one answer
    code, html = await page(links[1])
    assert code == 200 and "評価 2 を記録しました" in html
    [row] = await settled_episodes(stack, ticket["id"], 1)
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        answers = await conn.fetch("SELECT * FROM survey_answers WHERE survey_id = $1", row["id"])
    finally:
        await conn.close()
    assert [(a["rating"], a["changes"]) for a in answers] == [(2, 1)]
    assert row["resolved_by"] is not None  # credited to the operator who resolved it

    # the comment, posted from the page's own form
    token_url = links[0].split("?", 1)[0]
    code, html = await page(token_url, method="POST", data={"comment": "早い対応でした <b>"})
    assert code == 200 and "コメントを受け付けました" in html
    assert "早い対応でした &lt;b&gt;" in html  # escaped
    code, html = await page(
        token_url,
        method="POST",
        data={"comment": "forged"},
        headers={"Origin": "https://evil.example"},
    )
    assert code == 403
    code, html = await page(token_url)
    assert code == 200 and "早い対応でした" in html and "forged" not in html

    # a tampered token, an unknown one, an expired one: refused with a page, never a 500
    token = token_url.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    base = f"{stack.gateway_url}/survey"
    code, html = await page(f"{base}/{tampered}?rating=5")
    assert code == 400 and "not valid" in html
    code, html = await page(f"{base}/not-a-token?rating=5")
    assert code == 400
    secret = survey_domain.derived_secret(stack.config.secret_key)
    old = survey_domain.sign_token(
        secret, tenant.tenant_id, str(row["id"]), now=time.time() - 31 * 86400
    )
    code, html = await page(f"{base}/{old}?rating=5")
    assert code == 410 and "expired" in html
    code, html = await page(f"{base}/{token}?rating=9")
    assert code == 400
    # none of these changed the answer
    code, html = await page(token_url)
    assert code == 200 and "評価 2 を記録しました" in html

    # announced for reporting: sent once, then each change of the answer, credited to the
    # operator who resolved the ticket
    async def announced() -> list[EventEnvelope] | None:
        mine = [e for e in seen if e.survey.ticket_id == ticket["id"]]
        return mine if len(mine) >= 4 else None

    sent, *answered = await eventually(announced, timeout=20)
    assert sent.type == "survey.sent" and sent.survey.send_id
    assert [(e.type, e.survey.rating, e.survey.previous_rating) for e in answered] == [
        ("survey.answered", 4, 0),
        ("survey.answered", 2, 4),
        ("survey.answered", 2, 2),  # the comment
    ]
    assert answered[-1].survey.commented
    for e in (sent, *answered):
        assert e.tenant_id == tenant.tenant_id and e.survey.episode == 1
        assert e.survey.resolved_by.id == me["id"] and e.survey.survey_id == str(row["id"])


async def test_the_page_asks_the_additional_questions_and_a_second_post_changes_them(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    async with published(stack, "sb.outbound.survey.>") as seen:
        tenant, admin, agent, _ = await desk(stack)
        await survey_on(stack, admin, tenant.inbox_id, questions=MORE)
        ticket = await mail_ticket(stack, tenant, agent, f"Questions {uuid.uuid4().hex[:6]}")
        await set_status(stack, agent, ticket["id"], "resolved")
        [got] = await mailed(smtp_peer, tenant, ticket["number"])
        links = rating_links(got)
        assert len(links) == 5  # the mail: one-click links for the main question only
        assert MORE[0]["text_en"] not in got.message.get_body(("plain",)).get_content()
        # the settings change after sending: the survey asks what it was sent with
        await survey_on(stack, admin, tenant.inbox_id, questions=[MORE[1]])
        token_url = links[0].split("?", 1)[0]
        code, html = await page(token_url)
        assert code == 200 and MORE[0]["text_en"] not in html  # no rating yet: not asked
        code, html = await page(links[4])
        assert code == 200 and MORE[0]["text_en"] in html and MORE[1]["text_en"] in html
        assert 'name="q.speed" value="3"' in html

        form = {"q.speed": "4", "q.clarity": "5", "comment": "Quick"}
        code, html = await page(token_url, method="POST", data=form)
        assert code == 200 and "your answers are saved" in html, html
        assert 'name="q.speed" value="4" checked' in html
        # a second submit changes them: clarity left unanswered now, speed 2
        code, html = await page(token_url, method="POST", data={"q.speed": "2", "comment": "Ok"})
        assert code == 200 and 'name="q.speed" value="2" checked' in html
        assert "checked" not in html.split('name="q.clarity"', 1)[1].split("</fieldset>")[0]
        # the same again changes nothing; bad answers are refused and change nothing
        assert (await page(token_url, method="POST", data={"q.speed": "2", "comment": "Ok"}))[
            0
        ] == 200
        for bad in ({"q.speed": "9", "comment": ""}, {"q.other": "3", "comment": ""}):
            assert (await page(token_url, method="POST", data=bad))[0] == 400, bad
        foreign = {"Origin": "https://evil.example"}
        forged = await page(token_url, method="POST", data={"q.speed": "1"}, headers=foreign)
        assert forged[0] == 403
        [row] = await settled_episodes(stack, ticket["id"], 1)
        conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
        try:
            stored = await conn.fetchrow(
                "SELECT rating, comment, answers, changes FROM survey_answers WHERE survey_id = $1",
                row["id"],
            )
        finally:
            await conn.close()
        answers = json.loads(stored["answers"])  # a plain connection: jsonb as text
        assert (stored["rating"], stored["comment"], answers) == (5, "Ok", {"speed": 2})
        assert stored["changes"] == 2

        async def announced() -> list[EventEnvelope] | None:
            mine = [e for e in seen if e.survey.ticket_id == ticket["id"]]
            return mine if len(mine) >= 4 else None

        _sent, *answered = await eventually(announced, timeout=20)
        await asyncio.sleep(0.5)
        assert len([e for e in seen if e.survey.ticket_id == ticket["id"]]) == 4  # no more
        got_answers = [
            [(a.question_id, a.rating, a.text_en) for a in e.survey.answers] for e in answered
        ]
        assert got_answers == [
            [],
            [("speed", 4, MORE[0]["text_en"]), ("clarity", 5, MORE[1]["text_en"])],
            [("speed", 2, MORE[0]["text_en"])],
        ]
        assert [e.survey.comment for e in answered] == ["", "Quick", "Ok"]
        assert answered[-1].survey.answers[0].text_ja == MORE[0]["text_ja"]
        assert {e.survey.ticket_number for e in answered} == {ticket["number"]}


async def test_an_operator_learns_only_of_the_inboxes_they_see_having_surveys(
    stack: Stack,
) -> None:
    """ListSurveyInboxes (behind `survey_enabled` in GET /api/v1/inboxes) answers any
    operator, so it names only the inboxes that operator sees — over gRPC too."""
    import grpc
    from switchboard.v1 import outbound_pb2, outbound_pb2_grpc

    from services.runtime.identity import Identity
    from tests.e2e.test_ui import other_inbox

    tenant, admin, _agent, _ = await desk(stack)
    _address, hidden = await other_inbox(stack, admin, "Hidden", ())
    for inbox in (tenant.inbox_id, hidden):
        await survey_on(stack, admin, inbox)
    port = stack.config.ports.grpc["outbound"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = outbound_pb2_grpc.OutboundServiceStub(channel)

        async def listed(inboxes: frozenset[str] | None) -> list[str]:
            who = Identity(
                tenant_id=tenant.tenant_id,
                operator_id=str(uuid.uuid4()),
                roles=("agent",),
                inboxes=inboxes,
            )
            resp = await stub.ListSurveyInboxes(
                outbound_pb2.ListSurveyInboxesRequest(), metadata=who.metadata(), timeout=5
            )
            return list(resp.inbox_ids)

        assert await listed(frozenset({tenant.inbox_id})) == [tenant.inbox_id]
        assert await listed(frozenset()) == []
        assert sorted(await listed(None)) == sorted([tenant.inbox_id, hidden])
