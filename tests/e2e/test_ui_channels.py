"""The channels in a real browser (issue 21): every ticket in the list and every message of
the timeline carries its channel's icon with an accessible name (mail, phone, API
channel…); an administrator makes a chat widget and copies the tag to paste; a message
that comes in through an API channel appears at once in the open ticket as a chat bubble —
once, also after the timeline re-reads — and the operator answers from the compact
composer (Enter sends), which the channel delivers to the integration's webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from services.devstack.infra import free_port
from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import PASSWORD, mail_in, operator, row
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_tickets_and_messages_show_their_channel_icon_with_an_accessible_name(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    by_mail = f"Mail {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, by_mail)
    by_phone = f"Phone {uuid.uuid4().hex[:6]}"
    code, memo, _ = await call(
        stack,
        "POST",
        "/api/v1/memos",
        {"inbox_id": tenant.inbox_id, "subject": by_phone, "body": "Called about the invoice"},
        token=admin,
    )
    assert code == 201, memo
    await ticket_by_subject(stack, admin, by_mail)
    ctx = await context(browser, "en")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(row(page, by_mail)).to_be_visible()
        await expect(row(page, by_mail).get_by_role("img", name="Mail")).to_be_visible()
        await expect(row(page, by_phone).get_by_role("img", name="Phone")).to_be_visible()
        await shot(page, "channels-list-icons")
        await row(page, by_phone).get_by_role("link").click()
        timeline = page.get_by_test_id("timeline")
        await expect(timeline.get_by_role("img", name="Phone")).to_be_visible()
        # no chat here: no composer
        await expect(page.get_by_test_id("chat-composer")).to_have_count(0)
    finally:
        await ctx.close()
    # in Japanese
    ctx = await context(browser, "ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(row(page, by_mail).get_by_role("img", name="メール")).to_be_visible()
        await expect(row(page, by_phone).get_by_role("img", name="電話")).to_be_visible()
    finally:
        await ctx.close()


class Webhook:
    """The integration's webhook: a local HTTP server that records what it is sent."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            self.got.append(await request.json())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    await hook.start()
    yield hook
    await hook.stop()


async def api_channel(
    stack: Stack, admin: str, inbox_id: str, webhook_url: str
) -> tuple[dict[str, Any], str]:
    """An API channel of the inbox with its signing secret: (channel, secret)."""
    code, channel, _ = await call(
        stack,
        "POST",
        "/api/v1/channels",
        {
            "kind": "api",
            "inbox_id": inbox_id,
            "name": "Bridge",
            "api": {"webhook_url": webhook_url},
        },
        token=admin,
    )
    assert code == 201, channel
    code, rotated, _ = await call(
        stack, "POST", f"/api/v1/channels/{channel['id']}/secret", token=admin
    )
    assert code == 200, rotated
    return channel, rotated["secret"]


async def post_signed(
    stack: Stack, channel: dict[str, Any], secret: str, conversation: str, text: str
) -> None:
    """A customer's message as the integration posts it (signed)."""
    body = json.dumps(
        {
            "messages": [
                {
                    "id": uuid.uuid4().hex,
                    "conversation": conversation,
                    "sender": {"id": conversation, "name": "Hanako"},
                    "text": text,
                }
            ]
        }
    ).encode()
    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/channel-hooks/{channel['public_key']}/messages",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Switchboard-Timestamp": ts,
                "X-Switchboard-Signature": f"v1={sig}",
            },
        ) as r:
            assert r.status == 202, await r.text()


