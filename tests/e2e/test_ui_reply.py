"""Replying in the web UI (issue 16, UI items 3 and 5), in a real browser against the
whole running system: the mail being answered stays on screen beside the editor at
1280×800; the preview shows what the customer will see, with the raw source one click
away; Esc closes every dialog and only it; Discard asks first; a scheduled send is
confirmed with "Schedule" — in English and Japanese."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from tests.browser import DESKTOP, chromium, context, pick_time, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import PASSWORD, mail_in, operator, row

pytestmark = pytest.mark.e2e

TOKYO = ZoneInfo("Asia/Tokyo")
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@dataclass
class Desk:
    admin: str  # the administrator's token
    address: str  # the inbox's, which answers
    login: str  # Aiko Agent's, who replies
    subject: str
    ticket: dict[str, Any]


async def desk(stack: Stack, subject: str, body: str = "Hello\n", **fields: Any) -> Desk:
    """A tenant, its agent Aiko (`fields` of her operator) and a customer's mail to answer."""
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"], **fields)
    subject = f"{subject} {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject, body)
    return Desk(
        admin, tenant.address, aiko, subject, await ticket_by_subject(stack, admin, subject)
    )


async def replying(page: Page, subject: str) -> None:
    """Open the ticket from the list and press Reply; wait for the draft."""
    await row(page, subject).click()
    await page.get_by_test_id("btn-reply").click()
    await expect(page.get_by_test_id("body")).to_be_visible()


async def test_the_answered_mail_and_the_send_button_are_on_screen_together(
    stack: Stack, browser: Browser
) -> None:
    # a long mail: its first lines must stay on screen with the editor
    lines = ["The lid of the box I received yesterday is cracked."] + [
        f"Detail {n}: more about the delivery." for n in range(1, 60)
    ]
    d = await desk(stack, "Broken lid", "\n".join(lines) + "\n")
    subject = d.subject
    ctx = await context(browser, viewport=DESKTOP)
    page = await ctx.new_page()
    try:
        assert page.viewport_size == {"width": 1280, "height": 800}
        await sign_in(page, stack.gateway_url, d.login, PASSWORD)
        await replying(page, subject)
        answered = page.get_by_test_id("answering")
        first_line = answered.get_by_test_id("mail-text")
        await expect(first_line).to_contain_text("The lid of the box I received yesterday")
        await expect(first_line).to_be_in_viewport()
        await expect(page.get_by_test_id("body")).to_be_in_viewport()
        await expect(page.get_by_test_id("send")).to_be_in_viewport(ratio=1)
        # nothing had to scroll to get there
        assert await page.locator(".ticket-main").evaluate("e => e.scrollTop") == 0
        await shot(page, "reply-beside-the-mail")

        # folded to one line, and back; the choice is remembered for the next reply
        await answered.get_by_test_id("answering-toggle").click()
        await expect(answered.get_by_test_id("mail-text")).to_have_count(0)
        await expect(answered).to_contain_text(subject)
        await expect(page.get_by_test_id("send")).to_be_in_viewport(ratio=1)
        await page.get_by_test_id("close-editor").click()
        await expect(page.get_by_test_id("editor")).to_have_count(0)
        await page.get_by_test_id("btn-reply").click()
        await expect(page.get_by_test_id("body")).to_be_visible()
        await expect(answered.get_by_test_id("mail-text")).to_have_count(0)
        await answered.get_by_test_id("answering-toggle").click()
        await expect(answered.get_by_test_id("mail-text")).to_contain_text(
            "The lid of the box I received yesterday"
        )
        await expect(answered.get_by_test_id("mail-text")).to_be_in_viewport()
        await expect(page.get_by_test_id("send")).to_be_in_viewport(ratio=1)
    finally:
        await ctx.close()


