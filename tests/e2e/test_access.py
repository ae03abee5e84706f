"""Who sees what (issue 5, SEC-5…7): an operator sees only the inboxes of their groups,
in every view and push; customers' addresses and phone numbers are masked for operators
without the permission, in every kind of answer; every state-changing action lands in
the operation log, searchable and downloadable by who may."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests.e2e.test_accounts import admin_of, call, log_in, new_operator
from tests.helpers import Tenant, eventually, make_mail, send

pytestmark = pytest.mark.e2e

CUSTOMER = "taro.yamada@customer.example"
PHONE = "090-1234-5678"


OWN_PASSWORD = "my own password 9"


async def own_operator(
    stack: Stack, admin: str, tenant: Tenant, **fields: Any
) -> tuple[str, str, str]:
    """An operator who has chosen their own password (OWN_PASSWORD): id, login, token."""
    op_id, login, temporary = await new_operator(stack, admin, tenant, **fields)
    token = (await log_in(stack, login, temporary))[1]["token"]
    code, body, _ = await call(
        stack,
        "POST",
        "/api/v1/me/password",
        {"current_password": temporary, "new_password": OWN_PASSWORD},
        token=token,
    )
    assert code == 200, body
    return op_id, login, str(token)


async def operator_token(stack: Stack, admin: str, tenant: Tenant, **fields: Any) -> str:
    """A logged-in operator who has chosen their own password."""
    return (await own_operator(stack, admin, tenant, **fields))[2]


async def ticket_by_subject(stack: Stack, token: str, subject: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        code, body, _ = await call(stack, "GET", "/api/v1/tickets?limit=200", token=token)
        assert code == 200, body
        return next((t for t in body["items"] if t["subject"] == subject), None)

    result: dict[str, Any] = await eventually(found, timeout=30)
    return result


async def raw_get(stack: Stack, token: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}{path}", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            return r.status, await r.text()


async def _private_inbox_and_an_agent(
    stack: Stack,
) -> tuple[Tenant, str, str, dict[str, Any], str]:
    """A tenant with a second inbox "Private" and an agent of "Help" only: (tenant, admin
    token, agent token, the private inbox, its address)."""
    tenant, admin = await admin_of(stack)
    private = f"private@{uuid.uuid4().hex[:8]}.example"
    code, inbox, _ = await call(
        stack, "POST", "/api/v1/inboxes", {"name": "Private", "addresses": [private]}, token=admin
    )
    assert code == 201, inbox
    agent = await operator_token(stack, admin, tenant, roles=["agent"])
    return tenant, admin, agent, inbox, private


async def test_an_operator_sees_only_the_inboxes_of_their_groups(stack: Stack) -> None:
    tenant, admin, agent, inbox, private = await _private_inbox_and_an_agent(stack)
    code, mine, _ = await call(stack, "GET", "/api/v1/inboxes", token=agent)
    assert [i["name"] for i in mine["items"]] == ["Help"]

    secret_subject = f"Board minutes {uuid.uuid4().hex[:6]}"
    open_subject = f"Where is my parcel {uuid.uuid4().hex[:6]}"
    sender = f"Taro <{CUSTOMER}>"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {agent}"}
        ) as ws:
            await ws.receive(timeout=5)  # hello
            await asyncio.to_thread(
                send,
                stack.smtp_port,
                make_mail(secret_subject, sender=sender, to=private),
                [private],
            )
            theirs = await ticket_by_subject(stack, admin, secret_subject)
            await asyncio.to_thread(
                send,
                stack.smtp_port,
                make_mail(open_subject, sender=sender, to=tenant.address),
                [tenant.address],
            )
            ours = await ticket_by_subject(stack, agent, open_subject)
            pushed: list[str] = []
            while not any(open_subject in p for p in pushed):
                pushed.append((await ws.receive(timeout=10)).data)
            assert all(secret_subject not in p for p in pushed)

    code, listed, _ = await call(stack, "GET", "/api/v1/tickets?limit=200", token=agent)
    assert [t["subject"] for t in listed["items"]] == [open_subject]
    for path in (
        f"/api/v1/tickets/{theirs['id']}",
        f"/api/v1/tickets/{theirs['id']}/audit",
        f"/api/v1/tickets/{theirs['id']}/lock",
        f"/api/v1/inboxes/{inbox['id']}/settings",
    ):
        code, body, _ = await call(stack, "GET", path, token=agent)
        assert code == 404, (path, body)
    code, found, _ = await call(stack, "GET", "/api/v1/tickets?q=minutes", token=agent)
    assert found["items"] == []
    for method, path, body in (
        ("PATCH", f"/api/v1/tickets/{theirs['id']}", {"status": "resolved"}),
        ("POST", f"/api/v1/tickets/{theirs['id']}/lock", None),
        ("POST", f"/api/v1/tickets/{theirs['id']}/comments", {"body": "peek"}),
        ("POST", f"/api/v1/tickets/{ours['id']}/merge", {"source_id": theirs["id"]}),
    ):
        code, answer, _ = await call(stack, method, path, body, token=agent)
        assert code == 404, (path, answer)
    code, answer, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{ours['id']}/transfer",
        {"inbox_id": inbox["id"]},
        token=agent,
    )
    assert code == 403, answer

    # the mail itself: the ticket it is in decides (ingestion asks tickets)
    detail = (await call(stack, "GET", f"/api/v1/tickets/{theirs['id']}", token=admin))[1]
    message_id = detail["messages"][0]["id"]
    for suffix in ("", "/raw", "/attachments/0"):
        code, _ = await raw_get(stack, agent, f"/api/v1/messages/{message_id}{suffix}")
        assert code == 404, suffix
    # one contact for both tickets; its timeline shows the agent only what they may see
    contact_id = ours["contact_id"]
    code, timeline, _ = await call(
        stack, "GET", f"/api/v1/contacts/{contact_id}/timeline", token=agent
    )
    assert {e["ticket_id"] for e in timeline["items"]} == {ours["id"]}
    code, timeline, _ = await call(
        stack, "GET", f"/api/v1/contacts/{contact_id}/timeline", token=admin
    )
    assert {e["ticket_id"] for e in timeline["items"]} == {ours["id"], theirs["id"]}

    # made a member, the agent sees it (on the next request)
    code, me, _ = await call(stack, "GET", "/api/v1/me", token=agent)
    code, _, _ = await call(
        stack, "PATCH", f"/api/v1/inboxes/{inbox['id']}", {"member_ids": [me["id"]]}, token=admin
    )
    assert code == 200
    code, _, _ = await call(stack, "GET", f"/api/v1/tickets/{theirs['id']}", token=agent)
    assert code == 200


async def test_a_transfer_tells_the_old_inboxs_operators_only_to_drop_the_ticket(
    stack: Stack,
) -> None:
    tenant, admin, agent, inbox, _ = await _private_inbox_and_an_agent(stack)
    subject = f"Moving on {uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(
        send,
        stack.smtp_port,
        make_mail(subject, sender=f"Taro <{CUSTOMER}>", to=tenant.address),
        [tenant.address],
    )
    ticket = await ticket_by_subject(stack, agent, subject)
    async with aiohttp.ClientSession() as http:
        sockets = {}
        for name, token in (("agent", agent), ("admin", admin)):
            sockets[name] = await http.ws_connect(
                f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
            )
            await sockets[name].receive(timeout=5)  # hello
        code, _, _ = await call(
            stack,
            "POST",
            f"/api/v1/tickets/{ticket['id']}/transfer",
            {"inbox_id": inbox["id"], "note": "for the board"},
            token=admin,
        )
        assert code == 200
        got = {
            name: json.loads((await ws.receive(timeout=10)).data) for name, ws in sockets.items()
        }
        for ws in sockets.values():
            await ws.close()
    assert got["admin"]["type"] == "ticket.updated"
    assert got["admin"]["ticket"]["inbox"]["name"] == "Private"
    left = got["agent"]
    assert left["type"] == "ticket.left"
    assert (left["ticket_id"], left["inbox_id"]) == (ticket["id"], tenant.inbox_id)
    assert subject not in json.dumps(left) and "Private" not in json.dumps(left)


async def test_customer_addresses_and_phones_are_masked_without_the_permission(
    stack: Stack,
) -> None:
    tenant, admin = await admin_of(stack)
    trainee = await operator_token(stack, admin, tenant, roles=["trainee"])
    agent = await operator_token(stack, admin, tenant, roles=["agent"])
    subject = f"Refund for {CUSTOMER} {uuid.uuid4().hex[:6]}"
    msg = make_mail(
        subject,
        sender=f"Taro Yamada <{CUSTOMER}>",
        to=tenant.address,
        body=f"Please write to {CUSTOMER} or call {PHONE}.\n",
    )
    msg.add_alternative(f"<p>Mail <a href='mailto:{CUSTOMER}'>{CUSTOMER}</a></p>", subtype="html")
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])
    ticket = await ticket_by_subject(stack, agent, subject)
    tid, contact_id = ticket["id"], ticket["contact_id"]
    code, _, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{tid}/memos",
        {"body": f"Called back on {PHONE}", "direction": "outbound", "phone": PHONE},
        token=agent,
    )
    assert code == 201
    code, _, _ = await call(
        stack, "PATCH", f"/api/v1/contacts/{contact_id}", {"phones": [PHONE]}, token=agent
    )
    assert code == 200
    detail = (await call(stack, "GET", f"/api/v1/tickets/{tid}", token=agent))[1]
    message_id = next(m["id"] for m in detail["messages"] if m["channel"] != "phone")

    paths = [
        "/api/v1/tickets?limit=200",
        f"/api/v1/tickets?q={subject.split()[-1]}",
        f"/api/v1/tickets/{tid}",
        f"/api/v1/tickets/{tid}/audit",
        f"/api/v1/messages/{message_id}",
        "/api/v1/contacts?limit=200",
        f"/api/v1/contacts/{contact_id}",
        f"/api/v1/contacts/{contact_id}/timeline",
    ]
    for path in paths:
        code, text = await raw_get(stack, agent, path)
        assert code == 200, (path, text)
    seen_by_agent = [(await raw_get(stack, agent, p))[1] for p in paths]
    assert all(CUSTOMER in t for t in seen_by_agent[2:3] + seen_by_agent[4:7])
    for path in paths:
        code, text = await raw_get(stack, trainee, path)
        assert code == 200, (path, text)
        assert CUSTOMER not in text and PHONE not in text, path
    masked = (await raw_get(stack, trainee, f"/api/v1/tickets/{tid}"))[1]
    assert "t***@c***.example" in masked and "***-****-**78" in masked
    # the inbox's own address is ours, not the customer's: shown as it is
    mail = json.loads((await raw_get(stack, trainee, f"/api/v1/messages/{message_id}"))[1])
    assert tenant.address.lower() in json.dumps(mail).lower(), mail
    assert CUSTOMER not in json.dumps(mail)
    ticket_for_trainee = json.loads(masked)
    assert ticket_for_trainee["actions"]["see_customer_addresses"] is False
    assert ticket_for_trainee["actions"]["download_original"] is False
    # the original mail holds every address: trainees may not download it
    code, body, _ = await call(stack, "GET", f"/api/v1/messages/{message_id}/raw", token=trainee)
    assert code == 403 and body["error"]["code"] == "permission_denied"

    # pushes too: a change to the ticket reaches both, masked for the trainee only
    async with aiohttp.ClientSession() as http:
        sockets = {}
        for name, token in (("trainee", trainee), ("agent", agent)):
            sockets[name] = await http.ws_connect(
                f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
            )
            await sockets[name].receive(timeout=5)
        code, _, _ = await call(
            stack, "PATCH", f"/api/v1/tickets/{tid}", {"priority": "high"}, token=agent
        )
        assert code == 200
        texts = {}
        for name, ws in sockets.items():
            texts[name] = (await ws.receive(timeout=10)).data
            await ws.close()
    assert CUSTOMER in texts["agent"] and CUSTOMER not in texts["trainee"]
    assert "t***@c***.example" in texts["trainee"]


async def test_every_change_is_in_the_operation_log_for_who_may_read_it(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    supervisor = await operator_token(stack, admin, tenant, roles=["supervisor"])
    agent = await operator_token(stack, admin, tenant, roles=["agent"])
    subject = f"Log me {uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(
        send, stack.smtp_port, make_mail(subject, to=tenant.address), [tenant.address]
    )
    ticket = await ticket_by_subject(stack, agent, subject)
    client = "203.0.113.77"
    code, _, _ = await call(
        stack,
        "PATCH",
        f"/api/v1/tickets/{ticket['id']}",
        {"status": "pending"},
        token=agent,
        client=client,
    )
    assert code == 200
    missing = str(uuid.uuid4())
    code, _, _ = await call(
        stack, "PATCH", f"/api/v1/tickets/{missing}", {"status": "pending"}, token=agent
    )
    assert code == 404

    async def logged() -> list[dict[str, Any]] | None:
        code, body, _ = await call(
            stack, "GET", "/api/v1/operations?action=updateTicket", token=supervisor
        )
        assert code == 200, body
        return body["items"] if len(body["items"]) >= 2 else None

    entries = await eventually(logged, timeout=15)
    failed, done = entries[0], entries[1]
    assert done["target"] == ticket["id"] and done["status"] == 200
    assert done["method"] == "PATCH" and done["client_address"] == client
    assert done["operator"]["name"] == "New Operator"
    assert failed["target"] == missing and failed["status"] == 404
    code, body, _ = await call(
        stack, "GET", f"/api/v1/operations?target={ticket['id']}", token=supervisor
    )
    assert [e["id"] for e in body["items"]] == [done["id"]]
    # reading changes nothing and is not logged
    code, body, _ = await call(stack, "GET", "/api/v1/operations?action=getTicket", token=admin)
    assert body["items"] == []

    assert (await call(stack, "GET", "/api/v1/operations", token=agent))[0] == 403
    # the CSV needs the permission to export as well: the supervisor has it, as does admin
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}/api/v1/operations.csv?action=updateTicket",
            headers={"Authorization": f"Bearer {supervisor}"},
        ) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
            text = (await r.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["target"] for row in rows] == [missing, ticket["id"]]
    assert rows[1]["status"] == "200" and rows[1]["client_address"] == client
    code, _, _ = await call(
        stack,
        "PUT",
        "/api/v1/roles/supervisor",
        {"permissions": ["view_operation_log"]},
        token=admin,
    )
    assert code == 200
    assert (await call(stack, "GET", "/api/v1/operations.csv", token=supervisor))[0] == 403
