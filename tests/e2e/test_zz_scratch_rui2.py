from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_accounts import admin_of
from tests.e2e.test_ui import PASSWORD, operator
from tests.e2e.test_ui_routing import ok, open_admin

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.mark.parametrize("lang", ["en", "ja"])
async def test_look(stack: Stack, browser: Browser, lang: str) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    await operator(stack, admin, tenant, "Ben Agent", ["agent"])
    await ok(
        stack, admin, "POST", "/api/v1/templates", {"name": "受付のお知らせ", "body_text": "x"}
    )
    ctx = await context(browser, lang=lang)
    page = await ctx.new_page()
    await sign_in(page, stack.gateway_url, ada, PASSWORD)
    await open_admin(page, "rules")
    await page.get_by_test_id("rule-new").click()
    form = page.get_by_test_id("rule-form")
    await form.get_by_test_id("trigger-no_first_reply").check()
    await form.get_by_test_id("trigger-pending_until").check()
    c = form.get_by_test_id("cond").first
    await c.get_by_test_id("cond-field").select_option("contact_field")
    await form.get_by_test_id("add-cond").click()
    c = form.get_by_test_id("cond").nth(1)
    await c.get_by_test_id("cond-field").select_option("language")
    await c.get_by_test_id("cond-op").select_option("in")
    await form.get_by_test_id("add-cond").click()
    c = form.get_by_test_id("cond").nth(2)
    await c.get_by_test_id("cond-field").select_option("vip")
    for i, kind in enumerate(["auto_reply", "notify", "webhook", "require_skill"]):
        if i:
            await form.get_by_test_id("add-action").click()
        await form.get_by_test_id("action").nth(i).get_by_test_id("action-type").select_option(kind)
    await page.set_viewport_size({"width": 1280, "height": 800})
    await shot(page, f"scratch-rule-{lang}")
    await open_admin(page, "webhooks")
    await shot(page, f"scratch-webhooks-{lang}")
