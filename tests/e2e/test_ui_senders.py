"""ADR 0009 in the browser: a mail whose sender a trusted host vouches for, one nobody
vouches for, and a stranger's mail that joined through our signed Message-ID — marked in
the ticket view (English and Japanese), and Reply addressed to the customer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import TRUSTED_AUTHSERV_ID, Stack
from tests.browser import context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call, log_in
from tests.e2e.test_threading import Desk
from tests.e2e.test_ui import PASSWORD, browser, operator, row
from tests.helpers import Tenant, eventually, make_mail, send

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the module's browser fixture, shared

CUSTOMER = "Taro Yamada <taro@customer.example>"


async def test_unverified_senders_and_strangers_are_marked_and_reply_goes_to_the_customer(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    subject = f"Parcel {uuid.uuid4().hex[:6]}"
    first = make_mail(subject, sender=CUSTOMER, to=tenant.address)
    first["Authentication-Results"] = f"{TRUSTED_AUTHSERV_ID}; dkim=pass header.d=customer.example"
    await asyncio.to_thread(send, stack.smtp_port, first, [tenant.address])
    ticket = await ticket_by_subject(stack, admin, subject)
    # our answer went out with a signed Message-ID; a copy reached someone else
    sent = await _signed_id(stack, tenant, ticket["id"])
    stranger = make_mail(
        f"Re: {subject}", sender="Mallory <mallory@evil.example>", to=tenant.address
    )
    stranger["In-Reply-To"] = sent
    await asyncio.to_thread(send, stack.smtp_port, stranger, [tenant.address])

    async def two() -> bool:
        _, detail, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin)
        return len(detail["messages"]) == 2

    await eventually(two)
    for lang, texts in (
        ("en", ("Verified sender", "Not a participant", "Unverified sender")),
        ("ja", ("送信者確認済み", "参加者以外", "送信者未確認")),
    ):
        ctx = await context(browser, lang=lang)
        page = await ctx.new_page()
        try:
            await sign_in(page, stack.gateway_url, aiko, PASSWORD)
            await row(page, subject).first.click()
            mails = page.get_by_test_id("mail")
            await expect(mails).to_have_count(2)
            await expect(mails.nth(0).get_by_test_id("mail-verified")).to_have_text(texts[0])
            await expect(mails.nth(0).get_by_test_id("mail-unverified")).to_have_count(0)
            await expect(mails.nth(0).get_by_test_id("mail-stranger")).to_have_count(0)
            await expect(mails.nth(1).get_by_test_id("mail-stranger")).to_have_text(texts[1])
            await expect(mails.nth(1).get_by_test_id("mail-unverified")).to_have_text(texts[2])
            if lang == "en":
                await shot(page, "ticket-stranger")
                await page.get_by_test_id("btn-reply").click()
                await expect(page.get_by_test_id("to")).to_have_value(CUSTOMER)
        finally:
            await ctx.close()


async def _signed_id(stack: Stack, tenant: Tenant, ticket_id: str) -> str:
    """A Message-ID of ours for the ticket, as outbound mints one for a reply."""
    code, body, _ = await log_in(stack, tenant.login, tenant.password)
    assert code == 201, body
    desk = Desk(stack, tenant, body["token"], body["operator"])
    try:
        return await desk.signed_id(ticket_id)
    finally:
        await desk.close()
