"""The web chat with two pages (issue 21): a customer's site embeds the widget with the tag
the administration gives; its visitor chats with an operator in the app. The visitor's
message appears in the open ticket at once, typing shows both ways, the operator's reply
(Enter in the compact composer) appears in the widget; when the visitor's network drops
and comes back the widget reconnects, and nothing is lost or shown twice on either side;
the visitor who left an address gets the transcript by mail when the chat ends."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, expect

from services.devstack.infra import free_port
from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_chat import chat_ticket, chat_widget
from tests.helpers import eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


class Site:
    """A customer's web site on its own origin: one page with the widget's tag."""

    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.snippet = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def page(_: web.Request) -> web.Response:
            html = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
                f"</head><body><h1>Example shop</h1>{self.snippet}</body></html>"
            )
            return web.Response(text=html, content_type="text/html")

        app = web.Application()
        app.router.add_get("/", page)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    s = Site()
    await s.start()
    yield s
    await s.stop()


# Chromium's offline emulation fails new connections but leaves an open WebSocket alone:
# the page's sockets are kept here so that a dropped network can close them too.
KEEP_SOCKETS = """
window.__sockets = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) { super(...args); window.__sockets.push(this); }
};
"""


async def drop_network(page: Page) -> None:
    """The network goes away: no new connection, and the open sockets break."""
    await page.context.set_offline(True)
    await page.evaluate("window.__sockets.forEach((s) => s.close(4000, 'network down'))")


def widget_log(visitor: Page) -> Any:
    return visitor.get_by_role("log", name="Chat")


async def visitor_says(visitor: Page, text: str) -> None:
    box = visitor.get_by_role("textbox", name="Message")
    await box.fill(text)
    await box.press("Enter")


async def test_a_visitor_and_an_operator_chat_live_through_a_dropped_network(
    stack: Stack, browser: Browser, site: Site, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    widget = await chat_widget(stack, admin, tenant, [site.origin], greeting_en="Welcome!")
    site.snippet = widget["snippet"]
    address = f"hanako-{uuid.uuid4().hex[:8]}@customer.example"
    first = f"Hello, is my parcel {uuid.uuid4().hex[:4]} on its way?"

    visitor_ctx = await context(browser, "en")
    operator_ctx = await context(browser, "en")
    await visitor_ctx.add_init_script(KEEP_SOCKETS)
    visitor = await visitor_ctx.new_page()
    operator = await operator_ctx.new_page()
    try:
        # the visitor opens the chat on the shop's page and writes
        await visitor.goto(site.origin)
        await visitor.get_by_role("button", name="Chat with us").click()
        await expect(widget_log(visitor)).to_contain_text("Welcome!")
        await visitor_says(visitor, first)
        ticket = await chat_ticket(stack, admin, first[:20])
        assert ticket["subject"].startswith("Chat: ")

        # the operator opens the chat ticket: the visitor's message as a bubble
        await sign_in(operator, stack.gateway_url, tenant.login, tenant.password)
        await expect(operator.get_by_test_id("nav-inboxes")).to_be_visible()
        await operator.goto(f"{stack.gateway_url}/#/tickets/{ticket['id']}")
        timeline = operator.get_by_test_id("timeline")
        await expect(timeline.locator("[data-direction=in]").filter(has_text=first)).to_have_count(
            1
        )
        await expect(
            operator.get_by_test_id("ticket-subject").get_by_role("img", name="Web chat")
        ).to_be_visible()

        # the ticket's conversation is read and the operator's live socket is up
        await expect(timeline).to_have_attribute("data-conversation", re.compile(".+"))
        await expect(operator.get_by_test_id("live-state")).to_have_class(re.compile("up"))

        # the visitor types: the operator sees it; then sends: shown at once, once
        await visitor.get_by_role("textbox", name="Message").type("It was due")
        await expect(operator.get_by_test_id("visitor-typing")).to_be_visible()
        await visitor.get_by_role("textbox", name="Message").fill("It was due on Monday.")
        await visitor.get_by_role("textbox", name="Message").press("Enter")
        second = timeline.locator("[data-direction=in]").filter(has_text="It was due on Monday.")
        await expect(second).to_have_count(1)
        await expect(operator.get_by_test_id("visitor-typing")).to_have_count(0)

        # the operator types: the widget says so; Enter sends the reply into the widget
        box = operator.get_by_test_id("chat-input")
        await box.type("Let me check")
        await expect(visitor.get_by_role("status").first).to_have_text("An operator is typing…")
        await box.fill("Let me check: it left our warehouse today.")
        await box.press("Enter")
        await expect(widget_log(visitor)).to_contain_text("it left our warehouse today.")
        await expect(
            timeline.locator("[data-direction=out]").filter(has_text="warehouse today")
        ).to_have_count(1)
        # filed in the ticket, the reply's bubble names the operator who sent it, and the
        # customer's card shows the channel, not the conversation's pseudo-address
        code, sends, _ = await call(
            stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=admin
        )
        assert code == 200 and sends["items"][0]["operator"]["name"], sends
        filed = timeline.get_by_test_id("chat-bubble").filter(has_text="warehouse today")
        await expect(filed).to_contain_text(sends["items"][0]["operator"]["name"])
        # ... after the visitor's message it answers (its time is when it was sent)
        texts = await timeline.get_by_test_id("chat-bubble").all_inner_texts()
        order = [i for i, x in enumerate(texts) if "It was due" in x or "warehouse" in x]
        assert len(order) == 2 and "It was due" in texts[order[0]], texts
        # its history says how it went, in words (not the delivery's raw note)
        note = operator.get_by_test_id("activity-note").filter(has_text="attempt 1:")
        await expect(note).to_contain_text("delivered through Web chat (message")
        # ... and calls it a reply through the chat, not mail
        submitted = operator.locator("[data-testid=activity][data-action='send.submitted']")
        await expect(submitted).to_contain_text("Reply submitted for sending through Web chat")
        card = operator.get_by_test_id("customer-address")
        await expect(card).to_have_text("Customer of a Web chat conversation (no mail address)")
        await expect(card.get_by_role("img", name="Web chat")).to_be_visible()
        await shot(operator, "chat-operator")

        # the visitor's network drops: the reply written meanwhile and the visitor's own
        # message arrive after it comes back, each once
        await drop_network(visitor)
        await expect(visitor.get_by_role("status").first).to_have_text(
            "Connection lost. Reconnecting…", timeout=20000
        )
        await box.fill("Tracking number: 1234.")
        await box.press("Enter")
        await expect(
            timeline.locator("[data-direction=out]").filter(has_text="Tracking number")
        ).to_have_count(1)
        await visitor_says(visitor, "Are you still there?")
        await asyncio.sleep(1)
        await visitor_ctx.set_offline(False)
        await expect(widget_log(visitor)).to_contain_text("Tracking number: 1234.", timeout=30000)
        await expect(
            timeline.locator("[data-direction=in]").filter(has_text="Are you still there?")
        ).to_have_count(1, timeout=30000)
        await asyncio.sleep(2)  # a late duplicate would show by now
        log = widget_log(visitor)
        for text in ("Tracking number: 1234.", "warehouse today", "Are you still there?"):
            await expect(log.locator("div").filter(has_text=text)).to_have_count(1)
        for text in (first, "It was due on Monday.", "Are you still there?"):
            await expect(
                timeline.locator("[data-direction=in]").filter(has_text=text)
            ).to_have_count(1)
        await shot(visitor, "chat-visitor")

        # the visitor leaves an address and ends the chat: the transcript, once
        await visitor.get_by_text("Your email (optional: we send you the transcript)").click()
        await visitor.get_by_role("textbox", name="Your email").fill(address)
        await visitor.get_by_role("button", name="Save").click()
        await visitor.get_by_role("button", name="End chat").click()

        async def mails() -> list[Any]:
            return [r for r in smtp_peer.received if address in r.rcpt_tos]

        got = await eventually(mails, timeout=40)
        body = got[0].message.get_body(("plain",)).get_content()
        assert "Are you still there?" in body and "Tracking number: 1234." in body
        await asyncio.sleep(1)
        assert len(await mails()) == 1
    finally:
        await visitor_ctx.close()
        await operator_ctx.close()
    code, conv, _ = await call(
        stack, "GET", f"/api/v1/tickets/{ticket['id']}/conversation", token=admin
    )
    assert code == 200 and conv["kind"] == "chat", conv
