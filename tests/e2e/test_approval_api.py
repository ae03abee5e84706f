"""Approval through the REST API and the live socket (issue 17), over HTTP through the
real gateway: a trainee's request in an approver's queue and not in another inbox's
operator's, nor after logout; the request with its draft (masked for the trainee) and the
diff showing the word an approver inserted; two approvers racing (one 200, one 409
naming the winner); a decision on a cancelled request; a send-back without a comment;
policies refused field by field with nothing stored; an approver's socket told of a new
request with a notification, the author's of a send-back, another inbox's of neither;
the demo tenant's supervisor login."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from services.runtime.demo import SUPPORT_INBOX
from tests.e2e.test_access import own_operator, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.helpers import Tenant, login, make_mail, send

pytestmark = pytest.mark.e2e

CUSTOMER = "taro.yamada@customer.example"


@dataclass
class Op:
    id: str
    token: str
    name: str


@dataclass
class Office:
    tenant: Tenant
    admin: str
    private_inbox: str  # an inbox the trainee and the approvers are not members of
    trainee: Op
    sups: list[Op]
    outsider: Op  # a supervisor of the private inbox only


async def _op(stack: Stack, admin: str, tenant: Tenant, name: str, **fields: Any) -> Op:
    op_id, _, token = await own_operator(stack, admin, tenant, display_name=name, **fields)
    return Op(op_id, token, name)


async def make_office(stack: Stack) -> Office:
    tenant, admin = await admin_of(stack)
    address = f"private@{uuid.uuid4().hex[:8]}.example"
    code, private, _ = await call(
        stack, "POST", "/api/v1/inboxes", {"name": "Private", "addresses": [address]}, token=admin
    )
    assert code == 201, private
    tag = uuid.uuid4().hex[:4]
    trainee = await _op(stack, admin, tenant, f"Tomo {tag}", roles=["trainee"])
    sups = [await _op(stack, admin, tenant, f"Sup {i} {tag}", roles=["supervisor"]) for i in (1, 2)]
    outsider = await _op(
        stack,
        admin,
        tenant,
        f"Outsider {tag}",
        roles=["supervisor"],
        inbox_ids=[private["id"]],
    )
    return Office(tenant, admin, private["id"], trainee, sups, outsider)


async def new_mail(stack: Stack, office: Office, author: Op, body: str) -> dict[str, Any]:
    """A new mail (no ticket, so no reply lock) written by `author`."""
    code, draft, _ = await call(
        stack, "POST", "/api/v1/drafts", {"inbox_id": office.tenant.inbox_id}, token=author.token
    )
    assert code == 201, draft
    code, saved, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {
            "from_address": draft["current"]["from_address"],
            "to": [CUSTOMER],
            "subject": "Your order",
            "body_text": body,
        },
        token=author.token,
    )
    assert code == 200, saved
    return dict(saved)


async def request_approval(stack: Stack, draft_id: str, who: Op, **body: Any) -> dict[str, Any]:
    code, req, _ = await call(
        stack, "POST", f"/api/v1/drafts/{draft_id}/approval", body, token=who.token
    )
    assert code == 201, req
    return dict(req)


async def queue(stack: Stack, who: Op) -> tuple[int, Any]:
    code, body, _ = await call(stack, "GET", "/api/v1/approvals", token=who.token)
    return code, body


async def decide(
    stack: Stack, who: Op, req: dict[str, Any], verdict: str, comment: str = ""
) -> tuple[int, Any]:
    body: dict[str, Any] = {"verdict": verdict, "stage": req["stage"], "revision": req["revision"]}
    if comment:
        body["comment"] = comment
    code, out, _ = await call(
        stack, "POST", f"/api/v1/approvals/{req['id']}/decisions", body, token=who.token
    )
    return code, out


async def test_a_request_is_in_its_approvers_queue_only_and_shown_masked_to_the_trainee(
    stack: Stack,
) -> None:
    office = await make_office(stack)
    draft = await new_mail(stack, office, office.trainee, "Thank you for your order.")
    code, refused, _ = await call(
        stack, "POST", f"/api/v1/drafts/{draft['id']}/send", {}, token=office.trainee.token
    )
    assert (code, refused["error"]["code"]) == (403, "approval_required"), refused

    req = await request_approval(
        stack, draft["id"], office.trainee, note="初めての返信です", status_after="pending"
    )
    assert req["state"] == "pending" and req["stage"] == 0
    assert req["submitted_revision"] == req["revision"] == draft["current"]["revision"]
    assert req["note"] == "初めての返信です" and req["status_after"] == "pending"
    assert req["can_decide"] is False and req["can_cancel"] is True  # the author's view

    for sup in office.sups:
        code, mine = await queue(stack, sup)
        assert code == 200 and mine["count"] == 1, mine
        (shown,) = mine["approvals"]
        assert shown["id"] == req["id"] and shown["can_decide"] is True
        assert shown["can_cancel"] is True  # supervisors may take over locks
        code, counted, _ = await call(stack, "GET", "/api/v1/approvals/count", token=sup.token)
        assert (code, counted) == (200, {"count": 1})
    code, theirs = await queue(stack, office.outsider)
    assert (code, theirs) == (200, {"approvals": [], "count": 0})
    code, hidden, _ = await call(
        stack, "GET", f"/api/v1/approvals/{req['id']}", token=office.outsider.token
    )
    assert code == 404, hidden
    code, _, _ = await call(stack, "GET", "/api/v1/approvals/count", token=office.trainee.token)
    assert code == 200

    # the approver sees the customer's address, the trainee only its mask
    code, full, _ = await call(
        stack, "GET", f"/api/v1/approvals/{req['id']}", token=office.sups[0].token
    )
    assert code == 200 and full["draft"]["current"]["to"] == [CUSTOMER], full
    assert full["diff"] == {
        "from_revision": req["submitted_revision"],
        "to_revision": req["revision"],
        "fields": [],
    }
    code, own, _ = await call(
        stack, "GET", f"/api/v1/approvals/{req['id']}", token=office.trainee.token
    )
    assert code == 200 and own["draft"]["id"] == draft["id"]
    assert CUSTOMER not in json.dumps(own), own["draft"]["current"]["to"]

    # logged out: no queue
    sup = office.sups[1]
    code, _, _ = await call(stack, "DELETE", "/api/v1/sessions/current", token=sup.token)
    assert code in (200, 204)
    code, gone = await queue(stack, sup)
    assert code == 401, gone


async def test_the_diff_shows_the_word_an_approver_inserted_and_the_history_keeps_it(
    stack: Stack,
) -> None:
    """An agent ticks "request approval" on a reply (anyone may ask): the send is refused
    until approved; a supervisor takes the ticket's reply lock, inserts a word, and sees it
    in the request's diff."""
    office = await make_office(stack)
    agent = await _op(stack, office.admin, office.tenant, "Aiko", roles=["agent"])
    subject = f"Order {uuid.uuid4().hex[:6]}"
    address = office.tenant.address
    await asyncio.to_thread(
        send, stack.smtp_port, make_mail(subject, sender=CUSTOMER, to=address), [address]
    )
    ticket = await ticket_by_subject(stack, agent.token, subject)
    path = f"/api/v1/tickets/{ticket['id']}/lock"
    code, lock, _ = await call(stack, "POST", path, token=agent.token)
    assert code == 200, lock
    code, draft, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{ticket['id']}/drafts",
        {"kind": "reply", "fence": lock["fence"]},
        token=agent.token,
    )
    assert code == 201, draft

    def content(body: str, fence: int) -> dict[str, Any]:
        cur = draft["current"]
        return {
            "fence": fence,
            "from_address": cur["from_address"],
            "to": cur["to"],
            "subject": cur["subject"],
            "body_text": body,
        }

    code, saved, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        content("Thank you for your order.", lock["fence"]),
        token=agent.token,
    )
    assert code == 200, saved
    # an agent may send alone, unless they tick "request approval"
    code, refused, _ = await call(
        stack,
        "POST",
        f"/api/v1/drafts/{draft['id']}/send",
        {"fence": lock["fence"], "request_approval": True},
        token=agent.token,
    )
    assert (code, refused["error"]["code"]) == (403, "approval_required"), refused
    req = await request_approval(stack, draft["id"], agent, note="please check")

    sup = office.sups[0]
    code, held, _ = await call(stack, "POST", path, token=sup.token)
    if code == 409:  # the author still holds it
        code, held, _ = await call(stack, "POST", f"{path}/takeover", token=sup.token)
    assert code == 200, held
    code, edited, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        content("Thank you very much for your order.", held["fence"]),
        token=sup.token,
    )
    assert code == 200, edited
    code, full, _ = await call(stack, "GET", f"/api/v1/approvals/{req['id']}", token=sup.token)
    assert code == 200, full
    diff = full["diff"]
    assert diff["from_revision"] == saved["current"]["revision"] == full["submitted_revision"]
    assert diff["to_revision"] == edited["current"]["revision"]
    body = next(f for f in diff["fields"] if f["field"] == "body_text")
    inserted = "".join(o["text"] for o in body["ops"] if o["op"] == "insert")
    assert "very" in inserted and not [o for o in body["ops"] if o["op"] == "delete"], body

    code, done = await decide(stack, sup, {**req, "revision": diff["to_revision"]}, "approve")
    assert code == 200 and done["state"] == "approved", done
    assert done["revision"] == edited["current"]["revision"]
    assert done["submitted_revision"] == saved["current"]["revision"]  # it never moves
    code, rounds, _ = await call(
        stack, "GET", f"/api/v1/drafts/{draft['id']}/approvals", token=agent.token
    )
    assert code == 200 and [r["id"] for r in rounds["approvals"]] == [req["id"]]
    (decision,) = rounds["approvals"][0]["decisions"]
    assert decision["approver"] == {"id": sup.id, "name": sup.name}
    assert decision["verdict"] == "approve"


