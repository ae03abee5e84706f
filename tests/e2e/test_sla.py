"""SLA through the real processes (issue 18, RTE-4): an administrator sets up a calendar
and a policy through the API, a mail arrives, and the ticket's SLA counts business time
on that calendar and stands still in pending; warnings and breaches are announced once
each, also when routing was restarted meanwhile, and rules with the time triggers act on
them; bad input is refused naming the field and changes nothing."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from switchboard.v1 import events_pb2

from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.helpers import (
    api_call,
    api_get,
    create_tenant,
    eventually,
    login,
    make_mail,
    published,
    send,
)

pytestmark = pytest.mark.e2e
TOKYO = ZoneInfo("Asia/Tokyo")
EVERY_DAY = [
    {"weekday": d, "start": "00:00", "end": "24:00"}
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _admin(stack: Stack) -> tuple[Any, str]:
    tenant = await create_tenant(stack)
    return tenant, await login(stack, tenant.login, tenant.password)


async def _ok(stack: Stack, token: str, method: str, path: str, body: Any = None) -> Any:
    code, answer = await api_call(stack, token, method, path, body)
    assert code in (200, 201, 204), (code, answer)
    return answer


async def _mailed_ticket(stack: Stack, token: str, to: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    await asyncio.to_thread(send, stack.smtp_port, make_mail(f"SLA {tag}", to=to), [to])

    async def found() -> list[dict[str, Any]]:
        code, body = await api_get(stack, token, f"/api/v1/tickets?q={tag}")
        assert code == 200, body
        return list(body["items"])

    [ticket] = await eventually(found, timeout=30)
    return ticket


async def _one_minute_policy(stack: Stack, token: str, inbox_id: str) -> None:
    """A first response due in a minute around the clock, warned at half of it."""
    await _ok(
        stack,
        token,
        "POST",
        "/api/v1/sla-policies",
        {
            "name": "One minute",
            "inbox_ids": [inbox_id],
            "first_response_minutes": 1,
            "warning": {"at_percent": 50},
        },
    )


async def _sla(stack: Stack, token: str, ticket_id: str, state: str) -> dict[str, Any]:
    """The ticket's SLA once it is in `state`."""

    async def probe() -> dict[str, Any] | None:
        code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket_id}/sla")
        assert code == 200, body
        return body if body["state"] == state else None

    found: dict[str, Any] = await eventually(probe, timeout=30)
    return found


async def _ticket_due(stack: Stack, token: str, ticket_id: str, due: str | None) -> None:
    """Waits until the ticket shows `due` as its sla_due_at."""

    async def probe() -> bool:
        code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket_id}")
        assert code == 200, body
        return bool(body["sla_due_at"] == due)

    await eventually(probe, timeout=30)


@pytest.fixture
async def sla_events(stack: Stack) -> AsyncIterator[list[events_pb2.EventEnvelope]]:
    """Every sb.routing.sla.* event published meanwhile."""
    async with published(stack, "sb.routing.sla.>") as got:
        yield got


