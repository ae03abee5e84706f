"""The rule actions with outside effects (issue 18), pure: validation of auto_reply, notify
and webhook naming the field; the engine recording each with its rule; the decision as
events carry it; the webhook's payload, signature and backoff; who a notify names."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from switchboard.v1 import common_pb2, events_pb2

from gateway.auth import Caller
from gateway.views_rules import names, rule_notifications
from services.routing import rules_facts, webhook_sign
from services.routing.rules import engine, validate
from services.routing.rules.model import Rule
from services.runtime.errors import InvalidArgument
from tests.unit.test_routing_rules import facts

TPL = "0190f0d2-0000-7000-8000-0000000000aa"
OP = "0190f0d2-0000-7000-8000-0000000000cc"
INBOX = "0190f0d2-0000-7000-8000-0000000000bb"


def rule(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"name": "r", "triggers": ["new_ticket"], "actions": list(actions)}


def refused(raw: dict[str, Any]) -> str:
    with pytest.raises(InvalidArgument) as err:
        validate.parse(raw)
    return str(err.value.field)


def test_the_three_actions_are_read_and_written_back_as_given() -> None:
    raw = rule(
        {"type": "auto_reply", "value": TPL},
        {
            "type": "notify",
            "value": " 見てください ",
            "to": [f"operator:{OP}", "inbox_members", "role:supervisor"],
        },
        {"type": "webhook", "value": "https://hooks.example.com/sb?x=1"},
    )
    parsed = validate.parse(raw)
    assert [a.type for a in parsed.actions] == ["auto_reply", "notify", "webhook"]
    assert parsed.actions[1].value == "見てください"
    assert validate.to_json(parsed)["actions"] == [
        {"type": "auto_reply", "value": TPL},
        {
            "type": "notify",
            "value": "見てください",
            "to": [f"operator:{OP}", "inbox_members", "role:supervisor"],
        },
        {"type": "webhook", "value": "https://hooks.example.com/sb?x=1"},
    ]
    assert validate.parse(validate.to_json(parsed)) == parsed


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"type": "auto_reply", "value": "not-an-id"}, "actions[0].value"),
        ({"type": "auto_reply"}, "actions[0].value"),
        ({"type": "webhook", "value": "ftp://hooks.example.com/x"}, "actions[0].value"),
        ({"type": "webhook", "value": "javascript:alert(1)"}, "actions[0].value"),
        ({"type": "webhook", "value": "https://user:pw@hooks.example.com/"}, "actions[0].value"),
        ({"type": "webhook", "value": "https:///nohost"}, "actions[0].value"),
        ({"type": "webhook", "value": "https://h.example/a b"}, "actions[0].value"),
        ({"type": "webhook", "value": "https://h.example/\r\nX: y"}, "actions[0].value"),
        ({"type": "webhook", "value": "https://h.example:99999/"}, "actions[0].value"),
        ({"type": "webhook", "value": "https://h.example/" + "a" * 2000}, "actions[0].value"),
        ({"type": "notify", "value": "hi"}, "actions[0].to"),
        ({"type": "notify", "value": "hi", "to": []}, "actions[0].to"),
        ({"type": "notify", "value": "", "to": ["inbox_members"]}, "actions[0].value"),
        ({"type": "notify", "value": "x" * 501, "to": ["inbox_members"]}, "actions[0].value"),
        ({"type": "notify", "value": "hi", "to": ["everyone"]}, "actions[0].to[0]"),
        (
            {"type": "notify", "value": "hi", "to": ["inbox_members", "operator:bob"]},
            "actions[0].to[1]",
        ),
        ({"type": "notify", "value": "hi", "to": ["role: "]}, "actions[0].to[0]"),
        ({"type": "notify", "value": "hi", "to": ["inbox_members"] * 21}, "actions[0].to"),
        ({"type": "add_label", "value": "x", "to": ["inbox_members"]}, "actions[0].to"),
    ],
)
def test_bad_actions_are_refused_naming_the_field(action: dict[str, Any], field: str) -> None:
    assert refused(rule(action)) == field


def test_the_engine_records_each_outside_action_with_its_rule_and_the_audit_words() -> None:
    first = Rule(
        "r1",
        0,
        1,
        validate.parse({**rule({"type": "webhook", "value": "https://a.example/"}), "name": "一"}),
    )
    second = Rule(
        "r2",
        1,
        1,
        validate.parse(
            {
                **rule(
                    {"type": "add_label", "value": "x"},
                    {"type": "notify", "value": "見て", "to": ["role:supervisor"]},
                    {"type": "auto_reply", "value": TPL},
                ),
                "name": "二",
            }
        ),
    )
    decision = engine.evaluate([first, second], facts(), "new_ticket", lambda c, a: None).decision
    assert [(r, n, a.type) for r, n, a in decision.effects_by_rule()] == [
        ("r1", "一", "webhook"),
        ("r2", "二", "notify"),
        ("r2", "二", "auto_reply"),
    ]
    assert [t[2] for t in decision.trace] == [
        "call webhook https://a.example/",
        "add label x",
        "notify role:supervisor: 見て",
        f"automatic reply with template {TPL}",
    ]
    pb = rules_facts.decision_pb(decision, "new_ticket")
    assert pb.trigger == "new_ticket"
    assert [(w.rule_id, w.rule_name, w.url) for w in pb.webhooks] == [
        ("r1", "一", "https://a.example/")
    ]
    assert [(n.rule_name, list(n.to), n.message) for n in pb.notifies] == [
        ("二", ["role:supervisor"], "見て")
    ]
    assert [(a.rule_id, a.template_id) for a in pb.auto_replies] == [("r2", TPL)]


def _ticket() -> events_pb2.TicketSummary:
    t = events_pb2.TicketSummary(
        id="t-1", subject="返品について", number=42, status=common_pb2.TICKET_STATUS_OPEN
    )
    t.inbox.id, t.inbox.name = INBOX, "Support"
    t.priority = common_pb2.PRIORITY_HIGH
    return t


def test_the_webhook_payload_names_the_ticket_rule_trigger_and_time() -> None:
    at = datetime(2026, 12, 6, 17, 30, tzinfo=UTC)
    body = webhook_sign.payload("d-1", at, "sla_breached", "r-1", "VIP", _ticket())
    assert json.loads(body) == {
        "id": "d-1",
        "type": "rule.webhook",
        "occurred_at": "2026-12-06T17:30:00Z",
        "trigger": "sla_breached",
        "rule": {"id": "r-1", "name": "VIP"},
        "ticket": {
            "id": "t-1",
            "number": 42,
            "subject": "返品について",
            "inbox": {"id": INBOX, "name": "Support"},
            "status": "open",
            "priority": "high",
        },
    }


def test_the_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    secret, body, ts = "whsec_abc", '{"a":"返品"}'.encode(), 1765042200
    headers = webhook_sign.headers(secret, "d-1", ts, body)
    want = hmac.new(b"whsec_abc", b"1765042200." + body, hashlib.sha256).hexdigest()
    assert headers["X-Switchboard-Signature"] == f"v1={want}"
    assert headers["X-Switchboard-Timestamp"] == "1765042200"
    assert headers["X-Switchboard-Delivery"] == "d-1"
    assert secret not in json.dumps(headers)
    assert webhook_sign.verify(secret, "1765042200", body, headers["X-Switchboard-Signature"])
    assert not webhook_sign.verify(secret, "1765042201", body, headers["X-Switchboard-Signature"])
    assert not webhook_sign.verify(
        secret, "1765042200", body + b" ", headers["X-Switchboard-Signature"]
    )
    assert not webhook_sign.verify(
        "whsec_abd", "1765042200", body, headers["X-Switchboard-Signature"]
    )
    assert not webhook_sign.verify(secret, "soon", body, headers["X-Switchboard-Signature"])
    made = webhook_sign.new_secret()
    assert made.startswith("whsec_") and len(made) > 40 and made != webhook_sign.new_secret()
    assert webhook_sign.hint(made) == "…" + made[-4:]


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    assert [webhook_sign.backoff_s(n, 30, 3600) for n in (1, 2, 3, 4, 8, 20)] == [
        30,
        60,
        120,
        240,
        3600,
        3600,
    ]


def _caller(
    op: str, roles: tuple[str, ...] = (), inboxes: tuple[str, ...] = (), every: bool = False
) -> Caller:
    return Caller(
        tenant_id="t",
        operator_id=op,
        login="l",
        display_name="d",
        roles=roles,
        inbox_ids=inboxes,
        all_inboxes=every,
    )


def test_a_notify_names_operators_by_id_membership_or_role() -> None:
    assert names(f"operator:{OP}", _caller(OP), INBOX)
    assert not names(f"operator:{OP}", _caller("other"), INBOX)
    assert names("inbox_members", _caller("a", inboxes=(INBOX,)), INBOX)
    # seeing every inbox does not make one a member
    assert not names("inbox_members", _caller("a", every=True), INBOX)
    assert names("role:supervisor", _caller("a", roles=("agent", "supervisor")), INBOX)
    assert not names("role:supervisor", _caller("a", roles=("agent",)), INBOX)
    assert not names("everyone", _caller("a", roles=("everyone",)), INBOX)

    env = events_pb2.EventEnvelope(
        event_id="0190f0d2-0000-7000-8000-000000000001", type="ticket.rule_actions"
    )
    env.rule_actions.ticket.CopyFrom(_ticket())
    env.rule_actions.trigger = "new_ticket"
    env.rule_actions.notifies.add(
        rule_id="r1", rule_name="一", to=["role:supervisor"], message="見て"
    )
    env.rule_actions.notifies.add(
        rule_id="r2", rule_name="二", to=[f"operator:{OP}"], message="急ぎ"
    )
    both = rule_notifications(env, _caller(OP, roles=("supervisor",)))
    assert [(n["kind"], n["rule"]["name"], n["message"]) for n in both] == [
        ("rule", "一", "見て"),
        ("rule", "二", "急ぎ"),
    ]
    assert len({n["event_id"] for n in both}) == 2  # a toast each
    assert rule_notifications(env, _caller("someone", roles=("agent",))) == []