async def test_racing_approvers_make_one_decision_and_a_cancelled_request_is_409(
    stack: Stack,
) -> None:
    office = await make_office(stack)
    draft = await new_mail(stack, office, office.trainee, "Race me")
    req = await request_approval(stack, draft["id"], office.trainee)
    (a, out_a), (b, out_b) = await asyncio.gather(
        decide(stack, office.sups[0], req, "approve"),
        decide(stack, office.sups[1], req, "send_back", "use the polite form"),
    )
    assert sorted((a, b)) == [200, 409], (out_a, out_b)
    won, lost = (out_a, out_b) if a == 200 else (out_b, out_a)
    winner = won["decisions"][0]["approver"]["name"]
    assert lost["error"]["code"] == "failed_precondition"
    assert winner in lost["error"]["message"], lost

    # send back needs a comment; a decision on a cancelled request names who cancelled
    draft2 = await new_mail(stack, office, office.trainee, "Cancel me")
    req2 = await request_approval(stack, draft2["id"], office.trainee)
    code, bad = await decide(stack, office.sups[0], req2, "send_back")
    assert code == 400 and bad["error"]["field"] == "comment", bad
    code, cancelled, _ = await call(
        stack, "DELETE", f"/api/v1/approvals/{req2['id']}", token=office.trainee.token
    )
    assert code == 200 and cancelled["state"] == "cancelled", cancelled
    assert cancelled["can_cancel"] is False
    code, late = await decide(stack, office.sups[0], req2, "approve")
    assert code == 409 and office.trainee.name in late["error"]["message"], late
    code, rounds, _ = await call(
        stack, "GET", f"/api/v1/drafts/{draft2['id']}/approvals", token=office.trainee.token
    )
    assert [r["decisions"] for r in rounds["approvals"]] == [[]]  # nothing was decided


