"""Routing in the web UI, second part (issue 18), in Debian's chromium against the whole
running system: a backlog handed to an operator coming online is one toast, not one per
ticket over the ticket's side panel; the timeline names routing's flag in words."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of
from tests.e2e.test_ui import PASSWORD, mail_in, operator, row
from tests.e2e.test_ui_routing import ok
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_a_backlog_handed_over_on_coming_online_is_one_toast_in_japanese(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    aiko_id, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    await ok(
        stack,
        admin,
        "PUT",
        f"/api/v1/inboxes/{tenant.inbox_id}/assignment",
        {"strategy": "least_loaded"},
    )
    tag = uuid.uuid4().hex[:6]
    subjects = [f"在庫の確認 {n} {tag}" for n in range(1, 5)]
    for s in subjects:
        await mail_in(stack, tenant.address, s)
    # waiting: nobody is online
    for s in subjects:
        assert (await ticket_by_subject(stack, admin, s))["assignee"] is None
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        # she reads one of them, its side panel open, and goes online
        await row(page, subjects[0]).click()
        await expect(page.get_by_test_id("status-select")).to_be_visible()
        await page.get_by_test_id("presence-select").select_option("online")

        async def all_hers() -> bool:
            for s in subjects:
                t = await ticket_by_subject(stack, admin, s)
                if not t["assignee"] or t["assignee"]["id"] != aiko_id:
                    return False
            return True

        await eventually(all_hers, timeout=20)
        # one toast for the four, saying how many and by whom, the subjects inside
        toast = page.get_by_test_id("toast")
        await expect(toast).to_have_attribute("data-count", "4", timeout=15000)
        await expect(toast).to_have_count(1)
        await expect(toast.get_by_test_id("toast-title")).to_have_text(
            "自動振り分けで4件のチケットがあなたに割り当てられました"
        )
        for s in subjects:
            await expect(toast.get_by_test_id("toast-quote")).to_contain_text(s)
        # the ticket's side panel stays in view beside it
        box = await toast.bounding_box()
        assert box is not None and box["height"] < 160, box
        await shot(page, "routing-backlog-toast-ja")
        # it opens her own tickets: the four
        await toast.get_by_test_id("toast-open").click()
        await expect(page.get_by_test_id("toast")).to_have_count(0)
        for s in subjects:
            await expect(row(page, s)).to_be_visible()
        await expect(page).to_have_url(f"{stack.gateway_url}/#/inbox/all/open/mine")
    finally:
        await ctx.close()
