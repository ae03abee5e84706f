"""Replies through channels (issue 21) on the real stack: a customer writes through an API
channel (its signed inbound endpoint) and gets a ticket like a mail's; an operator answers
it in the normal reply path — draft, reply lock, pre-send checks, `POST /drafts/{id}/send`
— and the reply reaches the channel's webhook peer (signed, as plain text, with the
operator's name) instead of an SMTP server, and is filed in the ticket as sent. A reply
to mailboxes and a conversation together is refused; a closed reply window is refused
with 409 `reply_window_closed` (approved after it closed: the send fails with that
reason); a trainee's reply waits for approval, then goes; a
scheduled reply goes at its time; a routing rule on channel "api" routes the ticket;
per-channel capacity holds API tickets;
reports count it like mail; a notification and a satisfaction survey go through the
channel as text with their links; no automatic reply goes to it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from services.runtime import signing
from tests.e2e.test_access import operator_token
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_assignment import _by_operator, _presence, _strategy, _team, _tickets
from tests.e2e.test_compose import mail_ticket
from tests.e2e.test_metrics import scrape, value
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.e2e.test_outbound_settings import _auto_reply, _template
from tests.e2e.test_rule_actions import Receiver, receiver
from tests.e2e.test_surveys import survey_on
from tests.helpers import Tenant, api_call, api_get, eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e

AGENT_NAME = "佐藤 花子"


@dataclass
class Bridge:
    """A tenant with an API channel whose webhook is `peer`, and its operators."""

    stack: Stack
    tenant: Tenant
    admin: str
    agent: str
    channel: dict[str, Any]
    secret: str
    peer: Receiver

    async def says(self, conversation: str, text: str, key: str = "") -> dict[str, Any]:
        """The customer's message through the channel's signed inbound endpoint."""
        body = json.dumps(
            {
                "messages": [
                    {
                        "id": key or uuid.uuid4().hex,
                        "conversation": conversation,
                        "sender": {"id": f"user-{conversation}", "name": "山田 太郎"},
                        "text": text,
                    }
                ]
            },
            ensure_ascii=False,
        ).encode()
        stamp = int(time.time())
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{self.stack.gateway_url}/api/v1/channel-hooks/"
                f"{self.channel['public_key']}/messages",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    signing.TIMESTAMP_HEADER: str(stamp),
                    signing.SIGNATURE_HEADER: signing.signature(self.secret, stamp, body),
                },
            ) as resp:
                assert resp.status == 202, await resp.text()
                [accepted] = (await resp.json())["accepted"]
                return dict(accepted)

    async def ticket(self, tag: str, token: str = "") -> dict[str, Any]:
        """The ticket whose subject holds `tag` (the first words of the conversation)."""

        async def found() -> Any:
            code, body = await api_get(self.stack, token or self.agent, "/api/v1/tickets?limit=200")
            assert code == 200, body
            return next((t for t in body["items"] if tag in t["subject"]), None)

        got: dict[str, Any] = await eventually(found, timeout=30)
        return got

    async def window(self, seconds: int) -> dict[str, Any]:
        """The channel's reply window set to `seconds` (the channel as changed)."""
        code, changed, _ = await call(
            self.stack,
            "PATCH",
            f"/api/v1/channels/{self.channel['id']}",
            {"api": {"webhook_url": self.peer.url, "reply_window_s": seconds}},
            token=self.admin,
        )
        assert code == 200, changed
        return dict(changed)

    async def posted(self, conversation: str) -> list[dict[str, Any]]:
        """What the webhook peer received for `conversation`, as JSON."""
        out = []
        for _headers, raw in self.peer.got:
            body = json.loads(raw)
            if body.get("conversation") == conversation:
                out.append(body)
        return out