async def test_bad_policies_are_refused_naming_the_field_and_nothing_is_stored(
    stack: Stack,
) -> None:
    office = await make_office(stack)
    admin = office.admin

    def stage(*approvers: dict[str, str]) -> dict[str, Any]:
        return {"name": "S", "approvers": list(approvers)}

    members = {"kind": "inbox_members"}
    for body, field in (
        ({"name": "Four", "stages": [stage(members)] * 4}, "stages"),
        ({"name": "None", "stages": []}, "stages"),
        ({"name": "Empty", "stages": [stage(members), stage()]}, "stages[1].approvers"),
        (
            {
                "name": "Unknown",
                "stages": [
                    stage(
                        members, {"kind": "role", "id": "supervisor"}, {"kind": "role", "id": "x"}
                    )
                ],
            },
            "stages[0].approvers[2].id",
        ),
        (
            {"name": "Ghost", "stages": [stage({"kind": "operator", "id": str(uuid.uuid4())})]},
            "stages[0].approvers[0].id",
        ),
    ):
        code, refused, _ = await call(stack, "POST", "/api/v1/approval-policies", body, token=admin)
        assert code == 400 and refused["error"]["field"] == field, (body["name"], refused)
    code, listed, _ = await call(stack, "GET", "/api/v1/approval-policies", token=admin)
    assert code == 200 and [p["builtin"] for p in listed["policies"]] == [True], listed

    # a good one, changed with its version, then a stale version is 409
    good = {
        "name": "Two stages",
        "inbox_id": office.tenant.inbox_id,
        "stages": [stage({"kind": "operator", "id": office.sups[0].id}), stage(members)],
        "conditions": [{"kind": "words", "values": ["refund"]}],
    }
    code, made, _ = await call(stack, "POST", "/api/v1/approval-policies", good, token=admin)
    assert code == 201 and made["version"] == 1 and made["inbox_id"] == office.tenant.inbox_id
    code, changed, _ = await call(
        stack,
        "PUT",
        f"/api/v1/approval-policies/{made['id']}",
        {**good, "name": "Renamed", "version": 1},
        token=admin,
    )
    assert code == 200 and (changed["name"], changed["version"]) == ("Renamed", 2), changed
    code, stale, _ = await call(
        stack,
        "PUT",
        f"/api/v1/approval-policies/{made['id']}",
        {**good, "version": 1},
        token=admin,
    )
    assert code == 409 and stale["error"]["field"] == "version", stale
    code, denied, _ = await call(
        stack, "POST", "/api/v1/approval-policies", good, token=office.trainee.token
    )
    assert code == 403, denied
    code, _, _ = await call(stack, "DELETE", f"/api/v1/approval-policies/{made['id']}", token=admin)
    assert code == 204

    # "always needs approval until": set, listed, cleared
    until = "2099-01-01T00:00:00Z"
    path = f"/api/v1/operators/{office.sups[1].id}/approval-flag"
    code, flag, _ = await call(stack, "PUT", path, {"until": until}, token=admin)
    assert code == 200 and flag["until"] == until and flag["set_by"]["name"] == "Boss", flag
    code, flags, _ = await call(stack, "GET", "/api/v1/approval-flags", token=admin)
    assert [f["operator_id"] for f in flags["flags"]] == [office.sups[1].id]
    code, cleared, _ = await call(stack, "PUT", path, {"until": None}, token=admin)
    assert code == 200 and cleared["until"] is None


