"""Proactive outreach in a real browser, in Japanese (issue 20, OUT-6): an administrator
creates a contact list and imports a CSV file with a bad line — the line's error is listed
and the good lines are imported; builds a segment whose count changes as the conditions
change; sends a campaign to a list now and watches it complete with its totals while the
mails reach the SMTP peer; pauses and resumes a slow (throttled) campaign and cancels it
after a confirmation; sees an address suppressed through the API in the unsubscribe list.
An agent without manage_outreach sees no Campaigns."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, pick_time, shot, sign_in
from tests.e2e.test_access import OWN_PASSWORD, own_operator
from tests.e2e.test_accounts import admin_of, call
from tests.helpers import Tenant, eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def api(stack: Stack, token: str, method: str, path: str, body: Any = None) -> Any:
    code, out, _ = await call(stack, method, f"/api/v1{path}", body, token=token)
    assert code in (200, 201, 202, 204), (code, out)
    return out


async def list_with(stack: Stack, admin: str, name: str, contacts: list[dict[str, Any]]) -> str:
    made = await api(stack, admin, "POST", "/contact-lists", {"name": name, "description": ""})
    out = await api(
        stack, admin, "POST", f"/contact-lists/{made['id']}/members", {"contacts": contacts}
    )
    assert not out["errors"], out
    return str(made["id"])


async def signed_in(browser: Browser, stack: Stack, tenant: Tenant) -> Page:
    ctx = await context(browser, "ja")
    page = await ctx.new_page()
    await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
    await expect(page.get_by_test_id("nav-inboxes")).to_be_visible()
    return page


async def test_a_list_is_created_and_a_csv_with_a_bad_line_imports_the_rest(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    tenant, _ = await admin_of(stack)
    domain = f"csv-{uuid.uuid4().hex[:8]}.example"
    page = await signed_in(browser, stack, tenant)
    try:
        await page.get_by_test_id("nav-contacts").click()
        await page.get_by_test_id("contacts-tab-lists").click()
        await expect(page.get_by_test_id("contacts-tab-lists")).to_have_text("リスト")
        await page.get_by_test_id("list-name").fill("春のお知らせ")
        await page.get_by_test_id("list-description").fill("既存のお客様")
        await page.get_by_test_id("list-create-submit").click()
        await expect(page.get_by_test_id("lists-notice")).to_have_text(
            "リスト「春のお知らせ」を作成しました。"
        )
        row = page.get_by_test_id("list-row").filter(has_text="春のお知らせ")
        await expect(row.get_by_test_id("list-count")).to_have_text("0")
        await row.get_by_test_id("list-open").click()
        await expect(page.get_by_test_id("list-title")).to_have_text("春のお知らせ")

        csv = (
            "メールアドレス,名前\n"
            f"tanaka@{domain},田中 一郎\n"
            "これはアドレスではない,壊れた行\n"
            f"suzuki@{domain},鈴木 花子\n"
        ).encode("utf-8-sig")
        path = tmp_path / "customers.csv"
        path.write_bytes(csv)
        await page.get_by_test_id("csv-file").set_input_files(path)
        await page.get_by_test_id("csv-start").click()
        await expect(page.get_by_test_id("import-state")).to_have_text(
            "完了：2件を取り込み、1行にエラー", timeout=30_000
        )
        errors = page.get_by_test_id("import-error")
        await expect(errors).to_have_count(1)
        await expect(errors.locator("td").first).to_have_text("3")  # the header is line 1
        # the column it names in the UI's words, the server's detail after it
        await expect(errors.locator("td").nth(1)).to_contain_text("メールアドレス")
        await expect(errors.locator("td").nth(1)).to_contain_text("これはアドレスではない")
        await expect(page.get_by_test_id("list-member-count")).to_have_text("2件のメンバー")
        members = page.get_by_test_id("member-row")
        await expect(members).to_have_count(2)
        await expect(page.get_by_test_id("members")).to_contain_text("田中 一郎")
        await expect(page.get_by_test_id("members")).to_contain_text(f"suzuki@{domain}")
        await shot(page, "outreach-list-import-ja")

        # one added by hand; the search finds it
        await page.get_by_test_id("member-address").fill(f"sato@{domain}")
        await page.get_by_test_id("member-name").fill("佐藤 三郎")
        await page.get_by_test_id("member-add-submit").click()
        await expect(page.get_by_test_id("list-notice")).to_have_text(
            f"sato@{domain} を追加しました。"
        )
        await expect(page.get_by_test_id("list-member-count")).to_have_text("3件のメンバー")
        await page.get_by_test_id("member-search").fill("佐藤")
        await expect(members).to_have_count(1)
        await expect(members).to_contain_text("佐藤 三郎")

        await page.get_by_test_id("contacts-tab-lists").click()
        await expect(row.get_by_test_id("list-count")).to_have_text("3")

        # renamed, then deleted after asking (Cancel keeps it)
        await row.get_by_test_id("list-rename").click()
        await page.get_by_test_id("rename-name").fill("冬のお知らせ")
        await page.get_by_test_id("rename-save").click()
        await expect(page.get_by_test_id("lists-notice")).to_have_text("保存しました。")
        renamed = page.get_by_test_id("list-row").filter(has_text="冬のお知らせ")
        await expect(renamed.get_by_test_id("list-count")).to_have_text("3")
        await renamed.get_by_test_id("list-delete").click()
        dialog = page.get_by_test_id("list-delete-dialog")
        await expect(dialog).to_contain_text("連絡先は残り")
        await dialog.get_by_text("キャンセル").click()
        await expect(renamed).to_have_count(1)
        await renamed.get_by_test_id("list-delete").click()
        await page.get_by_test_id("list-delete-confirm").click()
        await expect(page.get_by_test_id("lists-notice")).to_have_text(
            "リスト「冬のお知らせ」を削除しました。"
        )
        await expect(page.get_by_test_id("list-row")).to_have_count(0)
        await page.get_by_test_id("contacts-tab-contacts").click()  # the contacts stay
        await expect(page.get_by_test_id("contact-row").filter(has_text="佐藤 三郎")).to_have_count(
            1
        )
    finally:
        await page.context.close()


async def test_a_segments_live_count_follows_its_conditions(stack: Stack, browser: Browser) -> None:
    tenant, admin = await admin_of(stack)
    domain = f"seg-{uuid.uuid4().hex[:8]}.example"
    await list_with(
        stack,
        admin,
        "セグメント用",
        [
            {"address": f"a@{domain}", "name": "田中 一郎"},
            {"address": f"b@{domain}", "name": "田中 二郎"},
            {"address": f"c@{domain}", "name": "鈴木 花子"},
        ],
    )
    page = await signed_in(browser, stack, tenant)
    try:
        await page.goto(f"{stack.gateway_url}/#/contacts/segments")
        await page.get_by_test_id("segment-new").click()
        count = page.get_by_test_id("live-count")
        cond = page.get_by_test_id("condition")
        await cond.get_by_test_id("cond-field").select_option(label="メールのドメイン")
        await cond.get_by_test_id("cond-op").select_option(label="が次と等しい")
        await cond.get_by_test_id("cond-value").fill(domain)
        await expect(count).to_have_text("3件の連絡先")

        await page.get_by_test_id("cond-add").click()
        second = cond.nth(1)
        await second.get_by_test_id("cond-field").select_option(label="名前")
        await second.get_by_test_id("cond-op").select_option(label="が次を含む")
        await second.get_by_test_id("cond-value").fill("田中")
        await expect(count).to_have_text("2件の連絡先")
        await second.get_by_test_id("cond-value").fill("鈴木")
        await expect(count).to_have_text("1件の連絡先")
        await page.get_by_test_id("match-any").check()  # everyone of the domain, and more
        await expect(count).not_to_have_text("1件の連絡先")
        await page.get_by_test_id("match-all").check()
        await expect(count).to_have_text("1件の連絡先")
        await shot(page, "outreach-segment-ja")

        await page.get_by_test_id("segment-name").fill("鈴木さん")
        await page.get_by_test_id("segment-save").click()
        await expect(page.get_by_test_id("segment-notice")).to_have_text("保存しました。")
        await page.goto(f"{stack.gateway_url}/#/contacts/segments")
        row = page.get_by_test_id("segment-row").filter(has_text="鈴木さん")
        await expect(row.get_by_test_id("segment-count")).to_have_text("1")
    finally:
        await page.context.close()


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


async def test_the_unsubscribe_list_shows_an_address_suppressed_through_the_api(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    address = f"stop-{uuid.uuid4().hex[:8]}@example.jp"
    await api(stack, admin, "POST", "/suppressions", {"address": address})
    page = await signed_in(browser, stack, tenant)
    try:
        await page.goto(f"{stack.gateway_url}/#/admin/suppressions")
        await expect(page.get_by_test_id("admin-suppressions")).to_have_text("配信停止リスト")
        table = page.get_by_test_id("admin-section")
        await expect(table).to_contain_text(address)
        await expect(table).to_contain_text("手動で追加")

        # one added here, found by the search, then removed
        other = f"also-{uuid.uuid4().hex[:8]}@example.jp"
        await page.get_by_test_id("admin-new").click()
        await page.locator("#f-address").fill(other)
        await page.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("保存しました。")
        await page.locator("#filter-query").fill(other)
        rows = page.locator("[data-testid=admin-section] tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text(other)
        await shot(page, "outreach-suppressions-ja")
        await rows.get_by_test_id("admin-remove").click()
        await page.get_by_test_id("admin-remove-confirm").click()
        await expect(page.get_by_test_id("admin-section")).not_to_contain_text(other)
        listed = await api(stack, admin, "GET", "/suppressions")
        assert [s["address"] for s in listed["suppressions"]] == [address]
    finally:
        await page.context.close()


async def test_an_agent_without_manage_outreach_sees_no_campaigns(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, login, _ = await own_operator(stack, admin, tenant, display_name="Agent", roles=["agent"])
    ctx = await context(browser, "ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, login, OWN_PASSWORD)
        await expect(page.get_by_test_id("nav-contacts")).to_be_visible()
        await expect(page.get_by_test_id("nav-campaigns")).to_have_count(0)
        await page.get_by_test_id("nav-contacts").click()
        await expect(page.get_by_test_id("contacts")).to_be_visible()
        await expect(page.get_by_test_id("contacts-tab-lists")).to_have_count(0)
        # the administrator has it
        page2 = await signed_in(browser, stack, tenant)
        await expect(page2.get_by_test_id("nav-campaigns")).to_have_text("キャンペーン")
        await page2.context.close()
    finally:
        await ctx.close()


async def test_custom_fields_feed_the_segment_editor_and_refusals_are_in_japanese(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    page = await signed_in(browser, stack, tenant)
    try:
        await page.goto(f"{stack.gateway_url}/#/contacts/fields")
        await page.get_by_test_id("field-add").click()
        await page.get_by_test_id("field-key").fill("Bad Key")
        await page.get_by_test_id("field-label").fill("プラン")
        await page.get_by_test_id("fields-save").click()
        await expect(page.get_by_test_id("fields-notice")).to_contain_text("カスタム項目のキー")
        assert (await api(stack, admin, "GET", "/contact-fields"))["fields"] == []
        await page.get_by_test_id("field-key").fill("plan")
        await page.get_by_test_id("fields-save").click()
        await expect(page.get_by_test_id("fields-notice")).to_have_text("保存しました。")
        stored = await api(stack, admin, "GET", "/contact-fields")
        assert stored["fields"] == [{"key": "plan", "label": "プラン", "type": "text"}]

        domain = f"plan-{uuid.uuid4().hex[:8]}.example"
        await list_with(
            stack,
            admin,
            "プラン別",
            [
                {"address": f"g1@{domain}", "custom": {"plan": "gold"}},
                {"address": f"g2@{domain}", "custom": {"plan": "gold"}},
                {"address": f"f1@{domain}", "custom": {"plan": "free"}},
            ],
        )
        await page.goto(f"{stack.gateway_url}/#/contacts/segments/new")
        count = page.get_by_test_id("live-count")
        await expect(count).to_have_text("すべての値を入力すると件数を表示します")
        cond = page.get_by_test_id("condition")
        await cond.get_by_test_id("cond-field").select_option(label="プラン")
        await cond.get_by_test_id("cond-value").fill("gold")
        await expect(count).to_have_text("2件の連絡先")

        # a date field offers the date operators; a bad number of days is refused at its row
        await page.get_by_test_id("cond-add").click()
        second = cond.nth(1)
        await second.get_by_test_id("cond-field").select_option(label="最終連絡日時")
        await second.get_by_test_id("cond-op").select_option(label="が過去次の日数以内")
        await second.get_by_test_id("cond-value").fill("-1")
        problem = page.get_by_test_id("segment-problem")
        await expect(problem).to_contain_text("条件の値")
        await expect(second).to_have_class("row gap cond invalid")
        await second.get_by_test_id("cond-remove").click()
        await expect(problem).to_have_count(0)
        await expect(count).to_have_text("2件の連絡先")

        # a campaign with an unknown reserved word is refused naming the body
        await page.goto(f"{stack.gateway_url}/#/campaigns/new")
        await page.get_by_test_id("camp-name").fill("言葉の誤り")
        await page.get_by_test_id("camp-audience").select_option(label="プラン別")
        await page.get_by_test_id("camp-subject").fill("お知らせ")
        await page.get_by_test_id("camp-body").fill("{{customer.nickname}} 様")
        await page.get_by_test_id("camp-save").click()
        refusal = page.get_by_test_id("camp-error")
        await expect(refusal).to_have_attribute("data-field", "body")
        await expect(refusal).to_contain_text("本文")
        await expect(refusal).to_contain_text("customer.nickname")
        assert (await api(stack, admin, "GET", "/campaigns"))["campaigns"] == []

        # the same screens in English
        await page.get_by_test_id("lang").click()
        await page.goto(f"{stack.gateway_url}/#/contacts/lists")
        await expect(page.get_by_test_id("contacts-tab-segments")).to_have_text("Segments")
        await expect(page.get_by_test_id("nav-campaigns")).to_have_text("Campaigns")
        row = page.get_by_test_id("list-row").filter(has_text="プラン別")
        await expect(row.get_by_test_id("list-count")).to_have_text("3")
    finally:
        await page.context.close()