async def test_a_mailed_ticket_is_due_in_business_time_of_its_policy_s_calendar(
    stack: Stack,
) -> None:
    tenant, token = await _admin(stack)
    # open around the clock in Tokyo but for today and tomorrow (dated holidays): the
    # clock starts at midnight the day after tomorrow, Tokyo time
    today = datetime.now(TOKYO).date()
    holidays = [{"date": (today + timedelta(days=n)).isoformat(), "name": "棚卸し"} for n in (0, 1)]
    cal = await _ok(
        stack,
        token,
        "POST",
        "/api/v1/calendars",
        {"name": "Tokyo", "time_zone": "Asia/Tokyo", "slots": EVERY_DAY, "holidays": holidays},
    )
    assert cal["public_holidays"] == "JP" and cal["slots"][0]["crosses_midnight"] is False
    policy = await _ok(
        stack,
        token,
        "POST",
        "/api/v1/sla-policies",
        {
            "name": "Help desk",
            "inbox_ids": [tenant.inbox_id],
            "calendar_id": cal["id"],
            "first_response_minutes": 60,
            "resolution_minutes": 600,
            "warning": {"before_minutes": 15},
        },
    )
    assert policy["pause_statuses"] == ["pending"] and policy["position"] == 1

    ticket = await _mailed_ticket(stack, token, tenant.address)
    sla = await _sla(stack, token, ticket["id"], "ok")
    arrived = _at(ticket["received_at"]).astimezone(TOKYO).date()
    opens = datetime.combine(arrived + timedelta(days=2), datetime.min.time(), tzinfo=TOKYO)
    assert sla["policy"] == {"id": policy["id"], "name": "Help desk"}
    due = {t["kind"]: (_at(t["due_at"]), _at(t["warning_at"])) for t in sla["targets"]}
    assert due == {
        "first_response": (opens + timedelta(minutes=60), opens + timedelta(minutes=45)),
        "resolution": (opens + timedelta(minutes=600), opens + timedelta(minutes=585)),
    }
    assert _at(sla["next_due_at"]) == opens + timedelta(minutes=60)

    # the ticket carries its soonest due time (tickets keeps it from sla.changed)
    await _ticket_due(stack, token, ticket["id"], sla["next_due_at"])
    # a changed policy moves the due times of the tickets already running
    await _ok(
        stack,
        token,
        "PUT",
        f"/api/v1/sla-policies/{policy['id']}",
        {
            **{k: policy[k] for k in ("name", "inbox_ids", "calendar_id")},
            "first_response_minutes": 90,
            "resolution_minutes": 600,
        },
    )
    moved = (opens + timedelta(minutes=90)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    await _ticket_due(stack, token, ticket["id"], moved)

    # pending stops the clocks: nothing is due, the whole target is left
    await _ok(stack, token, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"status": "pending"})
    paused = await _sla(stack, token, ticket["id"], "paused")
    assert paused["paused"] and paused["next_due_at"] is None
    assert {t["kind"]: t["remaining_minutes"] for t in paused["targets"]} == {
        "first_response": 90,
        "resolution": 600,
    }
    await _ticket_due(stack, token, ticket["id"], None)

    # lists sort by the due time: a ticket with a clock running before one without
    other = await _mailed_ticket(stack, token, tenant.address)
    running = await _sla(stack, token, other["id"], "ok")
    await _ticket_due(stack, token, other["id"], running["next_due_at"])
    for order, expected in (
        ("asc", [other["id"], ticket["id"]]),
        ("desc", [ticket["id"], other["id"]]),
    ):
        code, page = await api_get(
            stack, token, f"/api/v1/tickets?status=open,pending&sort=sla_due_at&order={order}"
        )
        assert code == 200, page
        assert [t["id"] for t in page["items"]] == expected


async def test_warning_and_breach_fire_once_each_also_after_routing_restarts(
    stack: Stack, sla_events: list[events_pb2.EventEnvelope]
) -> None:
    tenant, token = await _admin(stack)
    await _one_minute_policy(stack, token, tenant.inbox_id)
    ticket = await _mailed_ticket(stack, token, tenant.address)
    sla = await _sla(stack, token, ticket["id"], "ok")
    [first] = sla["targets"]
    due, warn = _at(first["due_at"]), _at(first["warning_at"])
    assert due - warn == timedelta(seconds=30)

    # routing dies and comes back before either is due: the index is in its database
    stack.kill("routing", signal.SIGKILL)
    stack.start_process("routing")
    await stack.wait_healthy(timeout=60)

    def of(etype: str) -> list[events_pb2.EventEnvelope]:
        return [e for e in sla_events if e.type == etype and e.sla_alert.ticket_id == ticket["id"]]

    [breach] = await eventually(lambda: _async(of("sla.breached")), timeout=120)
    [warning] = of("sla.warning")
    for env, at in ((warning, warn), (breach, due)):
        assert env.tenant_id == tenant.tenant_id
        assert env.sla_alert.target == "first_response"
        assert env.sla_alert.due_at.ToDatetime(tzinfo=UTC) == due
        assert env.occurred_at.ToDatetime(tzinfo=UTC) >= at  # never early
    assert (await _sla(stack, token, ticket["id"], "breached"))["targets"][0]["state"] == "breached"
    # once each: the index holds nothing more for it, and each is remembered as fired
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_routing"))
    try:
        fired = await conn.fetch(
            "SELECT which FROM sla_fired WHERE ticket_id = $1 ORDER BY which",
            uuid.UUID(ticket["id"]),
        )
        left = await conn.fetchval(
            "SELECT count(*) FROM sla_timers WHERE ticket_id = $1", uuid.UUID(ticket["id"])
        )
    finally:
        await conn.close()
    assert [r["which"] for r in fired] == ["breach", "warning"] and left == 0
    assert len(of("sla.breached")) == 1 and len(of("sla.warning")) == 1


