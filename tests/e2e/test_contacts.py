"""Contacts (TKT-9) and their timeline (TKT-8), through the gateway: made from senders (one
per address, also when mails race), edited, refused with nothing changed, merged, kept
apart per tenant, and a timeline of tickets, mails, memos and comments years back, paged."""

from __future__ import annotations

import asyncio
import mailbox
import tempfile
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import nats
import pytest
from switchboard.v1 import events_pb2, tickets_pb2, tickets_pb2_grpc

from services.devstack.stack import Stack
from services.runtime.db import Database, with_database
from services.runtime.identity import Identity
from services.tickets.contacts import ContactsRepo
from tests.helpers import (
    Tenant,
    api_call,
    api_get,
    create_tenant,
    eventually,
    make_mail,
    send,
)

pytestmark = pytest.mark.e2e


async def _session(stack: Stack, tenant: Tenant) -> tuple[str, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions",
            json={"login": tenant.login, "password": tenant.password},
        ) as resp:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
            return body["token"], body["operator"]


async def _mail(
    stack: Stack, tenant: Tenant, sender: str, subject: str, body: str = "Hello.\n"
) -> None:
    msg = make_mail(subject, sender=sender, to=tenant.address, body=body)
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])


async def _contact_of(stack: Stack, token: str, address: str, tickets: int = 1) -> dict[str, Any]:
    """The contact holding `address` once it has `tickets` tickets."""

    async def probe() -> dict[str, Any] | None:
        code, body = await api_get(stack, token, f"/api/v1/contacts?q={address}")
        if code != 200:
            return None
        found = [c for c in body["items"] if address.lower() in c["addresses"]]
        return found[0] if found and found[0]["ticket_count"] >= tickets else None

    found: dict[str, Any] = await eventually(probe, timeout=30, every=0.25)  # searches
    return found


def _tag() -> str:
    return uuid.uuid4().hex[:8]