@asynccontextmanager
async def open_bridge(
    stack: Stack, tenant: Tenant, admin: str, agent: str
) -> AsyncIterator[Bridge]:
    """An API channel of the tenant's inbox whose webhook is a local receiver."""
    async with receiver(200) as peer:
        code, channel, _ = await call(
            stack,
            "POST",
            "/api/v1/channels",
            {
                "kind": "api",
                "inbox_id": tenant.inbox_id,
                "name": "Messenger bridge",
                "api": {"webhook_url": peer.url},
            },
            token=admin,
        )
        assert code == 201, channel
        code, rotated, _ = await call(
            stack, "POST", f"/api/v1/channels/{channel['id']}/secret", token=admin
        )
        assert code == 200, rotated
        yield Bridge(stack, tenant, admin, agent, rotated["channel"], rotated["secret"], peer)


@pytest.fixture
async def bridge(stack: Stack) -> AsyncIterator[Bridge]:
    tenant, admin = await admin_of(stack)
    agent = await operator_token(stack, admin, tenant, roles=["agent"], display_name=AGENT_NAME)
    async with open_bridge(stack, tenant, admin, agent) as b:
        yield b


async def channel_draft(
    b: Bridge, ticket: dict[str, Any], token: str, **fields: Any
) -> tuple[dict[str, Any], int]:
    """A reply draft on the channel ticket (addressed by default) with a mail signature
    and the quote kept — which a channel reply leaves out — saved with `fields`."""
    fields = {"body_text": "", "signature_text": "Help desk\nhelp@example.com", **fields}
    return await reply_draft(b.stack, b.tenant, token, ticket, include_quote=True, **fields)


async def send(
    b: Bridge, token: str, draft_id: str, fence: int, **body: Any
) -> tuple[int, dict[str, Any]]:
    """Sent acknowledging no warning: a channel reply has none of mail's."""
    return await send_draft(b.stack, token, draft_id, fence, acknowledged_warnings=[], **body)


async def test_an_operator_s_reply_reaches_the_webhook_as_text_and_is_filed_as_sent(
    bridge: Bridge, smtp_peer: SmtpPeer
) -> None:
    b = bridge
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    accepted = await b.says(conversation, f"注文 {tag} が届きません")
    ticket = await b.ticket(tag)
    code, full, _ = await call(b.stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=b.agent)
    assert code == 200 and [m["channel"] for m in full["messages"]] == ["api"], full
    draft, fence = await channel_draft(
        b,
        ticket,
        b.agent,
        subject="",  # a channel reply needs none
        body_html=f"<p>ご不便をおかけしています。<strong>本日発送</strong>しました [{tag}]。</p>",
    )
    address = f"{accepted['conversation_id']}@api.channels.invalid"
    [to] = draft["current"]["to"]  # the conversation, addressed by default
    assert address in to.lower()
    # the preview is the text the customer will read: no signature, no quote
    code, preview, _ = await call(
        b.stack, "GET", f"/api/v1/drafts/{draft['id']}/preview", token=b.agent
    )
    assert code == 200, preview
    assert not preview["html"] and "本日発送" in preview["text"]
    assert "Help desk" not in preview["text"] and "届きません" not in preview["text"]

    code, item = await send(b, b.agent, draft["id"], fence, status_after="pending")
    assert code == 201, item  # no warning to acknowledge: no subject is no problem here
    assert item["route"] == "channel:api"
    done = await settled(b.stack, b.agent, item["id"], "sent", "failed")
    assert done["state"] == "sent", done

    [hook] = await eventually(lambda: b.posted(conversation))
    assert hook["text"] == f"ご不便をおかけしています。本日発送しました [{tag}]。"
    assert hook["author"]["name"] == AGENT_NAME
    assert hook["ticket_id"] == ticket["id"] and hook["channel_id"] == b.channel["id"]
    [(headers, raw)] = [(h, r) for h, r in b.peer.got if json.loads(r) == hook]
    stamp = headers[signing.TIMESTAMP_HEADER]
    assert signing.verify(b.secret, stamp, raw, headers[signing.SIGNATURE_HEADER])
    assert not [r for r in smtp_peer.received if r.message_id == item["message_id"]]

    async def filed() -> Any:
        _c, t, _ = await call(b.stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=b.agent)
        sent = [m for m in t["messages"] if m["channel"] == "sent"]
        return t if sent and t["status"] == "pending" and t["lock"] is None else None

    await eventually(filed, timeout=20)
    code, conv, _ = await call(
        b.stack, "GET", f"/api/v1/tickets/{ticket['id']}/conversation", token=b.agent
    )
    assert code == 200, conv

    # the customer answers: the same ticket; a second reply goes the same way
    await b.says(conversation, "ありがとうございます")

    async def answered() -> Any:
        _c, t, _ = await call(b.stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=b.agent)
        return t if t["message_count"] >= 3 else None

    await eventually(answered, timeout=20)