async def _async(value: Any) -> Any:
    return value


async def test_ical_holidays_and_japanese_public_holidays(stack: Stack) -> None:
    _tenant, token = await _admin(stack)
    code, listed = await api_get(stack, token, "/api/v1/public-holidays?country=JP&year=2027")
    assert code == 200, listed
    assert {"date": "2027-01-11", "name": "成人の日", "yearly": False} in listed["holidays"]
    cal = await _ok(
        stack,
        token,
        "POST",
        "/api/v1/calendars",
        {
            "name": "Nights",
            "time_zone": "Asia/Tokyo",
            "public_holidays": "",
            "slots": [
                {"weekday": "fri", "start": "22:00", "end": "02:00", "crosses_midnight": True}
            ],
        },
    )
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//sla//EN\r\n"
        "BEGIN:VEVENT\r\nUID:a\r\nDTSTART;VALUE=DATE:20270813\r\nDTEND;VALUE=DATE:20270815\r\n"
        "SUMMARY:お盆休み\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:b\r\nDTSTART;VALUE=DATE:20271231\r\nRRULE:FREQ=YEARLY\r\n"
        "SUMMARY:大晦日\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    imported = await _ok(stack, token, "POST", f"/api/v1/calendars/{cal['id']}/ical", {"ical": ics})
    assert imported["imported"] == 3
    assert imported["calendar"]["holidays"] == [
        {"date": "2027-08-13", "name": "お盆休み", "yearly": False},
        {"date": "2027-08-14", "name": "お盆休み", "yearly": False},
        {"date": "2027-12-31", "name": "大晦日", "yearly": True},
    ]
    again = await _ok(stack, token, "POST", f"/api/v1/calendars/{cal['id']}/ical", {"ical": ics})
    assert again["imported"] == 0 and again["calendar"]["version"] == 3
    code, body = await api_call(
        stack, token, "POST", f"/api/v1/calendars/{cal['id']}/ical", {"ical": "not ical"}
    )
    assert code == 400 and body["error"]["field"] == "ical"
    assert (await _ok(stack, token, "GET", f"/api/v1/calendars/{cal['id']}"))["version"] == 3


async def test_bad_input_is_refused_naming_the_field_and_nothing_is_saved(stack: Stack) -> None:
    tenant, token = await _admin(stack)
    good = {"name": "Office", "time_zone": "Asia/Tokyo", "slots": EVERY_DAY}
    bad_calendars: list[tuple[dict[str, Any], str]] = [
        ({**good, "slots": [{"weekday": "mon", "start": "18:00", "end": "09:00"}]}, "slots[0].end"),
        ({**good, "time_zone": "Mars/Olympus"}, "time_zone"),
        ({**good, "slots": []}, "slots"),
        ({**good, "public_holidays": "XX"}, "public_holidays"),
        ({**good, "holidays": [{"date": "2027-02-30"}]}, "holidays[0].date"),
    ]
    for body, field in bad_calendars:
        code, answer = await api_call(stack, token, "POST", "/api/v1/calendars", body)
        assert code == 400, (body, answer)
        assert answer["error"]["code"] == "invalid_argument"
        assert answer["error"]["field"] == field, answer
    assert (await _ok(stack, token, "GET", "/api/v1/calendars"))["calendars"] == []

    base = {"name": "Policy", "first_response_minutes": 60}
    bad_policies: list[tuple[dict[str, Any], str]] = [
        ({**base, "first_response_minutes": 0}, "first_response_minutes"),
        ({"name": "No target"}, "first_response_minutes"),
        ({**base, "calendar_id": str(uuid.uuid4())}, "calendar_id"),
        ({**base, "priorities": ["asap"]}, "priorities[0]"),
        ({**base, "pause_statuses": ["open"]}, "pause_statuses[0]"),
        ({**base, "warning": {"before_minutes": 5, "at_percent": 50}}, "warning"),
        ({**base, "inbox_ids": ["not-an-id"]}, "inbox_ids[0]"),
    ]
    for body, field in bad_policies:
        code, answer = await api_call(stack, token, "POST", "/api/v1/sla-policies", body)
        assert code == 400, (body, answer)
        assert answer["error"]["field"] == field, answer
    assert (await _ok(stack, token, "GET", "/api/v1/sla-policies"))["policies"] == []

    # a calendar in use cannot go; another tenant sees none of it; agents cannot change it
    cal = await _ok(stack, token, "POST", "/api/v1/calendars", good)
    code, answer = await api_call(stack, token, "POST", "/api/v1/calendars", good)
    assert code == 409 and answer["error"]["field"] == "name"
    await _ok(stack, token, "POST", "/api/v1/sla-policies", {**base, "calendar_id": cal["id"]})
    code, answer = await api_call(stack, token, "DELETE", f"/api/v1/calendars/{cal['id']}")
    assert code == 409 and answer["error"]["field"] == "calendar_id"
    _other, other_token = await _admin(stack)
    code, _ = await api_get(stack, other_token, f"/api/v1/calendars/{cal['id']}")
    assert code == 404
    code, answer = await api_call(
        stack, other_token, "POST", "/api/v1/sla-policies", {**base, "calendar_id": cal["id"]}
    )
    assert code == 400 and answer["error"]["field"] == "calendar_id"
    agent_tenant = await create_tenant(stack, roles=("agent",))
    agent = await login(stack, agent_tenant.login, agent_tenant.password)
    code, _ = await api_call(stack, agent, "POST", "/api/v1/calendars", good)
    assert code == 403
    assert tenant.tenant_id != agent_tenant.tenant_id


