"""Masked addresses cannot be rebuilt (issue 16, SEC-5/6): an operator without
see_customer_addresses finds nothing by any part of a customer's address or phone number
— contacts (the list and the merge search that uses it), tickets' keyword, the list's
cursors — while names, companies and words still work; an operator sees the contacts of
their inboxes' tickets only, in every contact method; and searching is limited per
operator and minute (429 with Retry-After)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from services.devstack.stack import Stack
from tests.conftest import SEARCH_PER_MINUTE
from tests.e2e.test_access import (
    _private_inbox_and_an_agent,
    operator_token,
    ticket_by_subject,
)
from tests.e2e.test_accounts import admin_of, call
from tests.helpers import make_mail, send

pytestmark = pytest.mark.e2e

# Letters and digits that appear nowhere else in the mail: whatever finds them, found the
# address or the number.
LOCAL, DOMAIN = "qvzwyj", "kxjwq"
ADDRESS = f"{LOCAL}@{DOMAIN}.example"
PHONE = "090-8877-6655"


async def _mail(stack: Stack, sender: str, to: str, subject: str, body: str = "Hi.\n") -> None:
    msg = make_mail(subject, sender=sender, to=to, body=body)
    await asyncio.to_thread(send, stack.smtp_port, msg, [to])


async def _ids(stack: Stack, token: str, path: str) -> list[str]:
    code, page, _ = await call(stack, "GET", path, token=token)
    assert code == 200, (path, page)
    return [item["id"] for item in page["items"]]


async def test_a_trainee_cannot_find_a_masked_address_or_phone_one_character_at_a_time(
    stack: Stack,
) -> None:
    tenant, admin = await admin_of(stack)
    trainee = await operator_token(stack, admin, tenant, roles=["trainee"])
    agent = await operator_token(stack, admin, tenant, roles=["agent"])
    tag = uuid.uuid4().hex[:6]
    subject = f"Parcel {tag} for {ADDRESS}"
    text = f"Hanako Tanaka here. Mail to {ADDRESS}, call {PHONE} or TEL:03-8877-6655.\n"
    await _mail(stack, f"Hanako Tanaka <{ADDRESS}>", tenant.address, subject, text)
    ticket = await ticket_by_subject(stack, agent, subject)
    await _mail(stack, "Other <other@customer.example>", tenant.address, f"Zebra {tag}")
    other = await ticket_by_subject(stack, agent, f"Zebra {tag}")
    contact_id = ticket["contact_id"]
    code, _, _ = await call(
        stack, "PATCH", f"/api/v1/contacts/{contact_id}", {"phones": [PHONE]}, token=agent
    )
    assert code == 200

    # every step of rebuilding the address or the number: the prefixes of the local part
    # beyond its first letter (shown), the domain, the whole, and runs of the number
    guesses = [LOCAL[:n] for n in range(2, len(LOCAL) + 1)]
    guesses += [f"{LOCAL}@", f"@{DOMAIN[:2]}", DOMAIN, f"{DOMAIN}.example", ADDRESS]
    guesses += ["0908877", "8877", "8877-6655", "88776655"]
    for guess in guesses:
        q = quote(guess)
        # the agent, who sees addresses, finds both by them …
        assert contact_id in await _ids(stack, agent, f"/api/v1/contacts?q={q}"), guess
        if guess in subject + text:
            assert ticket["id"] in await _ids(stack, agent, f"/api/v1/tickets?q={q}"), guess
        # … the trainee finds neither, however they try
        assert await _ids(stack, trainee, f"/api/v1/contacts?q={q}") == [], guess
        assert await _ids(stack, trainee, f"/api/v1/tickets?q={q}") == [], guess

    # what the trainee may see is still found: the name, the words of the subject
    assert await _ids(stack, trainee, "/api/v1/contacts?q=tanaka") == [contact_id]
    assert await _ids(stack, trainee, f"/api/v1/tickets?q=parcel%20{tag}") == [ticket["id"]]

    # the list's cursor, sorted by subject or customer, carries none of it either (it is
    # not masked like the JSON around it), and the next page still follows
    for sort in ("subject", "customer"):
        code, page, _ = await call(
            stack, "GET", f"/api/v1/tickets?sort={sort}&order=asc&limit=1", token=trainee
        )
        assert code == 200 and page["next"], page
        cursor = base64.urlsafe_b64decode(page["next"] + "==").decode()
        assert LOCAL not in cursor and DOMAIN not in cursor, cursor
        code, rest, _ = await call(
            stack,
            "GET",
            f"/api/v1/tickets?sort={sort}&order=asc&limit=5&cursor={page['next']}",
            token=trainee,
        )
        assert code == 200
        assert [page["items"][0]["id"], *(t["id"] for t in rest["items"])] in (
            [ticket["id"], other["id"]],
            [other["id"], ticket["id"]],
        )

    # the timeline and the ticket show the masked forms only
    for path in (f"/api/v1/contacts/{contact_id}/timeline", f"/api/v1/tickets/{ticket['id']}"):
        code, body, _ = await call(stack, "GET", path, token=trainee)
        assert code == 200 and LOCAL not in str(body) and "8877" not in str(body), path

    # a contact's form sent back as the trainee sees it changes nothing it masks; adding
    # an address (which would tell whether another contact has it) is refused, and so is
    # the real value (a right guess must not be told from a wrong one)
    code, shown, _ = await call(stack, "GET", f"/api/v1/contacts/{contact_id}", token=trainee)
    edit = {"memo": "Prefers mail.", "addresses": shown["addresses"], "phones": shown["phones"]}
    code, saved, _ = await call(
        stack, "PATCH", f"/api/v1/contacts/{contact_id}", edit, token=trainee
    )
    assert code == 200 and saved["memo"] == "Prefers mail.", saved
    for field, values in (
        ("addresses", [*shown["addresses"], "other@customer.example"]),
        ("phones", [*shown["phones"], "03-0000-0000"]),
        ("addresses", [ADDRESS]),
        ("phones", [PHONE]),
    ):
        code, body, _ = await call(
            stack, "PATCH", f"/api/v1/contacts/{contact_id}", {field: values}, token=trainee
        )
        assert code == 403 and body["error"]["field"] == field, body
    code, real, _ = await call(stack, "GET", f"/api/v1/contacts/{contact_id}", token=agent)
    assert (real["addresses"], real["phones"]) == ([ADDRESS], [PHONE])


async def test_an_operator_sees_only_the_contacts_of_their_inboxes_tickets(stack: Stack) -> None:
    tenant, admin, agent, _inbox, private = await _private_inbox_and_an_agent(stack)
    tag = uuid.uuid4().hex[:6]
    stranger = f"stranger-{tag}@elsewhere.example"
    customer = f"customer-{tag}@customer.example"
    await _mail(stack, f"Sato {tag} <{stranger}>", private, f"Private matter {tag}")
    theirs = await ticket_by_subject(stack, admin, f"Private matter {tag}")
    await _mail(stack, f"Ito {tag} <{customer}>", tenant.address, f"Help me {tag}")
    ours = await ticket_by_subject(stack, agent, f"Help me {tag}")
    await _mail(stack, f"Ito {tag} <{customer}>", private, f"Also private {tag}")
    await ticket_by_subject(stack, admin, f"Also private {tag}")
    hidden, shown = theirs["contact_id"], ours["contact_id"]

    listed = await _ids(stack, agent, "/api/v1/contacts?limit=200")
    assert listed == [shown]
    assert await _ids(stack, agent, f"/api/v1/contacts?q=sato%20{tag}") == []
    assert set(await _ids(stack, admin, "/api/v1/contacts?limit=200")) == {shown, hidden}
    # the tickets counted are those the operator may see
    code, mine, _ = await call(stack, "GET", f"/api/v1/contacts/{shown}", token=agent)
    assert code == 200 and mine["ticket_count"] == 1
    code, all_of, _ = await call(stack, "GET", f"/api/v1/contacts/{shown}", token=admin)
    assert code == 200 and all_of["ticket_count"] == 2

    attempts: list[tuple[str, str, Any, str]] = [
        ("GET", f"/api/v1/contacts/{hidden}", None, "contact_id"),
        ("GET", f"/api/v1/contacts/{hidden}/timeline", None, "contact_id"),
        ("PATCH", f"/api/v1/contacts/{hidden}", {"company": "Peek Ltd"}, "contact_id"),
        ("POST", f"/api/v1/contacts/{shown}/merge", {"source_id": hidden}, "source_id"),
        ("POST", f"/api/v1/contacts/{hidden}/merge", {"source_id": shown}, "contact_id"),
        (
            "POST",
            f"/api/v1/tickets/{ours['id']}/memos",
            {"body": "call", "direction": "inbound", "contact_id": hidden},
            "contact_id",
        ),
    ]
    for method, path, body, field in attempts:
        code, answer, _ = await call(stack, method, path, body, token=agent)
        assert code == 404, (method, path, answer)
        assert answer["error"].get("field") == field, (path, answer)
    code, contact, _ = await call(stack, "GET", f"/api/v1/contacts/{hidden}", token=admin)
    assert code == 200 and contact["company"] == "" and contact["merged_into"] is None

    # once the stranger writes to the agent's inbox, the agent sees them (that ticket only)
    await _mail(stack, f"Sato {tag} <{stranger}>", tenant.address, f"Now to help {tag}")
    now_ours = await ticket_by_subject(stack, agent, f"Now to help {tag}")
    assert now_ours["contact_id"] == hidden
    code, timeline, _ = await call(stack, "GET", f"/api/v1/contacts/{hidden}/timeline", token=agent)
    assert code == 200
    assert {e["ticket_id"] for e in timeline["items"]} == {now_ours["id"]}


async def test_searching_faster_than_the_limit_is_answered_429_with_retry_after(
    stack: Stack,
) -> None:
    tenant, admin = await admin_of(stack)
    agent = await operator_token(stack, admin, tenant, roles=["agent"])
    colleague = await operator_token(stack, admin, tenant, roles=["agent"])
    for n in range(SEARCH_PER_MINUTE):  # tickets and contacts share one count
        path = f"/api/v1/tickets?q=word{n}" if n % 2 else f"/api/v1/contacts?q=name{n}"
        code, body, _ = await call(stack, "GET", path, token=agent)
        assert code == 200, (n, body)
    for path in ("/api/v1/tickets?q=one+more", "/api/v1/contacts?q=one+more"):
        code, body, headers = await call(stack, "GET", path, token=agent)
        assert code == 429, body
        assert body["error"]["code"] == "resource_exhausted" and body["error"]["field"] == "q"
        assert 1 <= int(headers["Retry-After"]) <= 60
    # lists without a keyword are not searches; a colleague has their own count
    code, _, _ = await call(stack, "GET", "/api/v1/tickets?limit=5", token=agent)
    assert code == 200
    code, _, _ = await call(stack, "GET", "/api/v1/contacts?q=someone", token=colleague)
    assert code == 200