async def test_a_reply_whose_delivery_dies_shows_bounced_until_a_retry_delivers_it(
    bridge: Bridge,
) -> None:
    """The webhook keeps failing: the reply, `sent` once the channel took it, becomes
    `bounced` with the reason when its delivery is dead (the operator sees the customer
    did not get it); an administrator's retry that delivers it makes it `sent` again."""
    b = bridge
    b.peer.answers = [503] * 50
    attempts = "switchboard_channel_delivery_attempts_total"
    before = await scrape(b.stack, "ingestion")
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    await b.says(conversation, f"返品 {tag} の件")
    ticket = await b.ticket(tag)
    draft, fence = await channel_draft(
        b, ticket, b.agent, subject="", body_html="<p>承知しました。</p>"
    )
    code, item = await send(b, b.agent, draft["id"], fence)
    assert code == 201, item
    bounced = await settled(b.stack, b.agent, item["id"], "bounced", timeout=30)
    assert bounced["bounce"].startswith("channel delivery failed (api, 3 attempts): HTTP 503")
    assert len(await b.posted(conversation)) == 3
    # on-call sees it: two attempts retried, one dead (other tests' deliveries may add)
    after = await scrape(b.stack, "ingestion")
    for outcome, n in (("retrying", 2), ("dead", 1)):
        grew = value(after, attempts, kind="api", outcome=outcome) - value(
            before, attempts, kind="api", outcome=outcome
        )
        assert grew >= n, (outcome, grew)

    async def audited(action: str) -> Any:
        code, trail, _ = await call(
            b.stack, "GET", f"/api/v1/tickets/{ticket['id']}/audit", token=b.agent
        )
        assert code == 200, trail
        return [e for e in trail["items"] if e["action"] == action] or None

    await eventually(lambda: audited("send.bounced"), timeout=15)

    b.peer.answers = [200]
    code, dead, _ = await call(
        b.stack, "GET", "/api/v1/channel-deliveries?state=dead", token=b.admin
    )
    assert code == 200, dead
    [letter] = [d for d in dead["deliveries"] if d["send_id"] == item["id"]]
    code, retried, _ = await call(
        b.stack, "POST", f"/api/v1/channel-deliveries/{letter['id']}/retry", token=b.admin
    )
    assert code == 200, retried
    again = await settled(b.stack, b.agent, item["id"], "sent", timeout=20)
    assert not again["bounce"], again
    assert len(await b.posted(conversation)) == 4
    await eventually(lambda: audited("send.delivered"), timeout=15)


async def test_a_reply_to_a_conversation_and_a_mailbox_is_refused(bridge: Bridge) -> None:
    b = bridge
    tag = uuid.uuid4().hex[:8]
    await b.says(f"conv-{tag}", f"質問 {tag}")
    ticket = await b.ticket(tag)
    draft, fence = await channel_draft(
        b, ticket, b.agent, body_text="はい。", cc=["boss@example.com"]
    )
    code, err = await send(b, b.agent, draft["id"], fence)
    assert code == 409, err
    assert err["error"]["code"] == "channel_mixed_recipients"
    assert err["error"]["field"] == "to" and "boss@example.com" in err["error"]["message"]
    assert await b.posted(f"conv-{tag}") == []


