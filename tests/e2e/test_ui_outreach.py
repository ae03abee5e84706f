"""Proactive outreach in a real browser, in Japanese (issue 20, OUT-6): an administrator
creates a contact list and imports a CSV file with a bad line — the line's error is listed
and the good lines are imported —, renames and deletes it; builds a segment whose count
changes as the conditions change; defines a custom field and finds contacts by it, with
refusals read in Japanese at their place; sees an address suppressed through the API in
the unsubscribe list. An agent without manage_outreach sees no Campaigns. The campaigns'
screens are test_ui_campaigns.py (which uses the helpers here)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import OWN_PASSWORD, own_operator
from tests.e2e.test_accounts import admin_of, call
from tests.helpers import Tenant

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
        await expect(page.get_by_test_id("member-search")).to_have_accessible_name(
            "名前・アドレス・会社名で検索"
        )
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
