"""The customer-data lookup in a real browser (issue 21, DAT-3): an administrator sets it
up under Administration → Customer data and tries it (the answer and a refused private
address); the panel beside the ticket — within a 1280×800 screen with the ticket —
shows the mapped fields, "unavailable" with the reason for a slow, failing or private
endpoint while the ticket itself is already open; the contact shows the same data; in
Japanese the labels are the Japanese ones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_customer_lookup import config, ticket_from
from tests.e2e.test_ui_routing import open_admin
from tests.helpers import api_call, create_tenant, login
from tests.lookup_peer import LookupPeer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.fixture
async def peer() -> AsyncIterator[LookupPeer]:
    p = await LookupPeer().start()
    yield p
    await p.stop()


async def put(stack: Stack, token: str, body: dict[str, Any]) -> None:
    code, saved = await api_call(stack, token, "PUT", "/api/v1/customer-lookup", body)
    assert code == 200, saved


async def open_ticket(page: Page, stack: Stack, ticket: dict[str, Any]) -> None:
    await page.goto(f"{stack.gateway_url}/#/contacts")  # away first: the panel asks again
    await expect(page.get_by_test_id("ticket-screen")).to_have_count(0)
    await page.goto(f"{stack.gateway_url}/#/tickets/{ticket['id']}")
    await expect(page.get_by_test_id("ticket-screen")).to_be_visible()


async def test_the_panel_beside_the_ticket_ok_slow_failing_and_private(
    stack: Stack, browser: Browser, peer: LookupPeer
) -> None:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    address = f"panel.{uuid.uuid4().hex[:6]}@example.jp"
    peer.customers[address] = {
        "customer": {"rank": "ゴールド", "ltv": 1234567, "page": "https://crm.example.com/c/1"}
    }
    ticket = await ticket_from(stack, token, tenant, address)
    fields = [
        {"pointer": "/customer/rank", "label_ja": "ランク", "label_en": "Rank"},
        {"pointer": "/customer/ltv", "label_ja": "累計", "label_en": "Lifetime", "type": "number"},
        {"pointer": "/customer/page", "label_ja": "顧客ページ", "label_en": "Page", "type": "url"},
    ]
    await put(stack, token, config(peer, fields=fields, value_pointer=None))
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-contacts")).to_be_visible()
        await open_ticket(page, stack, ticket)
        panel = page.get_by_test_id("customer-data")
        await expect(panel.get_by_test_id("customer-data-field")).to_have_count(3)
        await expect(panel).to_contain_text("Rank")
        await expect(panel).to_contain_text("ゴールド")
        await expect(panel).to_contain_text("1,234,567")
        await expect(panel.get_by_role("link", name="https://crm.example.com/c/1")).to_be_visible()
        await expect(panel).to_be_in_viewport()  # beside the ticket on a 1280×800 screen
        await expect(page.get_by_test_id("timeline")).to_be_in_viewport()
        await shot(page, "lookup-panel-ok")

        # the contact shows the same data (from the kept copy)
        await page.goto(f"{stack.gateway_url}/#/contacts/{ticket['contact_id']}")
        await expect(page.get_by_test_id("customer-data")).to_contain_text("ゴールド")
        await expect(page.get_by_test_id("customer-data-when")).to_contain_text("kept copy")
        assert peer.hits[f"/customers?{address}"] == 1

        # slow: the ticket is there while the panel looks up; then the reason
        await put(stack, token, config(peer, "/slow?e={email}", timeout_ms=2500))
        await open_ticket(page, stack, ticket)
        await expect(page.get_by_test_id("customer-data-loading")).to_be_visible()
        await expect(page.get_by_test_id("ticket-screen")).to_contain_text(ticket["subject"])
        unavailable = page.get_by_test_id("customer-data-unavailable")
        await expect(unavailable).to_have_text("Unavailable: no answer in time")
        await shot(page, "lookup-panel-slow")

        # failing
        await put(stack, token, config(peer, "/fail?e={email}"))
        await open_ticket(page, stack, ticket)
        await expect(unavailable).to_have_text("Unavailable: the system answered HTTP 500")
        await put(stack, token, config(peer, "/badjson?e={email}"))
        await open_ticket(page, stack, ticket)
        await expect(unavailable).to_have_text("Unavailable: the answer is not JSON")

        # a private address (127.0.0.1) that the administrator has not allowed
        await put(stack, token, config(peer, allow_hosts=[]))
        await open_ticket(page, stack, ticket)
        await expect(unavailable).to_have_text("Unavailable: this address is not allowed")
        await expect(unavailable).to_have_attribute("data-error", "refused")
        await shot(page, "lookup-panel-private")
    finally:
        await ctx.close()


async def test_administration_sets_up_the_lookup_and_tries_it_in_japanese(
    stack: Stack, browser: Browser, peer: LookupPeer
) -> None:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    address = f"admin.{uuid.uuid4().hex[:6]}@example.jp"
    peer.customers[address] = {"customer": {"rank": "プラチナ", "ltv": 800}}
    ticket = await ticket_from(stack, token, tenant, address)
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await open_admin(page, "customer-lookup")
        await expect(page.get_by_role("heading", name="顧客データ連携")).to_be_visible()
        await expect(page.get_by_test_id("lookup-enabled")).to_be_checked()
        await page.get_by_test_id("lookup-url").fill(peer.url("/customers?email={email}"))
        await page.get_by_test_id("lookup-header").fill("X-Api-Key")
        await page.get_by_test_id("lookup-secret").fill("ui-secret-1234")
        await page.get_by_test_id("lookup-pointer").fill("/customer/rank")
        await page.get_by_test_id("lookup-label-ja").fill("ランク")
        await page.get_by_test_id("lookup-add-field").click()
        await page.get_by_test_id("lookup-pointer").nth(1).fill("/customer/ltv")
        await page.get_by_test_id("lookup-label-ja").nth(1).fill("累計購入額")
        await page.get_by_test_id("lookup-type").nth(1).select_option("number")
        await page.get_by_test_id("lookup-is-value").nth(1).check()

        # tried before it is allowed: 127.0.0.1 is refused
        await page.get_by_test_id("lookup-try-value").fill(address)
        await page.get_by_test_id("lookup-try-run").click()
        status = page.get_by_test_id("lookup-try-status")
        await expect(status).to_contain_text("このアドレスへの接続は許可されていません")
        assert peer.hits["/customers"] == 0

        await page.get_by_test_id("lookup-allow").fill("127.0.0.1")
        await page.get_by_test_id("lookup-try-run").click()
        await expect(status).to_contain_text("成功：HTTP 200")
        await expect(page.get_by_test_id("lookup-try-field").first).to_contain_text("プラチナ")
        await expect(page.get_by_test_id("lookup-try-value-result")).to_have_text("800")
        await shot(page, "lookup-admin-try")

        await page.get_by_test_id("lookup-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("保存しました。")
        await expect(page.get_by_test_id("lookup-secret")).to_have_attribute(
            "placeholder", "保存済み（末尾 1234）。空欄のままなら変更しません"
        )
        await expect(page.get_by_test_id("lookup-secret")).to_have_value("")

        # the panel in Japanese, and the customer value on the contact
        await open_ticket(page, stack, ticket)
        panel = page.get_by_test_id("customer-data")
        await expect(panel).to_contain_text("顧客データ")
        await expect(panel).to_contain_text("ランク")
        await expect(panel).to_contain_text("プラチナ")
        await expect(panel).to_contain_text("800")
    finally:
        await ctx.close()
    assert peer.headers[-1]["X-Api-Key"] == "ui-secret-1234"
    code, contact = await api_call(stack, token, "GET", f"/api/v1/contacts/{ticket['contact_id']}")
    assert code == 200 and contact["customer_value"] == 800, contact