async def trainee_and_supervisor(b: Bridge, trainee_name: str) -> tuple[str, str]:
    """A trainee of the tenant (whose replies need approval) and a supervisor's tokens."""
    trainee = await operator_token(
        b.stack, b.admin, b.tenant, roles=["trainee"], display_name=trainee_name
    )
    supervisor = await operator_token(
        b.stack, b.admin, b.tenant, roles=["agent", "supervisor"], display_name="上長"
    )
    return trainee, supervisor


async def approve_and_send(b: Bridge, supervisor: str, req: dict[str, Any]) -> dict[str, Any]:
    code, decided, _ = await call(
        b.stack,
        "POST",
        f"/api/v1/approvals/{req['id']}/decisions",
        {"verdict": "approve_and_send", "stage": req["stage"], "revision": req["revision"]},
        token=supervisor,
    )
    assert code == 200, decided
    return dict(decided)


async def test_a_trainee_s_reply_waits_for_approval_then_goes_through_the_channel(
    bridge: Bridge,
) -> None:
    b = bridge
    trainee, supervisor = await trainee_and_supervisor(b, "研修 太郎")
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    await b.says(conversation, f"返金 {tag} について")
    ticket = await b.ticket(tag, trainee)
    draft, fence = await channel_draft(b, ticket, trainee, body_text=f"明日返金します [{tag}]")
    code, err = await send(b, trainee, draft["id"], fence)
    assert code == 403 and err["error"]["code"] == "approval_required", err
    code, req, _ = await call(
        b.stack,
        "POST",
        f"/api/v1/drafts/{draft['id']}/approval",
        {"note": "初めてのチャット返信です", "status_after": "pending"},
        token=trainee,
    )
    assert code == 201, req
    assert await b.posted(conversation) == []
    await approve_and_send(b, supervisor, req)
    [hook] = await eventually(lambda: b.posted(conversation), timeout=30)
    assert hook["text"] == f"明日返金します [{tag}]"
    assert hook["author"]["name"] == "研修 太郎"  # the send is the author's


async def test_a_scheduled_reply_goes_at_its_time(bridge: Bridge) -> None:
    b = bridge
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    await b.says(conversation, f"営業時間 {tag}")
    ticket = await b.ticket(tag)
    draft, fence = await channel_draft(b, ticket, b.agent, body_text=f"9 時からです [{tag}]")
    at = datetime.now(UTC) + timedelta(seconds=8)
    code, item = await send(b, b.agent, draft["id"], fence, send_at=at.isoformat())
    assert code == 201 and item["state"] == "scheduled", item
    code, lockstate, _ = await call(
        b.stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=b.agent
    )
    assert lockstate["lock"] is None  # a scheduled send frees the reply lock at once
    assert await b.posted(conversation) == []
    done = await settled(b.stack, b.agent, item["id"], "sent", "failed", timeout=30)
    assert done["state"] == "sent", done  # handed to the channel; its webhook follows
    [hook] = await eventually(lambda: b.posted(conversation))
    assert hook["text"] == f"9 時からです [{tag}]"
    sent_at = datetime.fromisoformat(done["sent_at"].replace("Z", "+00:00"))
    assert sent_at >= at - timedelta(seconds=1)


async def test_a_rule_on_channel_api_routes_the_ticket_and_reports_count_it(
    bridge: Bridge,
) -> None:
    b = bridge
    rule = {
        "name": "API窓口",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "channel", "operator": "equals", "value": "api"}],
        },
        "actions": [{"type": "add_label", "value": "メッセンジャー"}],
    }
    code, made, _ = await call(b.stack, "POST", "/api/v1/rules", rule, token=b.admin)
    assert code == 201, made
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    await b.says(conversation, f"在庫 {tag} はありますか")

    async def labelled() -> Any:
        t = await b.ticket(tag)
        return t if "メッセンジャー" in t["labels"] else None

    ticket = await eventually(labelled, timeout=30)
    draft, fence = await channel_draft(b, ticket, b.agent, body_text="ございます。")
    code, item = await send(b, b.agent, draft["id"], fence, status_after="resolved")
    assert code == 201, item
    await settled(b.stack, b.agent, item["id"], "sent")
    today = datetime.now(UTC).date().isoformat()

    async def counted() -> Any:
        code, body = await api_get(
            b.stack, b.admin, f"/api/v1/reports/volume?from={today}&to={today}&tz=UTC"
        )
        assert code == 200, body
        return body if body["totals"] == {"received": 1, "sent": 1} else None

    await eventually(counted, timeout=40, every=0.5)

    async def timed() -> Any:
        code, body = await api_get(
            b.stack, b.admin, f"/api/v1/reports/response_times?from={today}&to={today}&tz=UTC"
        )
        assert code == 200, body
        return body if body["totals"]["first_reply_count"] == 1 else None

    await eventually(timed, timeout=40, every=0.5)