async def test_an_api_channel_message_appears_live_and_the_operator_answers_from_the_composer(
    stack: Stack, browser: Browser, webhook: Webhook
) -> None:
    tenant, admin = await admin_of(stack)
    channel, secret = await api_channel(stack, admin, tenant.inbox_id, webhook.url)
    conversation = f"conv-{uuid.uuid4().hex[:6]}"
    first = f"Where is my order {uuid.uuid4().hex[:4]}?"
    await post_signed(stack, channel, secret, conversation, first)
    ticket = await ticket_by_subject(stack, admin, f"API: {first}")
    ctx = await context(browser, "en")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(row(page, first).get_by_role("img", name="API channel")).to_be_visible()
        await page.goto(f"{stack.gateway_url}/#/tickets/{ticket['id']}")
        timeline = page.get_by_test_id("timeline")
        await expect(timeline.get_by_text(first)).to_have_count(1)
        await expect(
            page.get_by_test_id("ticket-subject").get_by_role("img", name="API channel")
        ).to_be_visible()
        # the customer writes again: shown at once, and once — also after the re-read
        second = "It was due yesterday."
        await post_signed(stack, channel, secret, conversation, second)
        bubble = timeline.locator("[data-direction=in]").filter(has_text=second)
        await expect(bubble).to_have_count(1)
        await expect(timeline.get_by_test_id("chat-bubble").filter(has_text=second)).to_have_count(
            1
        )
        await expect(bubble).to_have_count(1)
        # the answer from the compact composer: Shift+Enter a new line, Enter sends
        box = page.get_by_test_id("chat-input")
        await box.fill("Sorry for the delay.")
        await box.press("Shift+Enter")
        await box.type("It ships today.")
        await box.press("Enter")
        await expect(box).to_have_value("")

        async def delivered() -> bool:
            return any("It ships today." in str(h.get("text")) for h in webhook.got)

        await eventually(delivered, timeout=30)
        [hook] = [h for h in webhook.got if "It ships today." in str(h.get("text"))]
        assert hook["conversation"] == conversation
        assert hook["text"].startswith("Sorry for the delay.\nIt ships today.")
        out = timeline.locator("[data-direction=out]").filter(has_text="It ships today.")
        await expect(out).to_have_count(1)
        await shot(page, "channels-api-conversation")
    finally:
        await ctx.close()


