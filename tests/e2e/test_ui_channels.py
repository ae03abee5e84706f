"""The channels in a real browser (issue 21): every ticket in the list and every message of
the timeline carries its channel's icon with an accessible name (mail, phone, API
channel…); an administrator makes a chat widget and copies the tag to paste; a message
that comes in through an API channel appears at once in the open ticket as a chat bubble —
once, also after the timeline re-reads — and the operator answers from the compact
composer (Enter sends), which the channel delivers to the integration's webhook."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import mail_in, row

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