async def test_a_notification_to_a_conversation_goes_through_the_channel(bridge: Bridge) -> None:
    b = bridge
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    accepted = await b.says(conversation, f"発送通知 {tag} を希望")
    code, made, _ = await call(
        b.stack,
        "POST",
        "/api/v1/notifications",
        {
            "idempotency_key": f"ship-{tag}",
            "inbox_id": b.tenant.inbox_id,
            "to": {"address": f"{accepted['conversation_id']}@api.channels.invalid"},
            "subject": "発送しました",
            "body": "追跡: https://shop.example/t/{{var.no}}",
            "variables": {"no": tag},
        },
        token=b.admin,
    )
    assert code == 202, made  # accepted: queued
    [hook] = await eventually(lambda: b.posted(conversation), timeout=30)
    assert hook["text"] == f"発送しました\n\n追跡: https://shop.example/t/{tag}"  # titled


async def test_a_resolved_channel_ticket_s_survey_goes_through_the_channel_and_no_auto_reply(
    bridge: Bridge, smtp_peer: SmtpPeer
) -> None:
    """The inbox answers every mail automatically and surveys every resolution: the
    mail customer gets the acknowledgement, the channel's customer never does; the
    channel ticket's survey reaches the webhook as text with its rating links."""
    b = bridge
    tpl = await _template(b.stack, b.admin, "【受付】{{original.subject}}", "受け付けました。")
    await _auto_reply(b.stack, b.admin, b.tenant.inbox_id, tpl)
    await survey_on(b.stack, b.admin, b.tenant.inbox_id)
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    await b.says(conversation, f"解約 {tag} したい")
    ticket = await b.ticket(tag)
    subject = f"メールの問い合わせ {tag}"
    await mail_ticket(b.stack, b.tenant, b.agent, subject)

    async def acked() -> Any:
        return [r for r in smtp_peer.received if subject in str(r.message["Subject"])]

    await eventually(acked, timeout=20)  # the mail got its acknowledgement by now
    draft, fence = await channel_draft(b, ticket, b.agent, body_text=f"承りました [{tag}]")
    code, item = await send(b, b.agent, draft["id"], fence, status_after="resolved")
    assert code == 201, item
    await settled(b.stack, b.agent, item["id"], "sent")

    async def surveyed() -> Any:
        hooks = await b.posted(conversation)
        return hooks if len(hooks) == 2 else None

    reply, survey = await eventually(surveyed, timeout=30)
    assert reply["text"] == f"承りました [{tag}]"
    assert "/survey/" in survey["text"] and "?rating=5" in survey["text"]
    assert survey["author"]["name"] == "Help"  # the inbox, not an operator
    code, listed, _ = await call(
        b.stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=b.admin
    )
    assert code == 200, listed
    kinds = sorted(s["kind"] for s in listed["items"])
    assert kinds == ["reply", "survey"]  # no automatic reply to the conversation