async def test_the_preview_shows_what_the_customer_sees_and_esc_closes_each_dialog(
    stack: Stack, browser: Browser
) -> None:
    d = await desk(
        stack, "Invoice please", "Could you send the invoice again?\n", time_zone="Asia/Tokyo"
    )
    subject = d.subject
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, d.login, PASSWORD)
        await replying(page, subject)
        await page.get_by_test_id("body").fill("Here it is, the invoice is attached.")
        await expect(page.get_by_test_id("save-state")).to_have_text("Saved")

        await page.get_by_test_id("preview").click()
        dialog = page.get_by_test_id("preview-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog.get_by_test_id("preview-from")).to_contain_text(d.address)
        await expect(dialog.get_by_test_id("preview-to")).to_have_text(
            "Taro Yamada <taro@customer.example>"
        )
        await expect(dialog.get_by_test_id("preview-subject")).to_have_text(f"Re: {subject}")
        # the app's date format, in the operator's zone (Tokyo), never a UTC header date
        date = dialog.get_by_test_id("preview-date")
        await expect(date).to_contain_text(re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d"))
        await expect(date).to_contain_text("Asia/Tokyo (UTC+09:00)")
        await expect(date).not_to_contain_text("+0000")
        # an HTML reply (CMP-5): its HTML part, in the sandboxed frame
        shown = page.frame_locator("[data-testid=preview-dialog] [data-testid=mail-frame]")
        await expect(shown.locator("body")).to_contain_text("Here it is, the invoice is attached.")
        await expect(dialog).not_to_contain_text("Message-ID:")
        await expect(dialog).not_to_contain_text("Content-Transfer-Encoding")
        await shot(page, "reply-preview")
        # the raw source, one click away
        await dialog.get_by_test_id("preview-show-source").click()
        source = dialog.get_by_test_id("preview-source")
        await expect(source).to_contain_text("Message-ID: <preview.")
        await expect(source).to_contain_text("Content-Transfer-Encoding:")
        await expect(source).to_contain_text(f"Subject: Re: {subject}")
        await dialog.get_by_test_id("preview-show-source").click()
        await expect(source).to_have_count(0)
        # Esc closes the preview, and only it: the editor stays open
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
        await expect(page.get_by_test_id("editor")).to_be_visible()

        # a scheduled mail: the preview's date is the chosen time, the button says Schedule
        await expect(page.get_by_test_id("send")).to_have_text("Send")
        await page.get_by_test_id("later").check()
        await expect(page.get_by_test_id("send")).to_have_text("Schedule")
        when = (datetime.now(TOKYO) + timedelta(days=2)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )
        await pick_time(page, "send-at", when)
        await page.get_by_test_id("preview").click()
        await expect(dialog.get_by_test_id("preview-date")).to_contain_text(
            f"{when.day} {MONTHS[when.month - 1]} {when.year}, 09:00"
        )
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)

        # the checks dialog (添付 without a file) closes on Esc and sends nothing; its
        # confirm button says what it will do
        await page.get_by_test_id("send").click()
        checks = page.get_by_test_id("checks-dialog")
        await expect(checks).to_be_visible()
        await expect(checks.get_by_test_id("checks-confirm")).to_have_text("Schedule anyway")
        await page.keyboard.press("Escape")
        await expect(checks).to_have_count(0)
        await expect(page.get_by_test_id("editor")).to_be_visible()
        sends = await call(stack, "GET", f"/api/v1/tickets/{d.ticket['id']}/sends", token=d.admin)
        assert sends[1]["items"] == []

        # the keyboard help closes on Esc without leaving the ticket
        await page.get_by_test_id("close-editor").click()
        await expect(page.get_by_test_id("editor")).to_have_count(0)
        await page.get_by_test_id("keys").click()
        await expect(page.get_by_test_id("keys-help")).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(page.get_by_test_id("keys-help")).to_have_count(0)
        await expect(page.get_by_test_id("ticket-screen")).to_be_visible()
    finally:
        await ctx.close()


async def test_discard_asks_first_and_cancel_keeps_the_draft(
    stack: Stack, browser: Browser
) -> None:
    d = await desk(stack, "Wrong size")
    subject, ticket, admin = d.subject, d.ticket, d.admin
    ctx = await context(browser)
    page = await ctx.new_page()

    async def open_drafts() -> list[str]:
        listed = (await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}/drafts", token=admin))[
            1
        ]
        return [d["id"] for d in listed["items"] if d["state"] == "open"]

    try:
        await sign_in(page, stack.gateway_url, d.login, PASSWORD)
        await replying(page, subject)
        await page.get_by_test_id("body").fill("We will exchange it for a larger one.")
        await expect(page.get_by_test_id("save-state")).to_have_text("Saved")

        confirm = page.get_by_test_id("discard-dialog")
        await page.get_by_test_id("discard").click()
        await expect(confirm).to_contain_text("Discard this draft?")
        await confirm.get_by_test_id("discard-cancel").click()
        await expect(confirm).to_have_count(0)
        await expect(page.get_by_test_id("body")).to_have_text(
            "We will exchange it for a larger one."
        )
        await page.get_by_test_id("discard").click()
        await expect(confirm).to_be_visible()
        await page.keyboard.press("Escape")  # as Cancel
        await expect(confirm).to_have_count(0)
        await expect(page.get_by_test_id("editor")).to_be_visible()
        assert len(await open_drafts()) == 1

        await page.get_by_test_id("discard").click()
        await confirm.get_by_test_id("discard-confirm").click()
        await expect(page.get_by_test_id("editor")).to_have_count(0)
        assert await open_drafts() == []
        await expect(page.get_by_test_id("btn-reply")).to_be_enabled()
    finally:
        await ctx.close()