async def _socket(http: aiohttp.ClientSession, stack: Stack, who: Op) -> Any:
    ws = await http.ws_connect(
        f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {who.token}"}
    )
    hello = json.loads((await ws.receive(timeout=5)).data)
    assert hello["type"] == "hello"
    return ws


async def _next(ws: Any, *types: str) -> dict[str, Any]:
    """The next message of one of these types (others, such as send changes, skipped)."""
    while True:
        msg = json.loads((await ws.receive(timeout=10)).data)
        if msg["type"] in types:
            return dict(msg)


async def test_live_an_approver_is_told_of_a_request_and_the_author_of_its_send_back(
    stack: Stack,
) -> None:
    office = await make_office(stack)
    sup, trainee, outsider = office.sups[0], office.trainee, office.outsider
    draft = await new_mail(stack, office, trainee, "Live approval")
    async with aiohttp.ClientSession() as http:
        sockets = {
            "sup": await _socket(http, stack, sup),
            "trainee": await _socket(http, stack, trainee),
            "outsider": await _socket(http, stack, outsider),
        }
        req = await request_approval(stack, draft["id"], trainee)
        pushed = await _next(sockets["sup"], "approval.changed")
        assert pushed["change"] == "requested" and pushed["approval"]["id"] == req["id"]
        assert "can_decide" not in pushed["approval"]
        note = await _next(sockets["sup"], "notification")
        assert note["kind"] == "approval_requested" and note["approval"]["id"] == req["id"]
        own = await _next(sockets["trainee"], "approval.changed", "notification")
        assert own["type"] == "approval.changed"  # the author is not notified of their own
        assert CUSTOMER not in json.dumps(own)

        code, back = await decide(stack, sup, req, "send_back", "敬語を直してください")
        assert code == 200, back
        changed = await _next(sockets["trainee"], "approval.changed")
        assert changed["change"] == "sent_back"
        told = await _next(sockets["trainee"], "notification")
        assert told["kind"] == "approval_decided" and told["change"] == "sent_back"
        assert told["approval"]["decisions"][-1]["comment"] == "敬語を直してください"

        # the outsider's first approval message is about their own inbox's request
        code, mine, _ = await call(
            stack, "POST", "/api/v1/drafts", {"inbox_id": office.private_inbox}, token=office.admin
        )
        assert code == 201, mine
        code, theirs, _ = await call(
            stack, "POST", f"/api/v1/drafts/{mine['id']}/approval", {}, token=office.admin
        )
        assert code == 201, theirs
        first = await _next(sockets["outsider"], "approval.changed", "notification")
        assert first["approval"]["id"] == theirs["id"], first
        for ws in sockets.values():
            await ws.close()


async def test_the_demo_supervisor_approves_the_demo_trainee(stack: Stack) -> None:
    """`make run`'s demo tenant has a supervisor login whose queue holds the trainee's
    requests (the built-in policy: the inbox's members holding `approve`)."""
    trainee = await login(stack, "trainee@demo.example")
    supervisor = await login(stack, "supervisor@demo.example")
    code, me, _ = await call(stack, "GET", "/api/v1/me", token=supervisor)
    assert code == 200 and "approve" in me["permissions"] and "supervisor" in me["roles"]
    code, draft, _ = await call(
        stack, "POST", "/api/v1/drafts", {"inbox_id": str(SUPPORT_INBOX)}, token=trainee
    )
    assert code == 201, draft
    code, req, _ = await call(
        stack, "POST", f"/api/v1/drafts/{draft['id']}/approval", {}, token=trainee
    )
    assert code == 201, req
    code, mine, _ = await call(stack, "GET", "/api/v1/approvals", token=supervisor)
    assert code == 200 and req["id"] in [a["id"] for a in mine["approvals"]], mine
    code, _, _ = await call(stack, "DELETE", f"/api/v1/approvals/{req['id']}", token=trainee)
    assert code == 200