async def test_a_reply_after_the_reply_window_is_refused_until_the_customer_writes_again(
    bridge: Bridge,
) -> None:
    """An API channel bridging an app that allows answers only for a while after the
    customer's last message (here 8 s): a reply queued for after the window, or sent
    once it closed, is refused with 409 `reply_window_closed` naming when it closed; the
    customer's next message opens it again and the same draft goes (a scheduled reply
    cannot be moved past the window)."""
    b = bridge
    window_s = 8
    changed = await b.window(window_s)
    assert changed["api"]["reply_window_s"] == window_s
    assert changed["capabilities"]["reply_window_s"] == window_s
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    said = time.monotonic()
    await b.says(conversation, f"返品 {tag} の件")
    ticket = await b.ticket(tag)
    draft, fence = await channel_draft(b, ticket, b.agent, body_text=f"承知しました [{tag}]")
    later = datetime.now(UTC) + timedelta(minutes=5)
    code, err = await send(b, b.agent, draft["id"], fence, send_at=later.isoformat())
    assert code == 409, err
    assert (err["error"]["code"], err["error"]["field"]) == ("reply_window_closed", "to")
    assert "reply window closed at" in err["error"]["message"]

    await asyncio.sleep(max(0.0, window_s + 0.5 - (time.monotonic() - said)))
    code, err = await send(b, b.agent, draft["id"], fence)
    assert code == 409 and err["error"]["code"] == "reply_window_closed", err
    code, conv, _ = await call(
        b.stack, "GET", f"/api/v1/tickets/{ticket['id']}/conversation", token=b.agent
    )
    assert code == 200, conv
    closed_at = datetime.fromisoformat(conv["reply_window_ends_at"].replace("Z", "+00:00"))
    assert closed_at.strftime("%Y-%m-%d %H:%M UTC") in err["error"]["message"]
    code, still, _ = await call(b.stack, "GET", f"/api/v1/drafts/{draft['id']}", token=b.agent)
    assert still["state"] == "open"  # nothing was queued
    assert await b.posted(conversation) == []

    await b.says(conversation, "まだですか？")  # the window opens again
    soon = datetime.now(UTC) + timedelta(seconds=3)
    code, item = await send(b, b.agent, draft["id"], fence, send_at=soon.isoformat())
    assert code == 201 and item["state"] == "scheduled", item
    # moved past the window: refused, and it keeps its time
    code, moved, _ = await call(
        b.stack,
        "PUT",
        f"/api/v1/sends/{item['id']}/schedule",
        {"send_at": later.isoformat()},
        token=b.agent,
    )
    assert code == 409 and moved["error"]["code"] == "reply_window_closed", moved
    await settled(b.stack, b.agent, item["id"], "sent")
    [hook] = await eventually(lambda: b.posted(conversation))
    assert hook["text"] == f"承知しました [{tag}]"


async def test_an_approval_after_the_reply_window_closed_fails_the_send_with_the_reason(
    bridge: Bridge,
) -> None:
    """A trainee's channel reply approved (approve and send) only after the conversation's
    reply window closed: the hand-over queues it and its delivery refuses it, so the
    ticket shows a failed send with `reply_window_closed` and the draft opens again for
    its author — not a hand-over dropped with a line in a log."""
    b = bridge
    window_s = 6
    await b.window(window_s)
    trainee, supervisor = await trainee_and_supervisor(b, "研修 次郎")
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    said = time.monotonic()
    await b.says(conversation, f"解約 {tag} の件")
    ticket = await b.ticket(tag, trainee)
    draft, _fence = await channel_draft(b, ticket, trainee, body_text=f"解約を承りました [{tag}]")
    code, req, _ = await call(
        b.stack, "POST", f"/api/v1/drafts/{draft['id']}/approval", {}, token=trainee
    )
    assert code == 201, req
    await asyncio.sleep(max(0.0, window_s + 0.5 - (time.monotonic() - said)))
    decided = await approve_and_send(b, supervisor, req)
    assert decided["state"] == "approved", decided

    async def failed() -> Any:
        code, page, _ = await call(
            b.stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=trainee
        )
        assert code == 200, page
        return [s for s in page["items"] if s["state"] == "failed"]

    [item] = await eventually(failed, timeout=30)
    assert item["last_reply"]["message"].startswith("reply_window_closed: "), item
    assert "reply window closed at" in item["last_reply"]["message"]

    async def reopened() -> Any:
        _c, d, _ = await call(b.stack, "GET", f"/api/v1/drafts/{draft['id']}", token=trainee)
        return d["state"] == "open"

    await eventually(reopened, timeout=20)

    async def audited() -> Any:
        code, page, _ = await call(
            b.stack, "GET", f"/api/v1/tickets/{ticket['id']}/audit", token=trainee
        )
        assert code == 200, page
        return [
            e
            for e in page["items"]
            if e["action"].startswith("send.") and "reply_window_closed" in (e["comment"] or "")
        ]

    await eventually(audited, timeout=20)
    assert await b.posted(conversation) == []


