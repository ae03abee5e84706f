"""The operators' rough edges of issue 16 (items 2, 4, 6 and 7) as an operator notices
them in a real browser: one date format per language in the lists and the schedule
picker, with the operator's time zone shown where a time is chosen; a trainee's Reply
takes no lock and the ticket says what they can do; a server's refusal in the Japanese UI
reads in Japanese, Ctrl+Enter included; the ticket's activity, Assign to me, the Mine and
Unassigned views and the status and priority columns; the demo tenant's templates, the
empty picker's hint, a favicon, the keyboard help's Close button and the search hint."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Response, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, pick_time, shot, sign_in
from tests.conftest import DEMO_PASSWORD
from tests.e2e.test_access import OWN_PASSWORD, own_operator, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import mail_in, row

pytestmark = pytest.mark.e2e

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


def en(at: datetime) -> str:
    return f"{at.day} {at:%b %Y, %H:%M}"


def ja(at: datetime) -> str:
    return f"{at:%Y/%m/%d %H:%M}"


async def test_dates_read_one_way_per_language_in_the_operators_time_zone(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, yui, yui_token = await own_operator(
        stack, admin, tenant, display_name="Yui", roles=["agent"], time_zone="Asia/Tokyo"
    )
    subject = f"Where is my parcel {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    ticket = await ticket_by_subject(stack, admin, subject)
    received = datetime.fromisoformat(ticket["received_at"]).astimezone(TOKYO)
    tomorrow = (datetime.now(TOKYO) + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    for lang, text in (("en", en), ("ja", ja)):
        ctx = await context(browser, lang=lang)
        page = await ctx.new_page()
        try:
            await sign_in(page, stack.gateway_url, yui, OWN_PASSWORD)
            # the list: the time the mail came, in Tokyo, in the language's one format
            await expect(row(page, subject).get_by_test_id("cell-received")).to_have_text(
                text(received)
            )
            await row(page, subject).click()
            await page.get_by_test_id("btn-reply").click()
            await page.get_by_test_id("body").fill("It is on its way.")
            await page.get_by_test_id("later").check()
            # the picker: days in the same format (with the weekday), the zone beside it
            await expect(page.get_by_test_id("send-at-zone")).to_have_text("Asia/Tokyo (UTC+09:00)")
            day = page.get_by_test_id("send-at-day")
            option = day.locator(f"option[value='{tomorrow:%Y-%m-%d}']")
            weekday = f"{tomorrow:%a}" if lang == "en" else "月火水木金土日"[tomorrow.weekday()]
            await expect(option).to_have_text(
                f"{weekday} {tomorrow.day} {tomorrow:%b %Y}"
                if lang == "en"
                else f"{tomorrow:%Y/%m/%d}（{weekday}）"
            )
            await pick_time(page, "send-at", tomorrow)
            await page.get_by_test_id("editor").get_by_test_id("send").click()
            scheduled = page.locator("[data-testid=send][data-state=scheduled]")
            await expect(scheduled).to_contain_text(text(tomorrow))
            # 10:00 in Tokyo is what goes out, whatever the browser's own zone
            code, sends, _ = await call(
                stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=yui_token
            )
            assert code == 200, sends
            times = [datetime.fromisoformat(s["send_at"]) for s in sends["items"]]
            assert tomorrow in times
            await shot(page, f"dates-{lang}")
            await scheduled.get_by_test_id("send-cancel").click()
            await expect(scheduled).to_have_count(0)
        finally:
            await ctx.close()


async def test_a_trainee_reading_takes_no_lock_and_refusals_read_in_japanese(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, tomo, _ = await own_operator(
        stack, admin, tenant, display_name="Tomo Trainee", roles=["trainee"]
    )
    _, aki, _ = await own_operator(stack, admin, tenant, display_name="Aki Agent", roles=["agent"])
    subject = f"請求書について {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    await ticket_by_subject(stack, admin, subject)
    t_ctx, a_ctx = await context(browser, lang="ja"), await context(browser, lang="ja")
    trainee, agent = await t_ctx.new_page(), await a_ctx.new_page()
    try:
        await sign_in(trainee, stack.gateway_url, tomo, OWN_PASSWORD)
        await sign_in(agent, stack.gateway_url, aki, OWN_PASSWORD)
        await row(trainee, subject).click()
        await row(agent, subject).click()
        # the trainee may reply, and is told a supervisor approves it before it is sent
        await expect(trainee.get_by_test_id("btn-reply")).to_be_enabled()
        await expect(trainee.get_by_test_id("trainee-help")).to_contain_text("承認")
        await shot(trainee, "trainee-help-ja")
        # reading takes no lock: the agent replies at once
        await expect(agent.get_by_test_id("lock-banner")).to_have_count(0)
        async with agent.expect_response(lambda r: r.url.endswith("/lock") and r.status == 200):
            await agent.get_by_test_id("btn-reply").click()
        await expect(trainee.get_by_test_id("lock-banner")).to_contain_text("Aki Agent")

        # a recipient the server refuses, sent with Ctrl+Enter: the refusal in Japanese
        await agent.get_by_test_id("to").fill("not an address")
        await agent.get_by_test_id("body").fill("ご確認ください。")
        await agent.get_by_test_id("body").press("Control+Enter")
        error = agent.get_by_test_id("editor-error")
        await expect(error).to_be_visible()
        await expect(error).to_have_text(re.compile(r"^宛先：[^A-Za-z]+。（詳細：.+）$"))
        await expect(agent.get_by_test_id("editor")).to_be_visible()  # nothing was sent
        await shot(agent, "refusal-ja")
        await agent.get_by_test_id("discard").click()
        await agent.get_by_test_id("discard-confirm").click()  # Discard asks first
    finally:
        await t_ctx.close()
        await a_ctx.close()


async def test_activity_assign_to_me_the_mine_and_unassigned_views_and_the_columns(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aki, _ = await own_operator(stack, admin, tenant, display_name="Aki Agent", roles=["agent"])
    tag = uuid.uuid4().hex[:6]
    taken, left = f"Taken {tag}", f"Left {tag}"
    for subject in (taken, left):
        await mail_in(stack, tenant.address, subject)
        await ticket_by_subject(stack, admin, subject)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aki, OWN_PASSWORD)
        # the columns: status and priority of each row
        await expect(row(page, taken).get_by_test_id("cell-status")).to_have_text("Open")
        await expect(row(page, taken).get_by_test_id("cell-priority")).to_have_text("Normal")
        await page.get_by_test_id("view-mine").click()
        await expect(page.get_by_test_id("empty")).to_be_visible()

        await page.get_by_test_id("view-unassigned").click()
        await row(page, taken).click()
        await page.get_by_test_id("assign-me").click()
        await expect(page.get_by_test_id("assignee-select")).to_have_value(
            re.compile(".+")
        )  # the select names Aki
        await page.get_by_test_id("status-select").select_option("pending")
        # the activity: who did what, each change with its old and new value
        activity = page.get_by_test_id("activity")
        assigned = activity.filter(has_text="Aki Agent").filter(has_text="Assignee")
        await expect(assigned.first).to_be_visible()
        status = activity.filter(has_text="Status: Open → Pending")
        await expect(status).to_have_count(1)
        await expect(status).to_contain_text("Aki Agent")
        await expect(activity.filter(has_text="Ticket created")).to_have_count(1)
        await shot(page, "ticket-activity")
        # folded away, and back
        await page.get_by_test_id("activity-toggle").click()
        await expect(activity).to_have_count(0)
        await page.get_by_test_id("activity-toggle").click()
        await expect(status).to_have_count(1)

        await page.get_by_test_id("back").click()
        await page.get_by_test_id("tab-pending").click()
        await page.get_by_test_id("view-mine").click()
        await expect(row(page, taken)).to_have_count(1)
        await expect(row(page, taken).get_by_test_id("cell-status")).to_have_text("Pending")
        await expect(row(page, taken).get_by_test_id("cell-assignee")).to_have_text("Aki Agent")
        await page.get_by_test_id("view-unassigned").click()
        await expect(page.get_by_test_id("empty")).to_be_visible()
        await page.get_by_test_id("tab-open").click()
        await expect(row(page, left)).to_have_count(1)
        await expect(row(page, taken)).to_have_count(0)
        await page.get_by_test_id("view-mine").click()
        await expect(page.get_by_test_id("empty")).to_be_visible()
        await shot(page, "list-unassigned")
    finally:
        await ctx.close()


async def test_the_demo_templates_the_empty_picker_favicon_keys_help_and_search_hint(
    stack: Stack, browser: Browser
) -> None:
    tag = uuid.uuid4().hex[:6]
    subject = f"荷物が届きません {tag}"
    await mail_in(
        stack, "support@demo.example", subject, "注文した商品の配送状況を教えてください。\n"
    )
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    missing: list[str] = []

    def watch(response: Response) -> None:
        if response.status == 404:
            missing.append(response.url)

    page.on("response", watch)
    try:
        await sign_in(page, stack.gateway_url, "agent1@demo.example", DEMO_PASSWORD)
        # the favicon is served: nothing the page loads is missing
        icon = await page.locator("link[rel=icon]").get_attribute("href")
        assert icon
        got = await page.request.get(f"{stack.gateway_url}/{icon.lstrip('/')}")
        assert got.status == 200 and "svg" in got.headers["content-type"]

        # search as you type, and the field says so
        search = page.get_by_test_id("search")
        await expect(search).to_have_attribute("title", re.compile("入力するとすぐ検索"))
        await search.fill(tag)
        await expect(page.get_by_test_id("ticket-row")).to_have_count(1)

        # the keyboard help closes with its button
        await page.get_by_test_id("keys").click()
        await expect(page.get_by_test_id("keys-help")).to_be_visible()
        await page.get_by_test_id("keys-close").click()
        await expect(page.get_by_test_id("keys-help")).to_have_count(0)

        # the seeded templates: the suggestion once, under its heading; folders by name
        await row(page, subject).click()
        await page.get_by_test_id("btn-reply").click()
        picker = page.get_by_test_id("template-picker")
        suggested = page.get_by_test_id("picker-suggested")
        await expect(suggested.get_by_role("heading")).to_have_text("おすすめ")
        await expect(suggested).to_contain_text("配送状況のご案内")
        items = page.get_by_test_id("template-item")
        await expect(items.filter(has_text="Password reset")).to_have_count(1)
        await expect(items.filter(has_text="配送状況のご案内")).to_have_count(0)
        await expect(page.get_by_test_id("picker-phrases")).to_contain_text("お詫び")
        await expect(page.get_by_test_id("picker-phrases")).to_contain_text("Apology")
        await expect(picker).to_contain_text("アカウント / Account")
        await expect(picker).not_to_contain_text("null")
        await shot(page, "demo-picker-ja")
        await page.get_by_test_id("template-suggested").first.click()
        # the body is the HTML editor (CMP-5): the template's text as its paragraphs
        await expect(page.get_by_test_id("body")).to_have_text(
            re.compile("Taro Yamada 様.*配送中", re.S)
        )
        await page.get_by_test_id("discard").click()
        await page.get_by_test_id("discard-confirm").click()
        await expect(page.get_by_test_id("editor")).to_have_count(0)
        assert missing == []
    finally:
        await ctx.close()

    # a tenant without templates: the picker says how to add one
    tenant, admin = await admin_of(stack)
    subject = f"First mail {tag}"
    await mail_in(stack, tenant.address, subject)
    await ticket_by_subject(stack, admin, subject)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await row(page, subject).click()
        await page.get_by_test_id("btn-reply").click()
        empty = page.get_by_test_id("picker-empty")
        await expect(empty).to_contain_text("Administration → Templates")
        await empty.get_by_role("link", name="Add one").click()
        await expect(page).to_have_url(re.compile("#/admin/templates$"))

    finally:
        await ctx.close()