async def test_an_administrator_makes_a_chat_widget_and_copies_its_tag(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    ctx = await context(browser, "ja")
    await ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.gateway_url)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-inboxes")).to_be_visible()
        await page.goto(f"{stack.gateway_url}/#/admin/channels")
        await expect(page.get_by_role("heading", name="チャネル")).to_be_visible()
        await expect(page.get_by_test_id("channels-empty")).to_be_visible()
        await page.get_by_test_id("channel-new").click()
        await page.get_by_test_id("channel-name").fill("Shop chat")
        await page.get_by_test_id("channel-origins").fill("https://shop.example\nnot an origin")
        await page.get_by_test_id("channel-greeting-ja").fill("こんにちは！")
        await page.get_by_test_id("channel-greeting-en").fill("Hello!")
        await page.get_by_test_id("channel-save").click()
        # a bad origin is refused in the operator's words, nothing made
        await expect(page.get_by_test_id("channel-error")).to_contain_text("オリジン")
        code, listed, _ = await call(stack, "GET", "/api/v1/channels?kind=chat", token=admin)
        assert code == 200 and not (listed.get("channels") or listed.get("items")), listed
        await page.get_by_test_id("channel-origins").fill("https://shop.example")
        await page.get_by_test_id("channel-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("チャネルを作成しました。")
        card = page.get_by_test_id("channel").filter(has_text="Shop chat")
        snippet = card.get_by_test_id("channel-snippet")
        await expect(snippet).to_contain_text("<script src=")
        await expect(snippet).to_contain_text("/widget/")
        await expect(card.get_by_test_id("channel-origins-shown")).to_have_text(
            "許可するオリジン: https://shop.example"
        )
        await card.get_by_test_id("channel-snippet-copy").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text(
            "クリップボードにコピーしました。"
        )
        copied = await page.evaluate("navigator.clipboard.readText()")
        assert copied == await snippet.inner_text()
        assert (await page.evaluate("document.documentElement.scrollWidth")) <= 1280
        await shot(page, "channels-admin-chat-ja")
    finally:
        await ctx.close()
    code, listed, _ = await call(stack, "GET", "/api/v1/channels?kind=chat", token=admin)
    [made] = listed.get("channels") or listed.get("items")
    assert made["chat"]["allowed_origins"] == ["https://shop.example"]
    assert made["chat"]["greeting_ja"] == "こんにちは！"


async def test_a_trainee_s_chat_reply_from_the_composer_waits_for_approval(
    stack: Stack, browser: Browser, webhook: Webhook
) -> None:
    tenant, admin = await admin_of(stack)
    _, login = await operator(stack, admin, tenant, "Trainee", ["trainee"])
    channel, secret = await api_channel(stack, admin, tenant.inbox_id, webhook.url)
    conversation = f"conv-{uuid.uuid4().hex[:6]}"
    first = f"Can I return this {uuid.uuid4().hex[:4]}?"
    await post_signed(stack, channel, secret, conversation, first)
    ticket = await ticket_by_subject(stack, admin, f"API: {first}")
    ctx = await context(browser, "ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, login, PASSWORD)
        await expect(page.get_by_test_id("nav-inboxes")).to_be_visible()
        await page.goto(f"{stack.gateway_url}/#/tickets/{ticket['id']}")
        await expect(page.get_by_test_id("chat-send")).to_have_text("承認を依頼")
        box = page.get_by_test_id("chat-input")
        await box.fill("はい、30日以内なら返品できます。")
        await box.press("Enter")
        await expect(page.get_by_test_id("ticket-notice")).to_have_text(
            "返信は承認待ちです。承認されると送信されます。"
        )
        await expect(box).to_have_value("")
        code, listed, _ = await call(
            stack, "GET", f"/api/v1/tickets/{ticket['id']}/drafts", token=admin
        )
        assert code == 200, listed
        assert [d["state"] for d in listed["items"]] == ["in_approval"]
        assert listed["items"][0]["current"]["body_text"].startswith("はい、30日以内なら")
        await asyncio.sleep(1)
        assert webhook.got == []  # nothing went to the customer
    finally:
        await ctx.close()


async def test_an_administrator_rotates_an_api_channel_secret_and_retries_a_dead_delivery(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    failing = {"on": True}
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        if failing["on"]:
            return web.Response(status=500)
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    ctx = await context(browser, "en")
    await ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.gateway_url)
    page = await ctx.new_page()
    try:
        channel, _ = await api_channel(
            stack, admin, tenant.inbox_id, f"http://127.0.0.1:{port}/hook"
        )
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-inboxes")).to_be_visible()
        await page.goto(f"{stack.gateway_url}/#/admin/channels")
        await page.get_by_test_id("channels-tab-api").click()
        card = page.get_by_test_id("channel").filter(has_text="Bridge")
        await expect(card.get_by_test_id("channel-inbound-url")).to_contain_text(
            f"/api/v1/channel-hooks/{channel['public_key']}/messages"
        )
        # a new secret, shown once, and it works: a message signed with it is taken
        await card.get_by_test_id("channel-rotate").click()
        await page.get_by_test_id("channel-rotate-confirm").click()
        shown = card.get_by_test_id("channel-secret-once")
        await expect(shown).to_be_visible()
        secret = await shown.inner_text()
        assert len(secret) >= 16
        await expect(card.get_by_test_id("channel-secret")).to_contain_text(secret[-4:])
        conversation = f"conv-{uuid.uuid4().hex[:6]}"
        text = f"Dead letter {uuid.uuid4().hex[:4]}"
        await post_signed(stack, channel, secret, conversation, text)
        await page.reload()
        await page.get_by_test_id("channels-tab-api").click()
        await expect(page.get_by_test_id("channel-secret-once")).to_have_count(0)  # once

        # a reply the webhook refuses goes dead; the administrator sees it and retries
        ticket = await ticket_by_subject(stack, admin, f"API: {text}")
        code, draft, _ = await call(
            stack, "POST", f"/api/v1/tickets/{ticket['id']}/lock", token=admin
        )
        assert code in (200, 201), draft
        fence = draft["fence"]
        code, d, _ = await call(
            stack,
            "POST",
            f"/api/v1/tickets/{ticket['id']}/drafts",
            {"kind": "reply", "fence": fence, "include_quote": False},
            token=admin,
        )
        assert code == 201, d
        r = d["current"]
        code, saved, _ = await call(
            stack,
            "PUT",
            f"/api/v1/drafts/{d['id']}",
            {
                "fence": fence,
                "from_address": r["from_address"],
                "to": r["to"],
                "body_text": "We refund you.",
            },
            token=admin,
        )
        assert code == 200, saved
        code, sent, _ = await call(
            stack, "POST", f"/api/v1/drafts/{d['id']}/send", {"fence": fence}, token=admin
        )
        assert code == 201, sent
        await page.get_by_test_id("channels-tab-dead").click()
        dead = page.get_by_test_id("channel-delivery").filter(has_text="Bridge")
        await expect(dead).to_have_count(1, timeout=30000)
        await expect(dead).to_have_attribute("data-state", "dead")
        await shot(page, "channels-admin-dead-letters")
        failing["on"] = False
        await dead.get_by_test_id("channel-delivery-retry").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("Delivery queued again.")

        async def delivered() -> bool:
            return any(h.get("text", "").startswith("We refund you.") for h in got)

        await eventually(delivered, timeout=30)
        await expect(page.get_by_test_id("channel-deliveries-empty")).to_be_visible()
    finally:
        await ctx.close()
        await runner.cleanup()


WINDOW_S = 12  # long enough for a loaded machine to file the ticket and show it open


async def test_the_reply_window_is_shown_open_then_closed_and_a_late_reply_is_refused_in_words(
    stack: Stack, browser: Browser, webhook: Webhook
) -> None:
    tenant, admin = await admin_of(stack)
    code, channel, _ = await call(
        stack,
        "POST",
        "/api/v1/channels",
        {
            "kind": "api",
            "inbox_id": tenant.inbox_id,
            "name": "Bridge",
            "api": {"webhook_url": webhook.url, "reply_window_s": WINDOW_S},
        },
        token=admin,
    )
    assert code == 201, channel
    code, rotated, _ = await call(
        stack, "POST", f"/api/v1/channels/{channel['id']}/secret", token=admin
    )
    secret = rotated["secret"]
    ctx = await context(browser, "en")
    page = await ctx.new_page()
    try:
        # signed in before the customer writes: the window runs from their message
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-inboxes")).to_be_visible()
        conversation = f"conv-{uuid.uuid4().hex[:6]}"
        first = f"Quick question {uuid.uuid4().hex[:4]}"
        await post_signed(stack, channel, secret, conversation, first)
        ticket = await ticket_by_subject(stack, admin, f"API: {first}")
        await page.goto(f"{stack.gateway_url}/#/tickets/{ticket['id']}")
        banner = page.get_by_test_id("reply-window")
        await expect(banner).to_have_attribute("data-open", "true")
        await expect(banner).to_contain_text("Reply window: replies possible until")
        # it closes while the ticket is open
        await expect(banner).to_have_attribute("data-open", "false", timeout=(WINDOW_S + 10) * 1000)
        await expect(banner).to_contain_text("The reply window closed at")
        box = page.get_by_test_id("chat-input")
        await box.fill("Sorry for the wait.")
        await box.press("Enter")
        await expect(page.get_by_test_id("chat-error")).to_contain_text(
            "The reply window of this conversation has closed"
        )
        await expect(box).to_have_value("Sorry for the wait.")  # kept for later
        await shot(page, "channels-reply-window-closed")
        # the customer writes again: open again, and the reply goes
        await post_signed(stack, channel, secret, conversation, "Hello again")
        await expect(banner).to_have_attribute("data-open", "true", timeout=15000)
        await box.press("Enter")
        await expect(box).to_have_value("")

        async def delivered() -> bool:
            return any("Sorry for the wait." in str(h.get("text")) for h in webhook.got)

        await eventually(delivered, timeout=30)
    finally:
        await ctx.close()


async def test_a_line_channel_s_secret_and_token_are_write_only_and_its_webhook_url_is_given(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    secret, token = f"line-secret-{uuid.uuid4().hex}", f"line-token-{uuid.uuid4().hex}"
    ctx = await context(browser, "en")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-inboxes")).to_be_visible()
        await page.goto(f"{stack.gateway_url}/#/admin/channels")
        await page.get_by_test_id("channels-tab-line").click()
        await page.get_by_test_id("channel-new").click()
        await page.get_by_test_id("channel-name").fill("LINE official")
        await page.get_by_test_id("channel-line-secret").fill(secret)
        await page.get_by_test_id("channel-line-token").fill(token)
        await page.get_by_test_id("channel-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("Channel created.")
        card = page.get_by_test_id("channel").filter(has_text="LINE official")
        await expect(card.get_by_role("img", name="LINE")).to_be_visible()
        await expect(card.get_by_test_id("channel-line-webhook")).to_contain_text("/hooks/line/")
        await expect(card.get_by_test_id("channel-line-state")).to_have_text(
            f"Secret set (…{secret[-4:]}) · Access token set"
        )
        # never shown again: not in the page, not in the edit form
        assert secret not in await page.content() and token not in await page.content()
        await card.get_by_test_id("channel-edit").click()
        await expect(page.get_by_test_id("channel-line-secret")).to_have_value("")
        await expect(page.get_by_test_id("channel-line-token")).to_have_value("")
        await page.get_by_test_id("channel-name").fill("LINE shop")
        await page.get_by_test_id("channel-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("Saved.")
        await expect(
            page.get_by_test_id("channel")
            .filter(has_text="LINE shop")
            .get_by_test_id("channel-line-state")
        ).to_contain_text(secret[-4:])  # kept: an empty field changes nothing
        assert (await page.evaluate("document.documentElement.scrollWidth")) <= 1280
    finally:
        await ctx.close()
    code, listed, _ = await call(stack, "GET", "/api/v1/channels?kind=line", token=admin)
    assert code == 200 and secret not in json.dumps(listed) and token not in json.dumps(listed)