async def test_a_scheduled_reply_whose_channel_was_turned_off_meanwhile_fails_with_the_reason(
    bridge: Bridge,
) -> None:
    b = bridge
    tag = uuid.uuid4().hex[:8]
    conversation = f"conv-{tag}"
    await b.says(conversation, f"予約 {tag} の確認")
    ticket = await b.ticket(tag)
    draft, fence = await channel_draft(b, ticket, b.agent, body_text="確認しました。")
    at = datetime.now(UTC) + timedelta(seconds=6)
    code, item = await send(b, b.agent, draft["id"], fence, send_at=at.isoformat())
    assert code == 201 and item["state"] == "scheduled", item
    code, off, _ = await call(
        b.stack, "PATCH", f"/api/v1/channels/{b.channel['id']}", {"enabled": False}, token=b.admin
    )
    assert code == 200 and off["enabled"] is False, off
    done = await settled(b.stack, b.agent, item["id"], "sent", "failed", timeout=30)
    assert done["state"] == "failed", done
    assert "turned off" in done["last_reply"]["message"]
    assert await b.posted(conversation) == []

    async def reopened() -> Any:
        _c, d, _ = await call(b.stack, "GET", f"/api/v1/drafts/{draft['id']}", token=b.agent)
        return d["state"] == "open"

    await eventually(reopened, timeout=20)  # for the operator to decide what to do


async def test_per_channel_capacity_holds_api_tickets_as_it_holds_mail(stack: Stack) -> None:
    """Least loaded, both operators online: ann may hold one API ticket, bob none. Of two
    conversations ann gets one, the other waits (bob is free, but not for this channel);
    when ann resolves hers, the waiting one is hers."""
    team = await _team(stack, ("ann", "bob"))
    for name, limit in (("ann", 1), ("bob", 0)):
        code, saved = await api_call(
            stack,
            team.admin,
            "PUT",
            f"/api/v1/operators/{team.ops[name][0]}/routing",
            {"capacity": None, "channel_capacity": {"api": limit}, "languages": ["ja"]},
        )
        assert code == 200 and saved["channel_capacity"] == {"api": limit}, saved
        await _presence(stack, team, name, "online")
    await _strategy(stack, team, strategy="least_loaded")
    ann_id, ann = team.ops["ann"]
    async with open_bridge(stack, team.tenant, team.admin, ann) as b:
        tag = uuid.uuid4().hex[:8]
        await b.says(f"one-{tag}", f"{tag} 一件目")
        await b.says(f"two-{tag}", f"{tag} 二件目")

        async def one_given_one_waiting() -> Any:
            found = await _tickets(stack, team, tag)
            given = _by_operator(team, found)
            return found if len(found) == 2 and given == {"ann": 1, "-": 1} else None

        found = await eventually(one_given_one_waiting, timeout=40, every=0.3)
        [hers] = [t for t in found if t["assignee"]]
        code, body = await api_call(
            stack, ann, "PATCH", f"/api/v1/tickets/{hers['id']}", {"status": "resolved"}
        )
        assert code == 200, body

        async def the_other_is_hers() -> Any:
            rest = await _tickets(stack, team, tag)  # (open ones only)
            return rest if len(rest) == 1 and rest[0]["assignee"] else None

        [other] = await eventually(the_other_is_hers, timeout=40, every=0.3)
        assert other["assignee"]["id"] == ann_id and other["id"] != hers["id"]
