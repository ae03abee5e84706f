"""Every route of gateway/openapi.yaml, generated from the document (so a new route is
covered without a new test), against the running system (issue 5, SEC-4/5):

- without credentials → 401, unless the operation is public (`security: []`);
- as an operator of another tenant, with this tenant's ids in the path → 403 or 404;
- as an operator without the permission the operation names (`x-sb-permission`) → 403;
- as a member of another inbox, with the ticket, mail, draft, send or approval request of
  an inbox they do not belong to → 404, the same answer as for an id that does not exist.

Bodies are the smallest the operation's schema accepts, so that a refusal is about who
asks, not about what they sent.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway import app as gateway_app
from services.devstack.stack import Stack
from services.runtime import permissions
from tests.e2e.test_access import operator_token, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call, log_in, new_operator
from tests.helpers import make_mail, send

pytestmark = pytest.mark.e2e

SPEC = yaml.safe_load(Path(gateway_app.__file__).with_name("openapi.yaml").read_text())
METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    op: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.op["operationId"])

    @property
    def public(self) -> bool:
        return self.op.get("security", SPEC.get("security")) == []

    @property
    def permissions(self) -> list[str]:
        perm = self.op.get("x-sb-permission") or []
        return [perm] if isinstance(perm, str) else list(perm)

    @property
    def params(self) -> list[str]:
        return re.findall(r"{([^}]+)}", self.path)


OPERATIONS = [
    Operation(method.upper(), path, op)
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
    if method in METHODS
]


def deref(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def minimal(schema: Any, ids: dict[str, str]) -> Any:
    """The smallest value the schema accepts (required fields only)."""
    schema = deref(schema)
    if "allOf" in schema:  # one object: the parts' properties and required names together
        parts = [deref(part) for part in schema["allOf"]]
        merged = {
            "type": "object",
            "properties": {k: v for p in parts for k, v in p.get("properties", {}).items()},
            "required": [n for p in parts for n in p.get("required", [])],
        }
        return minimal(merged, ids)
    if "oneOf" in schema:
        return minimal(schema["oneOf"][0], ids)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        props = schema.get("properties", {})
        names = list(schema.get("required", []))
        if not names and schema.get("minProperties") and props:
            names = [next(iter(props))]
        return {name: minimal(props.get(name, {}), ids) for name in names}
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date-time":
        return datetime.now(UTC).isoformat()
    return "x" * max(1, int(schema.get("minLength", 1)))


@dataclass
class World:
    tenant_ids: dict[str, str]  # path parameter → an id of tenant A
    private_ids: dict[str, str]  # path parameter → the ticket / mail of A's private inbox
    other_admin: str  # an administrator of tenant B
    nobody: str  # an operator of A with a role of no permissions
    member: str  # an agent of A, member of its Help inbox only


async def request(
    stack: Stack, operation: Operation, ids: dict[str, str], token: str = ""
) -> tuple[int, str]:
    path = operation.path
    for name in operation.params:
        path = path.replace("{" + name + "}", ids[name])
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {}
    content = (operation.op.get("requestBody") or {}).get("content", {})
    if "application/json" in content:
        kwargs["json"] = minimal(content["application/json"]["schema"], ids)
    elif content:
        kwargs["data"] = b"From: a@b.example\r\nSubject: x\r\n\r\nx\r\n"
    query = {
        p["name"]: str(minimal(p.get("schema", {}), ids))
        for p in (deref(x) for x in operation.op.get("parameters", []))
        if p.get("in") == "query" and p.get("required")
    }
    if operation.path.endswith("/lock") and operation.method == "DELETE":
        query["fence"] = "1"
    if operation.id == "createImport":
        query["inbox_id"] = ids["inbox_id"]
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    async with aiohttp.ClientSession() as http:
        async with http.request(
            operation.method, f"{stack.gateway_url}{path}", headers=headers, **kwargs
        ) as resp:
            return resp.status, await resp.text()


@pytest.fixture(scope="module")
async def world(stack: Stack) -> World:
    tenant, admin = await admin_of(stack)
    _, other_admin = await admin_of(stack)
    private_address = f"private@{uuid.uuid4().hex[:8]}.example"
    code, private, _ = await call(
        stack,
        "POST",
        "/api/v1/inboxes",
        {"name": "Private", "addresses": [private_address]},
        token=admin,
    )
    assert code == 201, private
    code, _, _ = await call(stack, "PUT", "/api/v1/roles/viewer", {"permissions": []}, token=admin)
    nobody = await operator_token(stack, admin, tenant, roles=["viewer"])
    member = await operator_token(stack, admin, tenant, roles=["agent"])
    member_id = (await call(stack, "GET", "/api/v1/me", token=member))[1]["id"]

    subject, hidden = f"Route {uuid.uuid4().hex[:6]}", f"Hidden {uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(
        send, stack.smtp_port, make_mail(subject, to=tenant.address), [tenant.address]
    )
    await asyncio.to_thread(
        send, stack.smtp_port, make_mail(hidden, to=private_address), [private_address]
    )
    ticket = await ticket_by_subject(stack, admin, subject)
    hidden_ticket = await ticket_by_subject(stack, admin, hidden)

    async def first_message(ticket_id: str) -> str:
        detail = (await call(stack, "GET", f"/api/v1/tickets/{ticket_id}", token=admin))[1]
        return str(detail["messages"][0]["id"])

    made: dict[str, str] = {}
    for key, path, body in (
        (
            "mailbox_id",
            "/api/v1/mailboxes",
            {
                "inbox_id": tenant.inbox_id,
                "host": "127.0.0.1",
                "port": 9,
                "security": "none",
                "username": "u",
                "auth": "password",
                "secret": "s",
                "enabled": False,
            },
        ),
        ("form_id", "/api/v1/forms", {"inbox_id": tenant.inbox_id, "name": "Contact us"}),
        ("block_id", "/api/v1/blocklist", {"kind": "address", "value": "spam@spam.example"}),
        (
            "notice_id",
            "/api/v1/notices",
            {
                "title": "t",
                "body": "b",
                "starts_at": "2026-01-01T00:00:00Z",
                "ends_at": "2027-01-01T00:00:00Z",
            },
        ),
        ("post_id", "/api/v1/posts", {"title": "t", "body": "b"}),
        (
            "calendar_id",
            "/api/v1/calendars",
            {
                "name": "Office",
                "time_zone": "Asia/Tokyo",
                "slots": [{"weekday": "mon", "start": "09:00", "end": "18:00"}],
            },
        ),
    ):
        code, body_out, _ = await call(stack, "POST", path, body, token=admin)
        assert code == 201, (path, body_out)
        made[key] = body_out["id"]
    code, token_made, _ = await call(
        stack, "POST", "/api/v1/me/tokens", {"name": "routes"}, token=admin
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/imports?inbox_id={tenant.inbox_id}",
            data=b"From: a@b.example\r\nSubject: imported\r\n\r\nx\r\n",
            headers={"Authorization": f"Bearer {admin}"},
        ) as r:
            made["import_id"] = (await r.json())["id"]
    # a login of tenant A locked by failures
    _, locked_login, _ = await new_operator(stack, admin, tenant)
    for i in range(10):
        await log_in(stack, locked_login, f"wrong {i}", f"198.51.100.{i + 1}")
    # composition: a folder, a template, a signature, and a draft on each ticket
    code, folder, _ = await call(
        stack, "POST", "/api/v1/template-folders", {"name": "F"}, token=admin
    )
    made["folder_id"] = folder["id"]
    code, tpl, _ = await call(
        stack, "POST", "/api/v1/templates", {"name": "T", "body_text": "b"}, token=admin
    )
    made["template_id"] = tpl["id"]
    code, sig, _ = await call(stack, "PUT", "/api/v1/signatures", {"body_text": "s"}, token=admin)
    made["signature_id"] = sig["id"]

    async def draft_on(ticket_id: str) -> tuple[str, str]:
        code, lk, _ = await call(stack, "POST", f"/api/v1/tickets/{ticket_id}/lock", token=admin)
        code, draft, _ = await call(
            stack,
            "POST",
            f"/api/v1/tickets/{ticket_id}/drafts",
            {"kind": "reply", "fence": lk["fence"]},
            token=admin,
        )
        assert code == 201, draft
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{stack.gateway_url}/api/v1/drafts/{draft['id']}/attachments"
                f"?filename=a.txt&fence={lk['fence']}",
                data=b"x",
                headers={"Authorization": f"Bearer {admin}", "Content-Type": "text/plain"},
            ) as r:
                attachment = await r.json()
        return draft["id"], attachment["id"]

    made["draft_id"], made["attachment_id"] = await draft_on(ticket["id"])
    hidden_draft, hidden_attachment = await draft_on(hidden_ticket["id"])

    # outbound: a route, a DKIM key, and a send scheduled for tomorrow in each inbox
    code, smtp_route, _ = await call(
        stack,
        "POST",
        "/api/v1/smtp-routes",
        {"name": "R", "host": "127.0.0.1", "port": 9, "security": "none"},
        token=admin,
    )
    assert code == 201, smtp_route
    made["route_id"] = smtp_route["id"]
    made["domain"] = tenant.address.split("@")[1]
    code, key, _ = await call(
        stack, "PUT", f"/api/v1/dkim-keys/{made['domain']}", {"selector": "s1"}, token=admin
    )
    assert code == 200, key

    async def scheduled_send(address: str) -> str:
        subject = f"Send {uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(send, stack.smtp_port, make_mail(subject, to=address), [address])
        t = await ticket_by_subject(stack, admin, subject)
        code, lk, _ = await call(stack, "POST", f"/api/v1/tickets/{t['id']}/lock", token=admin)
        code, draft, _ = await call(
            stack,
            "POST",
            f"/api/v1/tickets/{t['id']}/drafts",
            {"kind": "reply", "fence": lk["fence"]},
            token=admin,
        )
        code, sent, _ = await call(
            stack,
            "POST",
            f"/api/v1/drafts/{draft['id']}/send",
            {
                "fence": lk["fence"],
                "send_at": _tomorrow(),
                "acknowledged_warnings": ["subject_missing", "recipient_not_participant"],
            },
            token=admin,
        )
        assert code == 201, sent
        return str(sent["id"])

    made["send_id"] = await scheduled_send(tenant.address)
    hidden_send = await scheduled_send(private_address)

    # approval: a request on a new mail in each inbox, and the tenant's policy
    async def approval_in(inbox_id: str) -> str:
        code, draft, _ = await call(
            stack, "POST", "/api/v1/drafts", {"inbox_id": inbox_id}, token=admin
        )
        assert code == 201, draft
        code, req, _ = await call(
            stack, "POST", f"/api/v1/drafts/{draft['id']}/approval", {}, token=admin
        )
        assert code == 201, req
        return str(req["id"])

    made["approval_id"] = await approval_in(tenant.inbox_id)
    hidden_approval = await approval_in(private["id"])
    code, policy, _ = await call(
        stack,
        "POST",
        "/api/v1/approval-policies",
        {"name": "P", "stages": [{"name": "S", "approvers": [{"kind": "inbox_members"}]}]},
        token=admin,
    )
    assert code == 201, policy
    made["policy_id"] = policy["id"]
    code, rule, _ = await call(
        stack,
        "POST",
        "/api/v1/rules",
        {"name": "R", "triggers": ["new_ticket"], "actions": [{"type": "stop"}]},
        token=admin,
    )
    assert code == 201, rule
    made["rule_id"] = rule["id"]
    # outreach (issue 20): an address on the suppression list, a notification
    code, entry, _ = await call(
        stack,
        "POST",
        "/api/v1/suppressions",
        {"address": f"s-{uuid.uuid4().hex[:8]}@customer.example"},
        token=admin,
    )
    assert code == 201, entry
    made["address"] = entry["address"]
    code, note, _ = await call(
        stack,
        "POST",
        "/api/v1/notifications",
        {
            "inbox_id": tenant.inbox_id,
            "to": {"address": "n@customer.example"},
            "subject": "s",
            "body": "b",
            "idempotency_key": uuid.uuid4().hex,
        },
        token=admin,
    )
    assert code == 202, note
    made["notification_id"] = note["id"]
    # contact lists, segments and campaigns (issue 20, OUT-6): a list, a segment of it and
    # a draft campaign to it
    code, listed, _ = await call(
        stack, "POST", "/api/v1/contact-lists", {"name": "Campaign list"}, token=admin
    )
    assert code == 201, listed
    made["list_id"] = listed["id"]
    code, segment, _ = await call(
        stack,
        "POST",
        "/api/v1/segments",
        {
            "name": "S",
            "match": "all",
            "conditions": [{"field": "list", "op": "has", "value": listed["id"]}],
        },
        token=admin,
    )
    assert code == 201, segment
    made["segment_id"] = segment["id"]
    code, campaign, _ = await call(
        stack,
        "POST",
        "/api/v1/campaigns",
        {
            "name": "C",
            "inbox_id": tenant.inbox_id,
            "subject": "s",
            "body": "b",
            "audience": {"list_id": listed["id"]},
        },
        token=admin,
    )
    assert code == 201, campaign
    made["campaign_id"] = campaign["id"]
    # channels (issue 21): an API channel of the inbox
    code, channel, _ = await call(
        stack,
        "POST",
        "/api/v1/channels",
        {"kind": "api", "inbox_id": tenant.inbox_id, "name": "Bridge"},
        token=admin,
    )
    assert code == 201, channel
    made["channel_id"] = channel["id"]
    made["delivery_id"] = await dead_webhook_delivery(stack, admin, tenant.address)
    code, export, _ = await call(
        stack,
        "POST",
        "/api/v1/exports",
        {"kind": "tickets_csv", "from": "2026-01-01T00:00:00Z", "to": _tomorrow()},
        token=admin,
    )
    assert code == 202, export
    made["export_id"] = export["id"]
    code, sessions, _ = await call(stack, "GET", "/api/v1/sessions", token=admin)
    session_id = next(s["id"] for s in sessions["items"] if s["kind"] == "session")
    ids = {
        "ticket_id": ticket["id"],
        "message_id": await first_message(ticket["id"]),
        "contact_id": ticket["contact_id"],
        "operator_id": member_id,
        "inbox_id": tenant.inbox_id,
        "session_id": session_id,
        "token_id": token_made["token"]["id"],
        "name": "viewer",
        "kind": "login",
        "key": locked_login,
        "index": "0",
        "report": "volume",
        **made,
    }
    private_ids = {
        **ids,
        "ticket_id": hidden_ticket["id"],
        "message_id": await first_message(hidden_ticket["id"]),
        "inbox_id": private["id"],
        "draft_id": hidden_draft,
        "attachment_id": hidden_attachment,
        "send_id": hidden_send,
        "approval_id": hidden_approval,
    }
    return World(ids, private_ids, other_admin, nobody, member)


def _tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


async def dead_webhook_delivery(stack: Stack, admin: str, address: str) -> str:
    """A rule webhook delivery of the tenant, dead at once (127.0.0.2 is not allow-listed)."""
    tag = uuid.uuid4().hex[:8]
    hook = {
        "name": "W",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "subject", "operator": "contains", "value": tag}],
        },
        "actions": [{"type": "webhook", "value": "http://127.0.0.2:9/hook"}],
        "position": 0,
    }
    code, made, _ = await call(stack, "POST", "/api/v1/rules", hook, token=admin)
    assert code == 201, made
    await asyncio.to_thread(send, stack.smtp_port, make_mail(f"hook {tag}", to=address), [address])
    for _ in range(600):
        _code, found, _ = await call(
            stack, "GET", "/api/v1/rules/webhook-deliveries?state=dead", token=admin
        )
        if found["deliveries"]:
            return str(found["deliveries"][0]["id"])
        await asyncio.sleep(0.05)
    raise AssertionError("no dead webhook delivery")


def _ids(ops: list[Operation]) -> list[str]:
    return [o.id for o in ops]


PRIVATE = [o for o in OPERATIONS if not o.public]
# PUT creates B's own role or key
# (a report's name is not an id of the tenant: every tenant has each report)
OF_THE_TENANT = [
    o
    for o in PRIVATE
    if o.params and o.id not in ("putRole", "putDkimKey", "getReport", "getReportCsv")
]
PERMISSIONED = [o for o in OPERATIONS if o.permissions]
INBOX_SCOPED = [
    o
    for o in PRIVATE
    if {"ticket_id", "message_id", "draft_id", "send_id", "approval_id"} & set(o.params)
    or o.path.startswith("/api/v1/inboxes/{")
]


def test_the_document_names_only_known_permissions() -> None:
    named = {p for o in OPERATIONS for p in o.permissions}
    assert named and named <= permissions.ALL
    assert len(PERMISSIONED) >= 30 and len(OF_THE_TENANT) >= 40


@pytest.mark.parametrize("operation", PRIVATE, ids=_ids(PRIVATE))
async def test_without_credentials_every_private_route_is_401(
    stack: Stack, world: World, operation: Operation
) -> None:
    code, text = await request(stack, operation, world.tenant_ids)
    assert code == 401, text


@pytest.mark.parametrize("operation", OF_THE_TENANT, ids=_ids(OF_THE_TENANT))
async def test_another_tenants_ids_are_not_found_or_forbidden(
    stack: Stack, world: World, operation: Operation
) -> None:
    code, text = await request(stack, operation, world.tenant_ids, world.other_admin)
    assert code in (403, 404), text


@pytest.mark.parametrize("operation", PERMISSIONED, ids=_ids(PERMISSIONED))
async def test_without_the_permission_the_route_is_403(
    stack: Stack, world: World, operation: Operation
) -> None:
    code, text = await request(stack, operation, world.tenant_ids, world.nobody)
    assert code == 403 and "permission_denied" in text, text


@pytest.mark.parametrize("operation", INBOX_SCOPED, ids=_ids(INBOX_SCOPED))
async def test_another_inboxs_ticket_or_mail_is_not_found(
    stack: Stack, world: World, operation: Operation
) -> None:
    code, text = await request(stack, operation, world.private_ids, world.member)
    agent_may = set(operation.permissions) <= permissions.BUILTIN_ROLES["agent"][0]
    assert code == (404 if agent_may else 403), text
