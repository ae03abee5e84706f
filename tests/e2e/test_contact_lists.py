"""Contact lists (issue 20, OUT-6) through the gateway: created, renamed, deleted with their
contacts kept; members found or created by address with each bad entry reported by index;
another tenant's list is missing; an operator without manage_outreach is refused; CSV
imports report each bad line and import the rest (UTF-8 and CP932); and outbound's
ResolveAudience over gRPC answers exactly the members, in contact-id order."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import grpc
import pytest
from switchboard.v1 import tickets_pb2, tickets_pb2_grpc

from services.devstack.stack import Stack
from services.runtime.identity import Identity
from tests.helpers import Tenant, api_call, api_get, create_tenant, eventually, login

pytestmark = pytest.mark.e2e


async def _token(stack: Stack, tenant: Tenant) -> str:
    return await login(stack, tenant.login, tenant.password)


async def _new_list(stack: Stack, token: str, name: str = "展示会") -> dict[str, Any]:
    code, body = await api_call(
        stack, token, "POST", "/api/v1/contact-lists", {"name": name, "description": "名刺"}
    )
    assert code == 201, body
    return dict(body)


async def _resolve(stack: Stack, tenant_id: str, **which: str) -> list[Any]:
    """Every member of the audience, as outbound reads it (a service, no operator)."""
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.config.ports.grpc['tickets']}"
    ) as channel:
        stub = tickets_pb2_grpc.TicketsServiceStub(channel)
        out: list[Any] = []
        async for batch in stub.ResolveAudience(
            tickets_pb2.ResolveAudienceRequest(**which),
            metadata=Identity(tenant_id).metadata(),
            timeout=30,
        ):
            out.extend(batch.members)
        return out


async def test_lists_are_created_edited_and_deleted_and_members_added_by_address(
    stack: Stack,
) -> None:
    tenant = await create_tenant(stack)
    token = await _token(stack, tenant)
    made = await _new_list(stack, token)
    assert made["member_count"] == 0 and made["description"] == "名刺"
    code, renamed = await api_call(
        stack, token, "PATCH", f"/api/v1/contact-lists/{made['id']}", {"name": "展示会 2026"}
    )
    assert code == 200 and renamed["name"] == "展示会 2026" and renamed["description"] == "名刺"
    tag = uuid.uuid4().hex[:6]
    entries = [
        {"address": f"Taro.{tag}@Example.JP", "name": "山田 太郎", "time_zone": "Asia/Tokyo",
         "language": "ja", "labels": ["展示会", "VIP"], "custom": {"plan": "pro"}},
        {"address": "not an address"},
        {"address": f"hanako.{tag}@example.com", "time_zone": "Mars/Olympus"},
        {"address": f"jiro.{tag}@example.com", "language": "de"},
        {"address": f"hanako.{tag}@example.com", "name": "Hanako"},
    ]  # fmt: skip
    code, result = await api_call(
        stack, token, "POST", f"/api/v1/contact-lists/{made['id']}/members", {"contacts": entries}
    )
    assert code == 200, result
    assert (result["added"], result["updated"]) == (2, 0)
    assert [(e["index"], e["field"]) for e in result["errors"]] == [
        (1, "address"),
        (2, "time_zone"),
        (3, "language"),
    ]
    # the same address again: already a member, its fields set
    code, again = await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/contact-lists/{made['id']}/members",
        {"contacts": [{"address": f"taro.{tag}@example.jp", "labels": ["休眠"]}]},
    )
    assert (again["added"], again["updated"], again["errors"]) == (0, 1, [])
    code, page = await api_get(stack, token, f"/api/v1/contact-lists/{made['id']}/members")
    assert code == 200 and page["next_cursor"] == ""
    by_address = {m["address"]: m for m in page["members"]}
    taro = by_address[f"taro.{tag}@example.jp"]
    assert (taro["name"], taro["time_zone"], taro["language"]) == ("山田 太郎", "Asia/Tokyo", "ja")
    assert taro["labels"] == ["休眠"] and taro["custom"] == {"plan": "pro"}
    assert by_address[f"hanako.{tag}@example.com"]["name"] == "Hanako"
    code, contact = await api_get(stack, token, f"/api/v1/contacts/{taro['contact_id']}")
    assert code == 200 and contact["labels"] == ["休眠"] and contact["language"] == "ja"
    assert contact["last_contact_at"] is None  # no mail yet
    code, found = await api_get(stack, token, f"/api/v1/contact-lists/{made['id']}")
    assert found["member_count"] == 2
    code, _ = await api_call(
        stack,
        token,
        "DELETE",
        f"/api/v1/contact-lists/{made['id']}/members/{taro['contact_id']}",
    )
    assert code == 204
    code, found = await api_get(stack, token, f"/api/v1/contact-lists/{made['id']}")
    assert found["member_count"] == 1
    code, _ = await api_call(stack, token, "DELETE", f"/api/v1/contact-lists/{made['id']}")
    assert code == 204
    code, _ = await api_get(stack, token, f"/api/v1/contact-lists/{made['id']}")
    assert code == 404
    code, lists = await api_get(stack, token, "/api/v1/contact-lists")
    assert lists == {"lists": []}
    code, kept = await api_get(stack, token, f"/api/v1/contacts/{taro['contact_id']}")
    assert code == 200 and kept["addresses"] == [f"taro.{tag}@example.jp"]


async def test_another_tenants_list_is_missing_and_agents_are_refused(stack: Stack) -> None:
    mine, theirs = await create_tenant(stack), await create_tenant(stack)
    agents = await create_tenant(stack, roles=("agent",))
    token, other = await _token(stack, mine), await _token(stack, theirs)
    made = await _new_list(stack, token)
    for method, path, body in [
        ("GET", f"/api/v1/contact-lists/{made['id']}", None),
        ("PATCH", f"/api/v1/contact-lists/{made['id']}", {"name": "x"}),
        ("DELETE", f"/api/v1/contact-lists/{made['id']}", None),
        ("GET", f"/api/v1/contact-lists/{made['id']}/members", None),
        (
            "POST",
            f"/api/v1/contact-lists/{made['id']}/members",
            {"contacts": [{"address": "a@example.com"}]},
        ),
    ]:
        code, answer = await api_call(stack, other, method, path, body)
        assert code == 404, (method, path, answer)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _resolve(stack, theirs.tenant_id, list_id=made["id"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    agent = await _token(stack, agents)
    code, answer = await api_get(stack, agent, "/api/v1/contact-lists")
    assert code == 403, answer
    code, answer = await api_call(stack, agent, "POST", "/api/v1/contact-lists", {"name": "x"})
    assert code == 403
    code, fields = await api_get(stack, agent, "/api/v1/contact-fields")  # any operator reads
    assert code == 200 and fields == {"fields": []}


async def test_resolve_audience_answers_exactly_the_members_in_batches(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token = await _token(stack, tenant)
    made, other = await _new_list(stack, token), await _new_list(stack, token, "other")
    tag = uuid.uuid4().hex[:6]
    addresses = [f"m{i:04d}.{tag}@example.com" for i in range(1_203)]
    for start in range(0, len(addresses), 1_000):
        code, result = await api_call(
            stack,
            token,
            "POST",
            f"/api/v1/contact-lists/{made['id']}/members",
            {
                "contacts": [
                    {"address": a, "name": f"N{a[1:5]}", "custom": {"n": a[1:5]}}
                    for a in addresses[start : start + 1_000]
                ]
            },
        )
        assert code == 200 and result["errors"] == [], result
    await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/contact-lists/{other['id']}/members",
        {"contacts": [{"address": f"outsider.{tag}@example.com"}]},
    )
    members = await _resolve(stack, tenant.tenant_id, list_id=made["id"])
    assert sorted(m.address for m in members) == sorted(addresses)
    ids = [m.contact_id for m in members]
    assert ids == sorted(ids, key=uuid.UUID) and len(set(ids)) == len(ids)
    first = next(m for m in members if m.address == addresses[7])
    assert first.name == "N0007" and dict(first.custom) == {"n": "0007"}
    empty = await _new_list(stack, token, "empty")
    assert await _resolve(stack, tenant.tenant_id, list_id=empty["id"]) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _resolve(stack, tenant.tenant_id, list_id=str(uuid.uuid4()))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # a segment of the list's members: the same contacts
    code, seg = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/segments",
        {"name": "in list", "match": "all", "conditions": [
            {"field": "list", "op": "has", "value": made["id"]}]},
    )  # fmt: skip
    assert code == 201, seg
    by_segment = await _resolve(stack, tenant.tenant_id, segment_id=seg["id"])
    assert [m.contact_id for m in by_segment] == ids
    code, counted = await api_get(stack, token, f"/api/v1/segments/{seg['id']}/count")
    assert code == 200 and counted["count"] == len(addresses)


async def _wait_import(stack: Stack, token: str, import_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        code, job = await api_get(stack, token, f"/api/v1/contact-imports/{import_id}")
        assert code == 200, job
        return job if job["state"] != "running" else None

    job: dict[str, Any] = await eventually(done, timeout=60, every=0.2)
    return job


async def _post_csv(
    stack: Stack, token: str, list_id: str, data: bytes
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/contact-lists/{list_id}/imports",
            data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        ) as resp:
            return resp.status, await resp.json()


async def test_a_csv_import_reports_each_bad_line_and_imports_the_rest(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token = await _token(stack, tenant)
    code, _ = await api_call(
        stack,
        token,
        "PUT",
        "/api/v1/contact-fields",
        {"fields": [{"key": "spend", "label": "年間購入額", "type": "number"},
                    {"key": "renewal", "label": "更新日", "type": "date"}]},
    )  # fmt: skip
    assert code == 200
    made = await _new_list(stack, token)
    tag = uuid.uuid4().hex[:6]
    lines = [
        "email,名前,time_zone,labels,年間購入額,renewal,shoe_size",
        f'a.{tag}@example.com,Alice,Europe/Paris,x;y,"1,200",2026/4/1,42',
        "not-an-address,Bob,,,,,",
        f"c.{tag}@example.com,Carol,Nowhere/Else,,,,",
        f"d.{tag}@example.com,Dave,,,lots,,",
        f"e.{tag}@example.com,Eve,,,,2026-02-30,",
        f"f.{tag}@example.com,{'F' * 300},,,,,",
        f"g.{tag}@example.com,Grace,UTC,,5,,",
    ]
    code, job = await _post_csv(stack, token, made["id"], "\r\n".join(lines).encode())
    assert code == 202, job
    assert job["state"] in ("running", "done") and job["list_id"] == made["id"]
    job = await _wait_import(stack, token, job["id"])
    assert job["state"] == "done", job
    assert (job["total_lines"], job["processed"], job["imported"], job["failed"]) == (7, 7, 2, 5)
    by_line = {e["line"]: e["message"] for e in job["errors"]}
    assert sorted(by_line) == [1, 3, 4, 5, 6, 7], job["errors"]
    assert "shoe_size" in by_line[1]
    assert "not-an-address" in by_line[3] and "time zone" in by_line[4]
    assert "number" in by_line[5] and "date" in by_line[6] and "longer" in by_line[7]
    code, page = await api_get(stack, token, f"/api/v1/contact-lists/{made['id']}/members")
    got = {m["address"]: m for m in page["members"]}
    assert set(got) == {f"a.{tag}@example.com", f"g.{tag}@example.com"}
    alice = got[f"a.{tag}@example.com"]
    assert alice["labels"] == ["x", "y"] and alice["time_zone"] == "Europe/Paris"
    assert alice["custom"] == {"spend": "1200", "renewal": "2026-04-01"}


async def test_a_cp932_csv_with_japanese_headers_is_read(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token = await _token(stack, tenant)
    made = await _new_list(stack, token)
    tag = uuid.uuid4().hex[:6]
    text = f"メールアドレス,名前\r\nsato.{tag}@example.jp,佐藤 花子\r\n"
    code, job = await _post_csv(stack, token, made["id"], text.encode("cp932"))
    assert code == 202
    job = await _wait_import(stack, token, job["id"])
    assert (job["state"], job["imported"], job["errors"]) == ("done", 1, [])
    code, page = await api_get(stack, token, f"/api/v1/contact-lists/{made['id']}/members")
    assert [(m["address"], m["name"]) for m in page["members"]] == [
        (f"sato.{tag}@example.jp", "佐藤 花子")
    ]
    bom = f"\ufeffaddress,name\nito.{tag}@example.jp,伊藤\n".encode()
    code, job = await _post_csv(stack, token, made["id"], bom)
    job = await _wait_import(stack, token, job["id"])
    assert (job["state"], job["imported"]) == ("done", 1)
    code, big = await _post_csv(stack, token, made["id"], b"address\n" + b"x" * (21 << 20))
    assert code == 413 and big["error"]["code"] == "too_large"


async def test_a_stored_job_is_resumed_where_it_stopped_or_failed_never_left_running(
    stack: Stack,
) -> None:
    """What a restarted tickets finds in contact_imports: a job part done goes on from its
    `processed` line; a job whose file cannot be read fails with a reason."""
    import asyncpg

    from services.runtime.db import with_database

    tenant = await create_tenant(stack)
    token = await _token(stack, tenant)
    made = await _new_list(stack, token)
    tag = uuid.uuid4().hex[:6]
    csv_text = "address\n" + "".join(f"r{i}.{tag}@example.com\n" for i in range(4))
    resumed, broken = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_tickets"))
    try:
        for job_id, data, processed in ((resumed, csv_text.encode(), 2),
                                        (broken, b"name\nNo Address\n", 0)):  # fmt: skip
            await conn.execute(
                "INSERT INTO contact_imports (id, tenant_id, list_id, state, csv, total_lines, "
                "processed, imported, created_at, updated_at) "
                "VALUES ($1, $2, $3, 'running', $4, $5, $6, $6, now(), now())",
                job_id,
                uuid.UUID(tenant.tenant_id),
                uuid.UUID(made["id"]),
                data,
                4 if processed else 0,
                processed,
            )
    finally:
        await conn.close()
    job = await _wait_import(stack, token, str(resumed))
    assert (job["state"], job["processed"], job["imported"]) == ("done", 4, 4), job
    _code, page = await api_get(stack, token, f"/api/v1/contact-lists/{made['id']}/members")
    assert sorted(m["address"] for m in page["members"]) == [
        f"r2.{tag}@example.com",
        f"r3.{tag}@example.com",
    ]
    failed = await _wait_import(stack, token, str(broken))
    assert failed["state"] == "failed" and "address column" in failed["message"]
    assert failed["finished_at"] is not None
