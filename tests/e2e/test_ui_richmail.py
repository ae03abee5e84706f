"""HTML replies in the browser (issue 16, CMP-5): the operator formats a reply with the
editor's toolbar, pastes and drops images, and the mail the SMTP peer receives carries the
formatting, the images as cid: parts and a text alternative; the "Plain text" toggle keeps
the text and sends a text-only mail; an inbox set to plain text only offers no HTML."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from tests.browser import context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of
from tests.e2e.test_ui import PASSWORD, browser, mail_in, operator, row
from tests.helpers import Tenant, eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the module's browser fixture, shared

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082"
)

# a file handed to the editor as a paste or a drop, the way a browser does
_GIVE = """([kind, b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type: "image/png" }));
  const el = document.querySelector('[data-testid="body"]');
  const r = el.getBoundingClientRect();
  const ev = kind === "paste"
    ? new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true })
    : new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true,
                               clientX: r.left + 10, clientY: r.bottom - 10 });
  el.dispatchEvent(ev);
}"""


async def give_image(page: Page, kind: str, name: str) -> None:
    await page.evaluate(_GIVE, [kind, base64.b64encode(PNG).decode(), name])


@asynccontextmanager
async def replying(
    stack: Stack,
    browser: Browser,
    subject: str,
    lang: str = "en",
    before: Callable[[Tenant, str], Awaitable[None]] | None = None,
) -> AsyncIterator[Page]:
    """An agent of a new tenant with the customer's mail `subject`, its reply editor open."""
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    await mail_in(stack, tenant.address, subject)
    await ticket_by_subject(stack, admin, subject)
    if before is not None:
        await before(tenant, admin)
    ctx = await context(browser, lang=lang)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await row(page, subject).click()
        await page.get_by_test_id("btn-reply").click()
        yield page
    finally:
        await ctx.close()


async def delivered(smtp_peer: SmtpPeer, tag: str) -> Any:
    async def probe() -> Any:
        return [
            r for r in smtp_peer.to("taro@customer.example") if tag in str(r.message["Subject"])
        ]

    [got] = await eventually(probe, timeout=30)
    return got.message


async def test_a_formatted_reply_with_pasted_and_dropped_images_reaches_the_customer(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tag = uuid.uuid4().hex[:6]
    async with replying(stack, browser, f"Cracked screen {tag}") as page:
        body = page.get_by_test_id("body")
        await body.click()
        await page.keyboard.type("We are sorry about the ")
        await page.get_by_test_id("tool-bold").click()
        await page.keyboard.type("cracked")
        await page.get_by_test_id("tool-bold").click()
        await page.keyboard.type(" screen. Next steps:")
        await page.keyboard.press("Enter")
        await page.get_by_test_id("tool-bullets").click()
        await page.keyboard.type("send the phone back")
        await page.keyboard.press("Enter")
        await page.keyboard.type("get a new one")
        await expect(body.locator("strong")).to_have_text("cracked")
        await expect(body.locator("ul > li")).to_have_count(2)

        await give_image(page, "paste", "pasted.png")
        await expect(body.locator("img[data-cid]")).to_have_count(1)
        await give_image(page, "drop", "dropped.png")
        await expect(body.locator("img[data-cid]")).to_have_count(2)
        # shown from the draft's attachments, not broken
        await expect(body.locator("img[data-cid]").first).to_have_js_property("complete", True)
        widths = await body.locator("img[data-cid]").evaluate_all(
            "(els) => els.map((e) => e.naturalWidth)"
        )
        assert widths == [1, 1]
        # a dropped image is part of the HTML, not a file attached beside it
        await expect(page.get_by_test_id("save-state")).to_have_text("Saved")
        await page.get_by_test_id("preview").click()
        frame = page.get_by_test_id("preview-dialog").get_by_test_id("mail-frame")
        await expect(frame).to_be_visible()
        inner = page.frame_locator("[data-testid=preview-dialog] [data-testid=mail-frame]")
        await expect(inner.locator("strong")).to_have_text("cracked")
        await shot(page, "rich-reply-preview")
        await page.get_by_test_id("preview-dialog").get_by_role("button", name="Close").click()
        await expect(page.get_by_test_id("preview-dialog")).to_have_count(0)
        await page.get_by_test_id("send").click()
        await expect(page.get_by_test_id("editor")).to_have_count(0)

    mail = await delivered(smtp_peer, tag)
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "<strong>cracked</strong>" in html or "<b>cracked</b>" in html
    assert "<ul>" in html and "send the phone back" in html
    assert "We are sorry about the cracked screen." in text
    assert "* send the phone back" in text and "<strong>" not in text and "<ul>" not in text
    images = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 2
    for image in images:
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html
        assert image.get_content() == PNG
    assert not list(mail.iter_attachments())  # the images are inline, nothing else attached


async def test_the_plain_text_toggle_keeps_the_text_and_sends_text_only(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tag = uuid.uuid4().hex[:6]
    async with replying(stack, browser, f"Plain answer {tag}") as page:
        await page.get_by_test_id("body").click()
        await page.get_by_test_id("tool-italic").click()
        await page.keyboard.type("Thanks for waiting")
        await page.get_by_test_id("plain-toggle").check()
        await expect(page.get_by_test_id("body")).to_have_value("Thanks for waiting")
        await expect(page.get_by_test_id("tool-italic")).to_have_count(0)
        await expect(page.get_by_test_id("save-state")).to_have_text("Saved")
        await page.get_by_test_id("send").click()
        await expect(page.get_by_test_id("editor")).to_have_count(0)

    mail = await delivered(smtp_peer, tag)
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().startswith("Thanks for waiting\r\n")  # then the quote


async def test_an_inbox_set_to_plain_text_only_in_administration_offers_no_html(
    stack: Stack, browser: Browser
) -> None:

    async def plain_only(tenant: Tenant, _admin: str) -> None:
        """The administrator ticks "Plain text only" for the inbox in the administration."""
        ctx = await context(browser, lang="ja")
        page = await ctx.new_page()
        try:
            await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
            await page.get_by_test_id("nav-admin").click()
            await page.get_by_test_id("admin-inboxes").click()
            # the inboxes' own table: until it is drawn, the operators' rows (whose inboxes
            # column says "Help" too) are still on the page
            inboxes = page.locator("[data-testid=admin-table][data-section=inboxes]")
            help_row = inboxes.get_by_test_id("admin-row").filter(has_text="Help")
            await help_row.get_by_role("button", name="編集").click()
            await page.get_by_test_id("admin-form").locator("#f-plain_text_only").check()
            await page.get_by_test_id("admin-save").click()
            await expect(help_row).to_contain_text("✓")
        finally:
            await ctx.close()

    subject = f"Plain inbox {uuid.uuid4().hex[:6]}"
    async with replying(stack, browser, subject, "ja", plain_only) as page:
        await expect(page.get_by_test_id("plain-only")).to_have_text(
            "この受信箱はテキスト形式のメールのみ送信します。"
        )
        await expect(page.get_by_test_id("plain-toggle")).to_be_checked()
        await expect(page.get_by_test_id("plain-toggle")).to_be_disabled()
        await expect(page.get_by_test_id("tool-bold")).to_have_count(0)
        await page.get_by_test_id("body").fill("テキストのみ")
        await expect(page.get_by_test_id("save-state")).to_have_text("保存済み")