async def test_a_mail_from_a_new_sender_makes_a_contact_found_by_any_part(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token, _ = await _session(stack, tenant)
    address = f"Taro.Yamada.{_tag()}@Example.JP"
    await _mail(stack, tenant, f"山田 太郎 <{address}>", "見積もりのお願い")
    contact = await _contact_of(stack, token, address)
    assert contact["name"] == "山田 太郎"
    assert contact["addresses"] == [address.lower()]
    assert contact["merged_into"] is None and contact["custom"] == {}
    # a second mail from the same address (other case) is the same contact
    await _mail(stack, tenant, f"Yamada <{address.upper()}>", "追加の質問")
    again = await _contact_of(stack, token, address, tickets=2)
    assert again["id"] == contact["id"]
    code, listed = await api_get(stack, token, "/api/v1/contacts")
    assert code == 200 and [c["id"] for c in listed["items"]] == [contact["id"]]
    for q in ("太郎", "山田", "ＹＡＭＡＤＡ", "example.jp", "taro.YAMADA"):
        code, body = await api_get(stack, token, f"/api/v1/contacts?q={q}")
        assert code == 200 and [c["id"] for c in body["items"]] == [contact["id"]], q
    code, body = await api_get(stack, token, "/api/v1/contacts?q=花子")
    assert code == 200 and body == {"items": [], "next": None}
    code, body = await api_get(stack, token, f"/api/v1/contacts/{contact['id']}")
    assert code == 200 and body["ticket_count"] == 2


async def test_mails_racing_from_one_new_sender_make_one_contact(stack: Stack) -> None:
    """Twenty transactions file mail from the same new sender at once, on the tickets
    database itself: one contact, and every transaction gets it."""
    db = Database(with_database(stack.database_url, "sb_tickets"), min_size=20, max_size=20)
    await db.open([], create=False)
    try:
        repo = ContactsRepo(db.pool)
        tenant = str(uuid.uuid4())
        address = f"racer-{_tag()}@example.com"
        now = datetime.now(UTC)

        async def file_one(i: int) -> uuid.UUID | None:
            async with db.transaction() as conn:
                found = await repo.for_sender(conn, tenant, address.upper(), f"Racer {i}", now)
                await asyncio.sleep(0.05)  # hold the transaction open while the others run
                return found

        ids = await asyncio.gather(*(file_one(i) for i in range(20)))
        assert len(set(ids)) == 1 and ids[0] is not None
        rows = await db.pool.fetch(
            "SELECT id FROM contacts WHERE tenant_id = $1", uuid.UUID(tenant)
        )
        assert [r["id"] for r in rows] == [ids[0]]
        async with db.transaction() as conn:
            assert await repo.for_sender(conn, tenant, "", "Nobody", now) is None
            assert await repo.for_sender(conn, tenant, "not an address", "X", now) is None
    finally:
        await db.close()


async def test_an_operator_edits_a_contact_and_mail_from_a_new_address_files_there(
    stack: Stack,
) -> None:
    tenant = await create_tenant(stack)
    token, _ = await _session(stack, tenant)
    first = f"hanako-{_tag()}@example.com"
    second = f"h.suzuki-{_tag()}@Example.org"
    await _mail(stack, tenant, f"Hanako <{first}>", "Order")
    contact = await _contact_of(stack, token, first)
    change = {
        "name": "  鈴木   花子 ",
        "company": "ＡＢＣ商事",
        "memo": "Prefers phone calls.\r\nSpeaks Japanese.",
        "addresses": [first, second, second.upper()],
        "phones": ["０３－１２３４－５６７８", "+81 90 1111 2222"],
        "custom": {"会員番号": "A-1024", "plan": "gold"},
    }
    code, body = await api_call(stack, token, "PATCH", f"/api/v1/contacts/{contact['id']}", change)
    assert code == 200, body
    assert body["name"] == "鈴木 花子"
    assert body["company"] == "ＡＢＣ商事"
    assert body["memo"] == "Prefers phone calls.\nSpeaks Japanese."
    assert body["addresses"] == sorted([first, second.lower()])
    assert body["phones"] == ["03-1234-5678", "+81 90 1111 2222"]
    assert body["custom"] == {"plan": "gold", "会員番号": "A-1024"}
    assert body["updated_at"] > contact["updated_at"]
    code, read = await api_get(stack, token, f"/api/v1/contacts/{contact['id']}")
    assert code == 200 and read == body
    for q in ("abc商事", "0312345678", "90-1111", "suzuki"):
        code, found = await api_get(stack, token, f"/api/v1/contacts?q={q}")
        assert [c["id"] for c in found["items"]] == [contact["id"]], q
    # a body that changes nothing answers the contact as it is
    code, same = await api_call(
        stack, token, "PATCH", f"/api/v1/contacts/{contact['id']}", {"name": "鈴木 花子"}
    )
    assert code == 200 and same == body
    # the added address now files mail under this contact
    await _mail(stack, tenant, f"Someone Else <{second}>", "Follow-up")
    assert (await _contact_of(stack, token, second, tickets=2))["id"] == contact["id"]
    # removing an address: its next mail makes a new contact
    code, body = await api_call(
        stack, token, "PATCH", f"/api/v1/contacts/{contact['id']}", {"addresses": [second]}
    )
    assert code == 200 and body["addresses"] == [second.lower()]
    await _mail(stack, tenant, f"Hanako <{first}>", "From the old address")
    fresh = await _contact_of(stack, token, first)
    assert fresh["id"] != contact["id"] and fresh["name"] == "Hanako"


async def test_bad_input_is_refused_and_changes_nothing(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token, _ = await _session(stack, tenant)
    mine, theirs = f"mine-{_tag()}@example.com", f"theirs-{_tag()}@example.com"
    await _mail(stack, tenant, f"Mine <{mine}>", "One")
    await _mail(stack, tenant, f"Theirs <{theirs}>", "Two")
    contact = await _contact_of(stack, token, mine)
    other = await _contact_of(stack, token, theirs)
    path = f"/api/v1/contacts/{contact['id']}"
    _, before = await api_get(stack, token, path)
    _, other_before = await api_get(stack, token, f"/api/v1/contacts/{other['id']}")
    cases: list[tuple[Any, int, str, str | None]] = [
        ({"addresses": ["not-an-address"]}, 400, "invalid_argument", "addresses"),
        ({"addresses": [mine, "Taro <taro@example.com>"]}, 400, "invalid_argument", "addresses"),
        (
            {"addresses": ["x@example.com\r\nBcc: victim@example.com"]},
            400,
            "invalid_argument",
            "addresses",
        ),
        ({"addresses": ["user@localhost"]}, 400, "invalid_argument", "addresses"),
        (
            {"name": "New name", "addresses": [mine, theirs]},
            409,
            "failed_precondition",
            "addresses",
        ),
        ({"name": "New name", "memo": "m" * 20_001}, 400, "invalid_argument", "memo"),
        ({"custom": {f"k{i}": "v" for i in range(51)}}, 400, "invalid_argument", "custom"),
        ({"custom": {"k" * 101: "v"}}, 400, "invalid_argument", "custom"),
        ({"custom": {"k": "v" * 2001}}, 400, "invalid_argument", "custom"),
        ({"custom": {"k": 1}}, 400, "invalid_argument", "custom"),
        ({"phones": ["call me maybe"]}, 400, "invalid_argument", "phones"),
        ({"phones": ["1" * 31]}, 400, "invalid_argument", "phones"),
        ({"name": "n" * 201}, 400, "invalid_argument", "name"),
        ({"company": "c" * 201}, 400, "invalid_argument", "company"),
        ({"name": None}, 400, "invalid_argument", "name"),
        ({"addresses": "a@example.com"}, 400, "invalid_argument", "addresses"),
        ({"adresses": [mine]}, 400, "invalid_argument", "adresses"),
        ([mine], 400, "invalid_argument", None),
    ]
    for body, status, code, field in cases:
        got, answer = await api_call(stack, token, "PATCH", path, body)
        assert got == status, (body, answer)
        assert answer["error"]["code"] == code, (body, answer)
        assert answer["error"].get("field") == field, (body, answer)
    got, answer = await api_call(stack, token, "PATCH", path, {"addresses": [mine, theirs.upper()]})
    assert got == 409 and theirs in answer["error"]["message"], answer
    assert other["id"] in answer["error"]["message"]
    assert (await api_get(stack, token, path))[1] == before
    assert (await api_get(stack, token, f"/api/v1/contacts/{other['id']}"))[1] == other_before
    # unknown and malformed ids
    unknown = str(uuid.uuid4())
    for method, p, body in (
        ("GET", f"/api/v1/contacts/{unknown}", None),
        ("PATCH", f"/api/v1/contacts/{unknown}", {"name": "x"}),
        ("GET", f"/api/v1/contacts/{unknown}/timeline", None),
        ("POST", f"/api/v1/contacts/{unknown}/merge", {"source_id": contact["id"]}),
        ("POST", f"{path}/merge", {"source_id": unknown}),
    ):
        got, answer = await api_call(stack, token, method, p, body)
        assert got == 404 and answer["error"]["code"] == "not_found", (method, p, answer)
    for method, p, body, field in (
        ("GET", "/api/v1/contacts/not-a-uuid", None, "contact_id"),
        ("PATCH", "/api/v1/contacts/not-a-uuid", {"name": "x"}, "contact_id"),
        ("GET", "/api/v1/contacts/not-a-uuid/timeline", None, "contact_id"),
        ("POST", f"{path}/merge", {"source_id": "nope"}, "source_id"),
        ("POST", f"{path}/merge", {}, "source_id"),
        ("GET", "/api/v1/contacts?limit=0", None, "limit"),
        ("GET", "/api/v1/contacts?cursor=garbage", None, "cursor"),
        ("GET", "/api/v1/contacts?q=" + "q" * 201, None, "q"),
        ("GET", f"{path}/timeline?cursor=garbage", None, "cursor"),
        ("GET", f"{path}/timeline?limit=201", None, "limit"),
    ):
        got, answer = await api_call(stack, token, method, p, body)
        assert got == 400 and answer["error"]["field"] == field, (method, p, answer)
    assert (await api_get(stack, token, path))[1] == before


async def test_another_tenants_contact_answers_not_found(stack: Stack) -> None:
    ours, theirs = await create_tenant(stack), await create_tenant(stack)
    our_token, _ = await _session(stack, ours)
    their_token, _ = await _session(stack, theirs)
    address = f"shared-{_tag()}@example.com"
    await _mail(stack, ours, f"Ours <{address}>", "To us")
    await _mail(stack, theirs, f"Theirs <{address}>", "To them")
    our = await _contact_of(stack, our_token, address)
    their = await _contact_of(stack, their_token, address)
    assert our["id"] != their["id"]  # the same address is one contact per tenant
    _, their_before = await api_get(stack, their_token, f"/api/v1/contacts/{their['id']}")
    _, our_before = await api_get(stack, our_token, f"/api/v1/contacts/{our['id']}")
    for method, p, body in (
        ("GET", f"/api/v1/contacts/{their['id']}", None),
        ("PATCH", f"/api/v1/contacts/{their['id']}", {"name": "Hijacked"}),
        ("GET", f"/api/v1/contacts/{their['id']}/timeline", None),
        ("POST", f"/api/v1/contacts/{their['id']}/merge", {"source_id": our["id"]}),
        ("POST", f"/api/v1/contacts/{our['id']}/merge", {"source_id": their["id"]}),
    ):
        got, answer = await api_call(stack, our_token, method, p, body)
        assert got == 404 and answer["error"]["code"] == "not_found", (method, p, answer)
    code, listed = await api_get(stack, our_token, f"/api/v1/contacts?q={address}")
    assert code == 200 and [c["id"] for c in listed["items"]] == [our["id"]]
    assert (await api_get(stack, their_token, f"/api/v1/contacts/{their['id']}"))[1] == (
        their_before
    )
    assert (await api_get(stack, our_token, f"/api/v1/contacts/{our['id']}"))[1] == our_before


async def _at_least(items: list[Any], n: int) -> list[Any] | None:
    return list(items) if len(items) >= n else None


async def test_merge_moves_tickets_and_addresses_into_the_target(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token, operator = await _session(stack, tenant)
    a, b = f"work-{_tag()}@example.com", f"home-{_tag()}@example.net"
    await _mail(stack, tenant, f"Ken <{a}>", "From work")
    await _mail(stack, tenant, f"Ken Sato <{b}>", "From home")
    target = await _contact_of(stack, token, a)
    source = await _contact_of(stack, token, b)
    nc = await nats.connect(stack.nats_url)
    announced: list[events_pb2.EventEnvelope] = []

    async def on_msg(msg: Any) -> None:
        env = events_pb2.EventEnvelope.FromString(msg.data)
        if env.tenant_id == tenant.tenant_id:
            announced.append(env)

    await nc.subscribe("sb.tickets.contact.changed", cb=on_msg)
    for contact, values in (
        (target, {"phones": ["03 1111 2222"], "custom": {"plan": "gold", "rank": "A"}}),
        (source, {"company": "Sato Ltd", "phones": ["090 3333"], "custom": {"plan": "free"}}),
    ):
        code, _ = await api_call(stack, token, "PATCH", f"/api/v1/contacts/{contact['id']}", values)
        assert code == 200
    code, merged = await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/contacts/{target['id']}/merge",
        {"source_id": source["id"]},
    )
    assert code == 200, merged
    assert merged["id"] == target["id"]
    assert merged["addresses"] == sorted([a, b])
    assert merged["ticket_count"] == 2
    assert merged["name"] == "Ken" and merged["company"] == "Sato Ltd"
    assert merged["phones"] == ["03 1111 2222", "090 3333"]
    assert merged["custom"] == {"plan": "gold", "rank": "A"}
    changes = [
        (e.contact_changed.contact_id, e.contact_changed.action, e.contact_changed.merged_into)
        for e in await eventually(lambda: _at_least(announced, 4))
    ]
    await nc.close()
    assert changes == [
        (target["id"], "updated", ""),
        (source["id"], "updated", ""),
        (source["id"], "merged", target["id"]),
        (target["id"], "updated", ""),
    ]
    assert {e.actor.id for e in announced} == {operator["id"]}
    code, gone = await api_get(stack, token, f"/api/v1/contacts/{source['id']}")
    assert code == 200 and gone["merged_into"] == target["id"] and gone["addresses"] == []
    code, listed = await api_get(stack, token, "/api/v1/contacts")
    assert [c["id"] for c in listed["items"]] == [target["id"]]
    code, timeline = await api_get(stack, token, f"/api/v1/contacts/{target['id']}/timeline")
    subjects = {e["ticket"]["subject"] for e in timeline["items"] if e["type"] == "ticket_opened"}
    assert subjects == {"From work", "From home"}
    # mail from the source's address now files under the target
    await _mail(stack, tenant, f"Ken <{b}>", "From home again")
    assert (await _contact_of(stack, token, b, tickets=3))["id"] == target["id"]
    # refused: into itself, an already merged contact either way round
    for into, src in ((target, target), (target, source), (source, target)):
        code, answer = await api_call(
            stack, token, "POST", f"/api/v1/contacts/{into['id']}/merge", {"source_id": src["id"]}
        )
        assert code == 409 and answer["error"]["code"] == "failed_precondition", answer
    code, answer = await api_call(
        stack, token, "PATCH", f"/api/v1/contacts/{source['id']}", {"name": "zombie"}
    )
    assert code == 409 and answer["error"]["field"] == "contact_id"
    code, after = await api_get(stack, token, f"/api/v1/contacts/{target['id']}")
    assert after["addresses"] == sorted([a, b]) and after["ticket_count"] == 3


def _mbox(sender: str, mails: list[tuple[datetime, str]]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old.mbox"
        box = mailbox.mbox(str(path))
        for when, subject in mails:
            msg = make_mail(subject, sender=sender, body=f"{subject}\n")
            msg.replace_header("Date", format_datetime(when))
            msg.replace_header("Message-ID", make_msgid(domain="old.example"))
            box.add(msg)
        box.flush()
        box.close()
        return path.read_bytes()


async def test_the_timeline_shows_years_of_tickets_mails_memos_and_comments_newest_first(
    stack: Stack,
) -> None:
    tenant = await create_tenant(stack)
    token, operator = await _session(stack, tenant)
    address = f"loyal-{_tag()}@example.com"
    sender = f"Loyal Customer <{address}>"
    years = [
        (datetime(2019, 5, 1, 9, 0, tzinfo=UTC), "Question of 2019"),
        (datetime(2021, 8, 15, 10, 30, tzinfo=UTC), "Question of 2021"),
        (datetime(2024, 1, 10, 8, 15, tzinfo=UTC), "Question of 2024"),
    ]
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/imports",
            params={"inbox_id": tenant.inbox_id, "filename": "old.mbox", "kind": "mbox"},
            data=_mbox(sender, years),
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 201, await resp.text()
    contact = await _contact_of(stack, token, address, tickets=3)
    await _mail(stack, tenant, sender, "Question of today")
    contact = await _contact_of(stack, token, address, tickets=4)
    code, first_page = await api_get(
        stack, token, f"/api/v1/contacts/{contact['id']}/timeline?limit=200"
    )
    assert code == 200
    opened = {
        e["ticket"]["subject"]: e["ticket_id"]
        for e in first_page["items"]
        if e["type"] == "ticket_opened"
    }
    assert set(opened) == {s for _, s in years} | {"Question of today"}
    # a comment on the 2019 ticket and a phone memo of 2021, through the tickets API
    ident = Identity(
        tenant.tenant_id, operator["id"], tuple(operator["roles"]), "", operator["display_name"]
    )
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.config.ports.grpc['tickets']}"
    ) as channel:
        stub = tickets_pb2_grpc.TicketsServiceStub(channel)
        await stub.AddComment(
            tickets_pb2.AddCommentRequest(
                ticket_id=opened["Question of 2019"], body="Old customer, be kind."
            ),
            metadata=ident.metadata(),
            timeout=10,
        )
        memo = tickets_pb2.AddPhoneMemoRequest(
            ticket_id=opened["Question of 2021"],
            body="Called about the invoice.",
            direction="inbound",
            caller_name="Loyal Customer",
            phone="03-1234-5678",
            duration_s=120,
        )
        memo.occurred_at.FromDatetime(datetime(2021, 8, 16, 14, 0, tzinfo=UTC))
        await stub.AddPhoneMemo(memo, metadata=ident.metadata(), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ContactTimeline(
                tickets_pb2.ContactTimelineRequest(contact_id=contact["id"]), timeout=10
            )
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    code, whole = await api_get(stack, token, f"/api/v1/contacts/{contact['id']}/timeline")
    assert code == 200 and whole["next"] is None
    assert whole["contact"]["id"] == contact["id"]
    items = whole["items"]
    assert len(items) == 10  # 4 tickets opened, 4 mails, 1 memo, 1 comment
    rank = {"ticket_opened": 0, "mail": 1, "phone_memo": 1, "comment": 2}
    keys = [(e["at"], rank[e["type"]]) for e in items]
    assert keys == sorted(keys, reverse=True)
    # the oldest: the 2019 mail, then (at the same instant) its ticket's opening
    assert [e["type"] for e in items[-2:]] == ["mail", "ticket_opened"]
    assert items[-1]["at"] == "2019-05-01T09:00:00Z"
    assert items[-2]["message"]["subject"] == "Question of 2019"
    assert items[-2]["message"]["from"]["address"] == address
    [memo_entry] = [e for e in items if e["type"] == "phone_memo"]
    assert memo_entry["ticket_id"] == opened["Question of 2021"]
    assert memo_entry["at"] == "2021-08-16T14:00:00Z"
    assert memo_entry["message"]["body"] == "Called about the invoice."
    assert memo_entry["message"]["direction"] == "inbound"
    assert memo_entry["message"]["author"]["id"] == operator["id"]
    [comment] = [e for e in items if e["type"] == "comment"]
    assert comment["ticket_id"] == opened["Question of 2019"]
    assert comment["comment"]["body"] == "Old customer, be kind."
    assert comment["comment"]["author"]["id"] == operator["id"]
    # paged: the same entries, in the same order, nothing twice, whatever the page size
    for limit in (1, 2, 3, 4, 9):
        paged: list[dict[str, Any]] = []
        cursor = ""
        pages = 0
        while True:
            code, page = await api_get(
                stack,
                token,
                f"/api/v1/contacts/{contact['id']}/timeline?limit={limit}&cursor={cursor}",
            )
            assert code == 200, page
            assert len(page["items"]) <= limit
            paged.extend(page["items"])
            pages += 1
            if not page["next"]:
                break
            cursor = page["next"]
        assert pages == -(-len(items) // limit), limit
        assert paged == items, limit