async def test_rules_escalate_a_warning_and_a_breach_once_each(
    stack: Stack, sla_events: list[events_pb2.EventEnvelope]
) -> None:
    """Rules with the time triggers act on the ticket when its SLA warns and breaks: on
    the breach it becomes urgent and labelled 期限超過, each action once in its audit
    trail as "rule <name>: …"; the change they make is a ticket change other rules
    answer."""
    tenant, token = await _admin(stack)
    rules = [
        {
            "name": "解決期限",  # not this target: never runs here
            "triggers": ["sla_breached"],
            "conditions": {
                "match": "all",
                "conditions": [
                    {"field": "sla_target", "operator": "equals", "value": "resolution"}
                ],
            },
            "actions": [{"type": "set_category", "value": "late"}],
        },
        {
            "name": "期限超過は至急",
            "inbox_id": tenant.inbox_id,
            "triggers": ["sla_breached"],
            "conditions": {
                "match": "all",
                "conditions": [
                    {"field": "sla_target", "operator": "equals", "value": "first_response"}
                ],
            },
            "actions": [
                {"type": "set_priority", "value": "urgent"},
                {"type": "add_label", "value": "期限超過"},
            ],
        },
        {
            "name": "warned",
            "triggers": ["sla_warning"],
            "conditions": {"match": "all", "conditions": []},
            "actions": [{"type": "add_label", "value": "期限間近"}],
        },
        {
            "name": "on change",
            "triggers": ["ticket_changed"],
            "conditions": {
                "match": "all",
                "conditions": [{"field": "labels", "operator": "equals", "value": "期限超過"}],
            },
            "actions": [{"type": "add_label", "value": "seen"}],
        },
    ]
    for r in rules:
        await _ok(stack, token, "POST", "/api/v1/rules", r)
    await _one_minute_policy(stack, token, tenant.inbox_id)
    ticket = await _mailed_ticket(stack, token, tenant.address)
    assert ticket["priority"] == "normal" and "期限超過" not in ticket["labels"]

    def breaches() -> list[events_pb2.EventEnvelope]:
        return [
            e
            for e in sla_events
            if e.type == "sla.breached" and e.sla_alert.ticket_id == ticket["id"]
        ]

    await eventually(lambda: _async(breaches()), timeout=120)

    async def escalated() -> dict[str, Any] | None:
        code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
        assert code == 200, body
        t = dict(body.get("ticket", body))
        done = t["priority"] == "urgent" and {"期限超過", "seen"} <= set(t["labels"])
        return t if done else None

    after = await eventually(escalated, timeout=30)
    assert "期限間近" in after["labels"]
    code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}/audit?limit=200")
    assert code == 200, body
    audit = [e["comment"] for e in body["items"] if e["comment"]]
    assert audit.count("rule 期限超過は至急: set priority urgent") == 1, audit
    assert audit.count("rule 期限超過は至急: add label 期限超過") == 1, audit
    assert audit.count("rule warned: add label 期限間近") == 1, audit
    assert audit.count("rule on change: add label seen") == 1, audit
    assert not [c for c in audit if c.startswith("rule 解決期限")] and not after.get("category")
