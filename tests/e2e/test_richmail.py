"""HTML replies (issue 16, CMP-5) on the running system, to the test SMTP peer: the HTML an
operator saves is sanitised at once, the mail that arrives is multipart/alternative with a
text alternative made from the HTML and a multipart/related holding the pasted image under
the Content-ID the HTML names; an inbox that sends plain text only refuses HTML."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk, mail_ticket
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.helpers import Tenant
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082"
)


async def upload_image(stack: Stack, token: str, draft_id: str, fence: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/drafts/{draft_id}/attachments"
            f"?filename=pasted.png&inline=true&fence={fence}",
            data=PNG,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
        ) as r:
            assert r.status == 201, await r.text()
            image: dict[str, Any] = await r.json()
    assert image["inline"] and image["content_id"]
    return image


def saved_fields(tenant: Tenant, draft: dict[str, Any], fence: int) -> dict[str, Any]:
    cur = draft["current"]
    return {
        "fence": fence,
        "from_address": tenant.address,
        "from_name": "Help",
        "to": cur["to"],
        "subject": cur["subject"],
        "body_text": cur["body_text"],
        "include_quote": False,
        "attachment_ids": [a["id"] for a in cur["attachments"]],
    }


async def test_an_html_reply_arrives_with_its_text_alternative_and_inline_image(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Broken lid {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket, body="")
    image = await upload_image(stack, agent, draft["id"], fence)
    html = (
        "<p>Dear customer, <strong>sorry</strong> for the "
        '<span style="color: #e03131; position: fixed">broken</span> lid.</p>'
        "<ul><li>a new lid</li><li>a voucher</li></ul>"
        f'<p><img src="cid:{image["content_id"]}" alt="the new lid" onerror="alert(1)"></p>'
        '<p><img src="https://tracker.example/open.gif"></p>'
        "<script>alert(2)</script>"
        '<a href="javascript:alert(3)">click</a>'
    )
    base = saved_fields(tenant, draft, fence)
    code, saved, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {**base, "body_text": "", "body_html": html, "attachment_ids": [image["id"]]},
        token=agent,
    )
    assert code == 200, saved
    stored = saved["current"]["body_html"]  # sanitised when saved, not only when sent
    assert "<strong>sorry</strong>" in stored and 'style="color:#e03131"' in stored
    for gone in ("script", "onerror", "javascript", "tracker.example", "position"):
        assert gone not in stored, gone

    code, item = await send_draft(stack, agent, draft["id"], fence)
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")
    [got] = [r for r in smtp_peer.received if r.message_id == item["message_id"]]
    msg = got.message
    assert msg.get_content_type() == "multipart/alternative"
    text_part, related = msg.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image_part = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    sent_html = html_part.get_content()
    assert "<strong>sorry</strong>" in sent_html and "<ul><li>a new lid</li>" in sent_html
    assert "<script" not in sent_html and "alert" not in sent_html
    assert image_part.get_content_type() == "image/png"
    assert image_part["Content-ID"] == f"<{image['content_id']}>"
    assert f'src="cid:{image["content_id"]}"' in sent_html
    assert image_part.get_content() == PNG
    text = text_part.get_content()
    assert "Dear customer, sorry for the broken lid." in text
    assert "* a new lid" in text and "<strong>" not in text
    for part in msg.walk():
        for name, value in part.items():
            assert not any(c in str(value) for c in "\r\n\0"), name


async def test_an_image_that_is_not_an_inline_part_of_the_draft_is_refused(stack: Stack) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Photo {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket)
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {
            **saved_fields(tenant, draft, fence),
            "body_html": '<p>see <img src="cid:someone-elses@switchboard"></p>',
        },
        token=agent,
    )
    assert code == 400 and body["error"]["field"] == "body_html", body
    code, now, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=agent)
    assert now["current"]["revision"] == draft["current"]["revision"]


async def test_an_inbox_that_sends_plain_text_only_refuses_html(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    code, inbox, _ = await call(
        stack,
        "PATCH",
        f"/api/v1/inboxes/{tenant.inbox_id}",
        {"plain_text_only": True},
        token=admin,
    )
    assert code == 200 and inbox["plain_text_only"] is True, inbox
    code, listed, _ = await call(stack, "GET", "/api/v1/inboxes", token=agent)
    assert [i["plain_text_only"] for i in listed["items"] if i["id"] == tenant.inbox_id] == [True]

    ticket = await mail_ticket(stack, tenant, agent, f"Plain please {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket, body="Plain words only.")
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {**saved_fields(tenant, draft, fence), "body_html": "<p>Plain <b>words</b></p>"},
        token=agent,
    )
    assert code == 400 and body["error"]["field"] == "body_html", body
    assert "plain text" in body["error"]["message"]

    code, item = await send_draft(stack, agent, draft["id"], fence)
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")
    [got] = [r for r in smtp_peer.received if r.message_id == item["message_id"]]
    assert got.message.get_content_type() == "text/plain"
    assert "Plain words only." in got.message.get_content()


async def test_an_html_signature_goes_into_the_html_part_and_its_text_into_the_text(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    code, _, _ = await call(
        stack,
        "PUT",
        "/api/v1/signatures",
        {
            "inbox_id": tenant.inbox_id,
            "body_text": "--\n{{inbox.name}} desk",
            "body_html": '<p>--<br><b style="color: #1971c2">{{inbox.name}}</b> desk</p>'
            "<script>alert(1)</script>",
        },
        token=admin,
    )
    assert code == 200
    ticket = await mail_ticket(stack, tenant, agent, f"Signed {uuid.uuid4().hex[:6]}")
    signed = '<p>--<br><b style="color:#1971c2">Help</b> desk</p>'
    draft, fence = await reply_draft(
        stack,
        tenant,
        agent,
        ticket,
        body="",
        body_html="<p>Thank you.</p>",
        signature_text="--\nHelp desk",
        signature_html=signed + '<img src="https://t.example/x.gif">',
    )
    assert draft["current"]["signature_html"] == signed  # sanitised when saved
    # the draft started with the signature's HTML, rendered and sanitised
    code, first, _ = await call(
        stack, "GET", f"/api/v1/drafts/{draft['id']}?revision=1", token=agent
    )
    assert code == 200, first
    assert first["current"]["signature_text"] == "--\nHelp desk"
    assert first["current"]["signature_html"] == signed
    code, item = await send_draft(stack, agent, draft["id"], fence)
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")
    [got] = [r for r in smtp_peer.received if r.message_id == item["message_id"]]
    html = got.message.get_body(("html",)).get_content()
    text = got.message.get_body(("plain",)).get_content()
    assert '<b style="color:#1971c2">Help</b> desk' in html and "script" not in html
    assert "Thank you." in text and "--\r\nHelp desk" in text
