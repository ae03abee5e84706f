"""Campaigns in a real browser, in Japanese (issue 20, OUT-6): a campaign to a list sent
now completes with its totals while the mails reach the SMTP peer; one to a segment
scheduled for tomorrow with a sending window and a per-domain limit, previewed, then edited
before it runs; a slow (throttled) one paused, resumed and cancelled after a confirmation,
the buttons enabled by its state. The lists' and segments' screens are test_ui_outreach.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, pick_time, shot, sign_in
from tests.e2e.test_accounts import admin_of
from tests.e2e.test_ui_outreach import api, list_with, signed_in
from tests.helpers import eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_an_administrator_s_top_bar_fits_1280_pixels_with_campaigns(
    stack: Stack, browser: Browser, lang: str
) -> None:
    """Every item of the top bar (Campaigns added for manage_outreach) stays on screen at
    1280×800, sign-out last, in both languages."""
    tenant, _admin = await admin_of(stack)
    ctx = await context(browser, lang)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-campaigns")).to_be_visible()
        for test_id in ("nav-campaigns", "nav-admin", "keys", "me", "logout"):
            box = await page.get_by_test_id(test_id).bounding_box()
            assert box is not None, test_id
            assert box["x"] >= 0 and box["x"] + box["width"] <= 1280, (lang, test_id, box)
            assert box["y"] + box["height"] <= 120, (lang, test_id, box)
        await expect(page.get_by_test_id("keys")).to_have_accessible_name(
            "キーボード" if lang == "ja" else "Keyboard"
        )
    finally:
        await ctx.close()


async def test_a_campaign_sent_now_completes_with_its_totals_and_the_mails(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    domain = f"camp-{uuid.uuid4().hex[:8]}.example"
    addresses = [f"c{i}@{domain}" for i in range(3)]
    await list_with(
        stack,
        admin,
        "キャンペーン先",
        [{"address": a, "name": f"顧客{i}"} for i, a in enumerate(addresses)],
    )
    subject = f"新サービスのご案内 {uuid.uuid4().hex[:6]}"
    page = await signed_in(browser, stack, tenant)
    try:
        await page.get_by_test_id("nav-campaigns").click()
        await expect(page.get_by_test_id("nav-campaigns")).to_have_text("キャンペーン")
        await page.get_by_test_id("camp-new").click()
        await page.get_by_test_id("camp-name").fill("12月のご案内")
        await page.get_by_test_id("camp-audience").select_option(label="キャンペーン先")
        await expect(page.get_by_test_id("camp-audience-count")).to_have_text("3件の連絡先")
        await page.get_by_test_id("camp-subject").fill(subject)
        await page.get_by_test_id("camp-body").fill("{{customer.name}} 様\n\nお知らせです。\n")
        await page.get_by_test_id("camp-words").get_by_text("{{unsubscribe.url}}").click()
        await expect(page.get_by_test_id("camp-body")).to_have_value(
            "{{customer.name}} 様\n\nお知らせです。\n{{unsubscribe.url}}"
        )
        await page.get_by_test_id("camp-when-now").check()
        await page.get_by_test_id("camp-save").click()

        await expect(page.get_by_test_id("camp-title")).to_have_text("12月のご案内")
        await expect(page.get_by_test_id("camp-state")).to_have_text("完了", timeout=60_000)
        totals = page.get_by_test_id("camp-totals")
        await expect(page.get_by_test_id("total-recipients")).to_contain_text("3")
        await expect(page.get_by_test_id("total-sent")).to_contain_text("3")
        await expect(page.get_by_test_id("total-failed")).to_contain_text("0")
        await expect(page.get_by_test_id("camp-progress")).to_contain_text("3 / 3")
        await expect(page.get_by_test_id("rcpt-row")).to_have_count(3)
        await expect(page.get_by_test_id("recipients")).to_contain_text("送信済み")
        await expect(totals).to_contain_text("配信停止")
        await shot(page, "outreach-campaign-done-ja")

        async def all_mailed() -> bool:
            return all(smtp_peer.to(a) for a in addresses)

        await eventually(all_mailed, timeout=30)
        for i, a in enumerate(addresses):
            got = smtp_peer.to(a)
            assert len(got) == 1 and str(got[0].message["Subject"]) == subject
            assert f"顧客{i} 様" in got[0].message.get_body().get_content()  # type: ignore[union-attr]

        await page.get_by_test_id("rcpt-filter").select_option(label="失敗")
        await expect(page.get_by_test_id("rcpt-row")).to_have_count(0)
        await page.get_by_test_id("nav-campaigns").click()
        row = page.get_by_test_id("camp-row").filter(has_text="12月のご案内")
        await expect(row.get_by_test_id("camp-state")).to_have_text("完了")
        await expect(row).to_contain_text("3 / 3")
        # the name is a link: the campaign opens from the keyboard too
        await row.get_by_role("link", name="12月のご案内").focus()
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(re.compile(r"#/campaigns/[0-9a-f-]{36}$"))
    finally:
        await page.context.close()


async def test_a_campaign_to_a_segment_scheduled_later_with_a_window_is_edited_before_it_runs(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    domain = f"later-{uuid.uuid4().hex[:8]}.example"
    await list_with(stack, admin, "後で", [{"address": f"l{i}@{domain}"} for i in range(2)])
    segment = await api(
        stack,
        admin,
        "POST",
        "/segments",
        {
            "name": "後で送る人",
            "match": "all",
            "conditions": [{"field": "domain", "op": "eq", "value": domain}],
        },
    )
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )  # the tenant's zone is UTC
    page = await signed_in(browser, stack, tenant)
    try:
        await page.goto(f"{stack.gateway_url}/#/campaigns/new")
        await page.get_by_test_id("camp-name").fill("来月のご案内")
        await page.get_by_test_id("camp-audience-kind").select_option(label="セグメント")
        await page.get_by_test_id("camp-audience").select_option(label="後で送る人")
        await expect(page.get_by_test_id("camp-audience-count")).to_have_text("2件の連絡先")
        await page.get_by_test_id("camp-subject").fill("{{customer.name}} 様へのご案内")
        await page.get_by_test_id("camp-body").fill("本文です。")
        await page.get_by_test_id("camp-preview").click()
        await expect(page.get_by_test_id("camp-preview-shown")).to_contain_text(
            "山田 太郎 様へのご案内"
        )
        await page.get_by_test_id("camp-when-at").check()
        await pick_time(page, "camp-at", tomorrow)
        await page.get_by_test_id("camp-window").check()
        await expect(page.get_by_test_id("camp-window-start-hour")).to_have_value("09")
        await page.get_by_test_id("camp-window-end-hour").select_option("17")
        await page.get_by_test_id("camp-window-end-minute").select_option("30")
        await page.get_by_test_id("camp-throttle").fill("30")
        await shot(page, "outreach-campaign-form-ja")
        await page.get_by_test_id("camp-save").click()

        await expect(page.get_by_test_id("camp-state")).to_have_text("予約済み", timeout=15_000)
        await expect(page.get_by_test_id("campaign")).to_contain_text(
            tomorrow.strftime("%Y/%m/%d 10:00")
        )
        made = (await api(stack, admin, "GET", "/campaigns"))["campaigns"][0]
        assert made["audience"] == {"segment_id": segment["id"]}
        assert made["window"] == {"start": "09:00", "end": "17:30", "days": [1, 2, 3, 4, 5]}
        assert made["throttle_per_domain_per_minute"] == 30
        assert made["scheduled_at"].startswith(tomorrow.strftime("%Y-%m-%dT10:00"))

        # edited before it runs: the form holds what was saved
        await page.get_by_test_id("camp-edit").click()
        await expect(page.get_by_test_id("camp-name")).to_have_value("来月のご案内")
        await expect(page.get_by_test_id("camp-throttle")).to_have_value("30")
        await expect(page.get_by_test_id("camp-window-end-hour")).to_have_value("17")
        await expect(page.get_by_test_id("camp-window-end-minute")).to_have_value("30")
        await page.get_by_test_id("camp-name").fill("来月のご案内（改）")
        await page.get_by_test_id("camp-save").click()
        await expect(page.get_by_test_id("camp-title")).to_have_text("来月のご案内（改）")
        await expect(page.get_by_test_id("camp-state")).to_have_text("予約済み")
    finally:
        await page.context.close()


async def test_a_slow_campaign_is_paused_resumed_and_cancelled_after_asking(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    domain = f"slow-{uuid.uuid4().hex[:8]}.example"
    list_id = await list_with(
        stack, admin, "ゆっくり", [{"address": f"s{i}@{domain}"} for i in range(5)]
    )
    # one mail a minute to the one domain: it stays running for minutes
    made = await api(
        stack,
        admin,
        "POST",
        "/campaigns",
        {
            "name": "ゆっくり送る",
            "inbox_id": tenant.inbox_id,
            "subject": "お知らせ",
            "body": "本文 {{unsubscribe.url}}",
            "language": "ja",
            "audience": {"list_id": list_id},
            "throttle_per_domain_per_minute": 1,
        },
    )
    page = await signed_in(browser, stack, tenant)
    try:
        await page.goto(f"{stack.gateway_url}/#/campaigns/{made['id']}")
        state = page.get_by_test_id("camp-state")
        await expect(state).to_have_text("下書き")
        await expect(page.get_by_test_id("camp-pause")).to_be_disabled()
        await expect(page.get_by_test_id("camp-resume")).to_be_disabled()
        await page.get_by_test_id("camp-send-now").click()
        await expect(state).to_have_text("送信中", timeout=30_000)
        await expect(page.get_by_test_id("camp-resume")).to_be_disabled()
        await page.get_by_test_id("camp-pause").click()
        await expect(state).to_have_text("一時停止中")
        await expect(page.get_by_test_id("camp-notice")).to_have_text("一時停止しました。")
        await expect(page.get_by_test_id("camp-pause")).to_be_disabled()
        await page.get_by_test_id("camp-resume").click()
        await expect(state).to_have_text("送信中")

        # cancel asks first; "キャンセル" keeps it running
        await page.get_by_test_id("camp-cancel").click()
        await expect(page.get_by_test_id("camp-confirm")).to_contain_text(
            "このキャンペーンを中止しますか？"
        )
        await page.get_by_test_id("camp-confirm-no").click()
        await expect(state).to_have_text("送信中")
        await page.get_by_test_id("camp-cancel").click()
        await page.get_by_test_id("camp-confirm-yes").click()
        await expect(state).to_have_text("中止")
        for button in ("camp-pause", "camp-resume", "camp-cancel"):
            await expect(page.get_by_test_id(button)).to_be_disabled()
        await shot(page, "outreach-campaign-cancelled-ja")
        got = await api(stack, admin, "GET", f"/campaigns/{made['id']}")
        assert got["state"] == "cancelled" and got["totals"]["sent"] < 5
    finally:
        await page.context.close()
