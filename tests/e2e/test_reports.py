"""Reports through the real processes (issue 19 §3): two mails arrive by SMTP, an agent
replies to one and resolves it with the send; the supervisor's reports count them —
received 2, sent 1, one first reply and one resolution whose single duration is its own
average, median and p90, the agent's row — and the CSV holds exactly the JSON's table.
Bad parameters are 400 naming each, an inbox the viewer may not see 404, an agent without
`see_reports` 403. The tenant's zone changed to Asia/Tokyo: its reports come from day
rollups rebuilt in that zone, the same counts; New York's from the hourly ones."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests.e2e.test_compose import desk, mail_ticket
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.helpers import Tenant, api_call, api_get, eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@dataclass
class Desk:
    stack: Stack
    tenant: Tenant
    admin: str
    agent: str
    supervisor: str
    started: float  # time.time() before the first mail
    today: str

    def path(self, report: str, suffix: str = "", **params: str) -> str:
        query = {"from": self.today, "to": self.today, "tz": "UTC", **params}
        return f"/api/v1/reports/{report}{suffix}?" + "&".join(f"{k}={v}" for k, v in query.items())


@pytest.fixture(scope="module")
async def office(stack: Stack, smtp_peer: SmtpPeer) -> AsyncIterator[Desk]:
    tenant, admin, agent, supervisor = await desk(stack)
    started = time.time()
    subject = f"Where is my parcel {uuid.uuid4().hex[:6]}"
    ticket = await mail_ticket(stack, tenant, agent, subject)
    await mail_ticket(stack, tenant, agent, f"Another question {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket)
    code, item = await send_draft(stack, agent, draft["id"], fence, status_after="resolved")
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")
    yield Desk(stack, tenant, admin, agent, supervisor, started,
               datetime.now(UTC).date().isoformat())  # fmt: skip


async def report(d: Desk, name: str, token: str = "", **params: str) -> tuple[int, Any]:
    return await api_get(d.stack, token or d.supervisor, d.path(name, **params))


def row_of(body: dict[str, Any], index: int = -1) -> dict[str, Any]:
    return dict(zip(body["table"]["columns"], body["table"]["rows"][index], strict=True))


async def test_the_days_mail_replies_and_resolution_are_counted(office: Desk) -> None:
    async def volume() -> Any:
        code, body = await report(office, "volume")
        assert code == 200, body
        return body if body["totals"] == {"received": 2, "sent": 1} else None

    body = await eventually(volume, timeout=30, every=0.3)
    assert body["inboxes"] == [{"id": office.tenant.inbox_id, "name": "Help"}]
    # the tenant's zone is UTC: its day rows once built, the hourly ones until then
    assert body["source"] in ("rollups_day", "rollups_hour") and len(body["series"]) == 1
    assert body["series"][0]["period"] == office.today

    async def timing() -> Any:
        code, body = await report(office, "response_times")
        assert code == 200, body
        total = row_of(body)
        return body if total["first_reply_count"] == 1 == total["resolution_count"] else None

    body = await eventually(timing, timeout=30, every=0.3)
    total = row_of(body)
    elapsed = time.time() - office.started
    for metric in ("first_reply", "resolution"):
        average = total[f"{metric}_average_seconds"]
        assert 0 <= average <= elapsed
        assert total[f"{metric}_median_seconds"] == total[f"{metric}_p90_seconds"] == average
        assert total[f"{metric}_level_0"] == 1  # the inbox has no thresholds: all below
    assert body["thresholds"] == [{"level": 0, "after_minutes": 0, "color": ""}]
    assert body["totals"]["first_reply_count"] == 1

    code, ops = await report(office, "operators")
    assert code == 200, ops
    (agent_row,) = [r for r in (row_of(ops, i) for i in range(len(ops["table"]["rows"])))
                    if r["operator_id"] != "total"]  # fmt: skip
    assert agent_row["replies_sent"] == 1 and agent_row["reply_count"] == 1
    assert ops["totals"]["replies_sent"] == 1


@pytest.mark.parametrize("name", ["volume", "response_times", "operators"])
async def test_the_csv_is_the_json_table(office: Desk, name: str) -> None:
    code, body = await report(office, name, inbox_id=office.tenant.inbox_id)
    assert code == 200, body
    path = office.path(name, ".csv", inbox_id=office.tenant.inbox_id)
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{office.stack.gateway_url}{path}",
            headers={"Authorization": f"Bearer {office.supervisor}"},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/csv")
            assert f"{name}_{office.today}" in resp.headers["Content-Disposition"]
            text = (await resp.read()).decode("utf-8")
    assert text.startswith("\ufeff")
    got = list(csv.reader(io.StringIO(text[1:])))
    assert got[0] == body["table"]["columns"]
    assert got[1:] == [["" if v is None else str(v) for v in r] for r in body["table"]["rows"]]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"from": "2026-11-05", "to": "2026-11-01"}, 400, "to"),
        ({"tz": "Mars/Olympus"}, 400, "tz"),
        ({"from": "2026-01-01", "to": "2026-06-30", "granularity": "hour"}, 400, "granularity"),
        ({"granularity": "fortnight"}, 400, "granularity"),
        ({"basis": "lunar"}, 400, "basis"),
        ({"from": "last tuesday"}, 400, "from"),
        ({"inbox_id": "not-an-id"}, 400, "inbox_id"),
        ({"inbox_id": str(uuid.uuid4())}, 404, "inbox_id"),
    ],
)
async def test_bad_parameters_are_refused_naming_them(
    office: Desk, params: dict[str, str], status: int, field: str
) -> None:
    code, body = await report(office, "volume", **params)
    assert code == status, body
    assert body["error"]["field"] == field


async def test_an_unknown_report_another_tenants_inbox_and_no_permission(office: Desk) -> None:
    code, body = await report(office, "everything")
    assert code == 400 and body["error"]["field"] == "report"
    other, _admin, _agent, other_supervisor = await desk(office.stack)
    code, body = await report(office, "volume", inbox_id=other.inbox_id)
    assert code == 404 and body["error"]["field"] == "inbox_id"
    code, body = await report(office, "volume", token=other_supervisor)
    assert code == 200 and body["totals"] == {"received": 0, "sent": 0}  # nothing of ours
    code, body = await report(office, "volume", token=office.agent)
    assert code == 403, body


async def test_the_tenants_zone_gets_day_rollups_of_the_same_counts(office: Desk) -> None:
    code, body = await api_call(
        office.stack, office.admin, "PATCH", "/api/v1/tenant/settings", {"time_zone": "Asia/Tokyo"}
    )
    assert code == 200, body
    tokyo_today = datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()

    async def from_days() -> Any:
        code, body = await report(office, "volume", tz="Asia/Tokyo", **{"from": tokyo_today},
                                  to=tokyo_today)  # fmt: skip
        assert code == 200, body
        return body if body["source"] == "rollups_day" else None

    # accounts' answer is kept 10 s; then the rebuild in the tenant's new zone
    body = await eventually(from_days, timeout=45, every=1)
    assert body["totals"] == {"received": 2, "sent": 1}
    code, body = await report(office, "volume", tz="America/New_York")
    assert code == 200 and body["source"] == "rollups_hour", body