async def test_in_japanese_the_preview_discard_and_a_scheduled_send_say_so(
    stack: Stack, browser: Browser
) -> None:
    d = await desk(
        stack, "請求書の再発行", "請求書を再発行してください。\n", time_zone="Asia/Tokyo"
    )
    subject, ticket, admin = d.subject, d.ticket, d.admin
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, d.login, PASSWORD)
        await expect(page.get_by_test_id("tab-open")).to_contain_text("未対応")
        await replying(page, subject)
        answered = page.get_by_test_id("answering")
        await expect(answered).to_contain_text("返信元のメール")
        await expect(answered.get_by_test_id("mail-text")).to_contain_text("請求書を再発行")
        await expect(answered.get_by_test_id("answering-toggle")).to_have_text("隠す")
        await expect(answered.get_by_test_id("mail-text")).to_be_in_viewport()
        await expect(page.get_by_test_id("send")).to_be_in_viewport(ratio=1)
        await page.get_by_test_id("body").fill("請求書を添付いたします。")
        await expect(page.get_by_test_id("save-state")).to_have_text("保存済み")

        await page.get_by_test_id("later").check()
        await expect(page.get_by_test_id("send")).to_have_text("予約する")
        when = (datetime.now(TOKYO) + timedelta(days=1)).replace(
            hour=10, minute=30, second=0, microsecond=0
        )
        await pick_time(page, "send-at", when)
        await page.get_by_test_id("preview").click()
        dialog = page.get_by_test_id("preview-dialog")
        await expect(dialog.get_by_test_id("preview-date")).to_contain_text(
            f"{when:%Y/%m/%d} 10:30"
        )
        await expect(dialog.get_by_test_id("preview-subject")).to_have_text(f"Re: {subject}")
        await expect(dialog).not_to_contain_text("Message-ID:")
        await expect(dialog.get_by_test_id("preview-show-source")).to_have_text("ソースを表示")
        await dialog.get_by_test_id("preview-show-source").click()
        await expect(dialog.get_by_test_id("preview-source")).to_contain_text("Message-ID:")
        await shot(page, "reply-preview-ja")
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)

        await page.get_by_test_id("discard").click()
        await expect(page.get_by_test_id("discard-dialog")).to_contain_text(
            "この下書きを破棄しますか"
        )
        await page.get_by_test_id("discard-cancel").click()

        # 添付 without a file: the checks ask, in Japanese, and their button schedules
        await page.get_by_test_id("send").click()
        await expect(page.get_by_test_id("check-warning")).to_have_text(
            "本文に「添付」とありますが、ファイルが添付されていません。"
        )
        confirm = page.get_by_test_id("checks-confirm")
        await expect(confirm).to_have_text("このまま予約する")
        await confirm.click()
        await expect(page.get_by_test_id("editor")).to_have_count(0)
        await expect(page.locator("[data-testid=send][data-state=scheduled]")).to_be_visible()
        sends = (await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=admin))[1]
        [scheduled] = sends["items"]
        assert datetime.fromisoformat(scheduled["send_at"]) == when
    finally:
        await ctx.close()
