"""The Reports section and the Exports screen of the web UI (issue 19), in a real browser
against the whole running system (the shared test stack: every service, reporting with its
consumers, real SMTP intake): a supervisor opens Reports and sees today's received count
move when a mail arrives, downloads the report's CSV (the same numbers as the table under
the chart), watches the live queue take the new waiting mail without reloading, and runs an
export with chosen columns to its download, and reads a customer's survey rating in the
Satisfaction report (issue 20); an operator without `see_reports` is offered no Reports
and the route refuses. Screenshots at 1280×800 in Japanese go to the artifacts."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_surveys import MORE, mailed, rating_links, set_status, survey_on
from tests.e2e.test_surveys import page as answer_page
from tests.e2e.test_ui import PASSWORD, mail_in, operator
from tests.helpers import Tenant, api_get, eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e

ZONE = "Asia/Tokyo"
SLOW = 30_000  # ms: a mail goes through intake, tickets and reporting's roll-up first


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def downloaded(within: Page | Locator, test_id: str) -> tuple[str, str]:
    """Click a download link: the file's suggested name and its text (UTF-8, BOM dropped)."""
    page = within if isinstance(within, Page) else within.page
    async with page.expect_download() as info:
        await within.get_by_test_id(test_id).first.click()
    download = await info.value
    path = await download.path()
    return download.suggested_filename, Path(path).read_bytes().decode("utf-8-sig")


def today_row(page: Page) -> Locator:
    today = datetime.now(ZoneInfo(ZONE)).date().isoformat()
    return (
        page.get_by_test_id("report-table")
        .locator(f"[data-testid=report-row][data-period='{today}']")
        .locator("td[data-col=received]")
    )


async def supervisor_page(
    stack: Stack, browser: Browser
) -> tuple[Tenant, str, str, BrowserContext, Page]:
    """A new tenant (and its administrator's token), a supervisor of its inbox (their id)
    signed in (Japanese, 1280×800)."""
    tenant, admin = await admin_of(stack)
    sue_id, sue = await operator(stack, admin, tenant, "鈴木 監督", ["supervisor"])
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    await sign_in(page, stack.gateway_url, sue, PASSWORD)
    await expect(page.get_by_test_id("me")).to_have_text("鈴木 監督")
    return tenant, admin, sue_id, ctx, page


async def test_a_supervisor_sees_todays_received_count_move_and_downloads_the_csv(
    stack: Stack, browser: Browser
) -> None:
    tenant, _, _, ctx, page = await supervisor_page(stack, browser)
    try:
        await mail_in(stack, tenant.address, f"Order {uuid.uuid4().hex[:6]}")
        await page.get_by_test_id("nav-reports").click()
        await expect(page.get_by_test_id("reports-page")).to_have_attribute(
            "data-section", "volume"
        )
        # any IANA zone: the days are Tokyo's
        await page.get_by_test_id("tz").fill(ZONE)
        await page.get_by_test_id("tz").press("Enter")
        received = today_row(page)
        # the first mail is counted (reporting folded it in), then a second one moves it
        await expect(received).to_have_text("1", timeout=SLOW)
        await mail_in(stack, tenant.address, f"Order {uuid.uuid4().hex[:6]}")
        await expect(received).to_have_text("2", timeout=SLOW)
        await expect(page.get_by_test_id("total-received-value")).to_have_text("2")
        await expect(page.get_by_test_id("report-chart").locator("svg")).to_be_visible()
        await shot(page, "reports-volume-ja")

        # the CSV is the table's numbers: today's row and the totals row
        name, text = await downloaded(page, "report-csv")
        assert name.startswith("volume_") and name.endswith(".csv")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["period", "start", "end", "received", "sent"]
        by_period = {r[0]: r for r in rows[1:]}
        today = datetime.now(ZoneInfo(ZONE)).date().isoformat()
        assert by_period[today][3] == "2"
        assert by_period[today][1].startswith(f"{today}T00:00:00+09:00")
        assert by_period["total"][3] == "2"
        assert len(rows) == 1 + 7 + 1  # the last 7 days, then the totals

        # a parameter the server refuses is told in the UI's language, naming what to change
        await page.get_by_test_id("period-preset").select_option("12m")
        await page.get_by_test_id("report-granularity").select_option("hour")
        await expect(page.get_by_test_id("report-error")).to_contain_text("92日以内")
        await page.get_by_test_id("report-granularity").select_option("month")
        await expect(page.get_by_test_id("report-error")).to_have_count(0)
        # 12 months back from this month's first day: 13 months, then the totals
        await expect(page.get_by_test_id("report-row")).to_have_count(13 + 1)
        await expect(page.get_by_test_id("report-row").last).to_contain_text("合計")

        # the other reports draw their chart and table from the same filters
        for report in ("topics", "operators", "response_times"):
            await page.get_by_test_id(f"reports-nav-{report}").click()
            await expect(page.get_by_test_id("reports-page")).to_have_attribute(
                "data-section", report
            )
            await expect(page.get_by_test_id("report-chart").locator("svg")).to_be_visible()
            await expect(page.get_by_test_id("report-error")).to_have_count(0)
            await shot(page, f"reports-{report}-ja")
        await page.get_by_test_id("basis-business").check()  # response times in business hours
        await expect(page.get_by_test_id("report-error")).to_have_count(0)
        await expect(page.get_by_test_id("report-row").last).to_contain_text("合計")
    finally:
        await ctx.close()


async def test_the_satisfaction_report_shows_the_answered_surveys_rating(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    """A ticket resolved by the administrator, its survey answered 4 from the mail's link:
    the supervisor's Satisfaction report (満足度) shows the rating in its totals and table,
    the additional question's average and the customer's comment."""
    tenant, admin, _, ctx, page = await supervisor_page(stack, browser)
    try:
        await survey_on(stack, admin, tenant.inbox_id, questions=MORE[:1])
        subject = f"Order {uuid.uuid4().hex[:6]}"
        await mail_in(stack, tenant.address, subject)
        ticket = await ticket_by_subject(stack, admin, subject)
        await set_status(stack, admin, ticket["id"], "resolved")
        [got] = await mailed(smtp_peer, tenant, ticket["number"])
        assert (await answer_page(rating_links(got)[3]))[0] == 200  # rated 4
        form = {"q.speed": "5", "comment": "とても早かったです"}
        form_url = rating_links(got)[0].split("?", 1)[0]
        assert (await answer_page(form_url, method="POST", data=form))[0] == 200

        async def counted() -> bool:  # reporting has the answer, with the question's
            code, body = await api_get(stack, admin, "/api/v1/reports/satisfaction")
            return code == 200 and [q["answered"] for q in body["per_question"]] == [1]

        await eventually(counted, timeout=SLOW / 1000)
        await page.get_by_test_id("nav-reports").click()
        await page.get_by_test_id("reports-nav-satisfaction").click()
        await expect(page.get_by_test_id("reports-page")).to_have_attribute(
            "data-section", "satisfaction"
        )
        await expect(page.get_by_test_id("reports-page").locator("h1")).to_have_text("満足度")
        await expect(page.get_by_test_id("total-average_rating-value")).to_have_text("4")
        await expect(page.get_by_test_id("total-response_rate-value")).to_have_text("100.0%")
        totals = page.get_by_test_id("report-row").last
        await expect(totals).to_contain_text("合計")
        await expect(totals.locator("td[data-col=rating_4]")).to_have_text("1")
        await expect(totals.locator("td[data-col=average_rating]")).to_have_text("4")
        operator_row = page.get_by_test_id("report-row").filter(has_text="担当者")
        await expect(operator_row.locator("td[data-col=surveys_answered]")).to_have_text("1")
        await expect(page.get_by_test_id("report-chart").locator("svg")).to_be_visible()
        question = page.get_by_test_id("sat-question")
        await expect(question.locator("th")).to_have_text(MORE[0]["text_ja"])
        await expect(question.get_by_test_id("sat-question-average")).to_have_text("5")
        comment = page.get_by_test_id("sat-comment")
        await expect(comment.get_by_test_id("sat-comment-text")).to_have_text("とても早かったです")
        await expect(comment).to_contain_text(f"#{ticket['number']}・評価 4")
        await shot(page, "reports-satisfaction-ja")
        name, text = await downloaded(page, "report-csv")
        assert name.startswith("satisfaction_")
        rows = list(csv.reader(io.StringIO(text)))
        table = rows[: rows.index([])]  # then the questions and the comments
        assert table[-1][0] == "total" and table[-1][table[0].index("average_rating")] == "4.0"
        assert rows[-1][-2:] == ["4", "とても早かったです"]
    finally:
        await ctx.close()


async def test_the_live_queue_shows_a_new_waiting_mail_without_a_reload(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin, sue_id, ctx, page = await supervisor_page(stack, browser)
    subject = f"Order {uuid.uuid4().hex[:6]}"
    try:
        await mail_in(stack, tenant.address, f"Order {uuid.uuid4().hex[:6]}")
        await page.get_by_test_id("nav-reports").click()
        await page.get_by_test_id("reports-nav-live_queue").click()
        total = page.get_by_test_id("queue-total").get_by_test_id("queue-waiting")
        help_desk = page.locator(f"[data-testid=queue-row][data-inbox='{tenant.inbox_id}']")
        await expect(total).to_have_text("1", timeout=SLOW)
        url = page.url
        # a mail arrives: pushed over the live socket, no reload, no click
        await mail_in(stack, tenant.address, subject)
        await expect(total).to_have_text("2", timeout=SLOW)
        await expect(help_desk.get_by_test_id("queue-waiting")).to_have_text("2")
        assert page.url == url
        await expect(page.get_by_test_id("live-queue-chart").locator("svg")).to_be_visible()
        await shot(page, "reports-live-queue-ja")
        # live assignment: both unassigned; one assigned to the supervisor moves the chart
        await page.get_by_test_id("reports-nav-live_assignment").click()
        unassigned = page.locator("[data-testid=assignment-row][data-operator='']")
        await expect(unassigned.get_by_test_id("assignment-open")).to_have_text("2", timeout=SLOW)
        ticket = await ticket_by_subject(stack, admin, subject)
        code, body, _ = await call(
            stack, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"assignee_id": sue_id}, token=admin
        )
        assert code == 200, body
        sue_row = page.locator(f"[data-testid=assignment-row][data-operator='{sue_id}']")
        await expect(sue_row).to_contain_text("鈴木 監督", timeout=SLOW)
        await expect(sue_row.get_by_test_id("assignment-open")).to_have_text("1")
        await expect(unassigned.get_by_test_id("assignment-open")).to_have_text("1")
        assert page.url.endswith("#/reports/live_assignment")
        await shot(page, "reports-live-assignment-ja")
    finally:
        await ctx.close()


async def test_an_export_with_chosen_columns_shows_its_progress_and_downloads(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin, _, ctx, page = await supervisor_page(stack, browser)
    subjects = [f"Order {uuid.uuid4().hex[:6]}" for _ in range(3)]
    try:
        for subject in subjects:
            await mail_in(stack, tenant.address, subject)
        await page.get_by_test_id("nav-exports").click()
        await page.get_by_test_id("export-kind").select_option("tickets_csv")
        columns = page.get_by_test_id("export-columns")
        await columns.get_by_test_id("export-columns-none").click()
        for c in ("number", "subject", "status"):
            await columns.locator(f"[data-column={c}]").check()
        for subject in subjects:  # filed before the export starts
            await ticket_by_subject(stack, admin, subject)
        await page.get_by_test_id("export-start").click()
        row = page.get_by_test_id("export-row").first
        await expect(row.get_by_test_id("export-progress")).to_be_visible()
        await expect(row).to_have_attribute("data-state", "done", timeout=SLOW)
        await expect(row.get_by_test_id("export-state")).to_have_text("完了：3件")
        progress = row.get_by_test_id("export-progress")  # done / total of the server's
        await expect(progress).to_have_attribute("max", "3")
        await expect(progress).to_have_attribute("value", "3")
        await shot(page, "exports-ja")
        name, text = await downloaded(page, "export-download")
        assert name.startswith("tickets-") and name.endswith(".csv")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["number", "subject", "status"]
        assert sorted(r[1] for r in rows[1:]) == sorted(subjects)
        assert {r[2] for r in rows[1:]} == {"open"}

        # a report's CSV as an export: the volume report's table, by month
        await page.get_by_test_id("export-kind").select_option("report_csv")
        await page.get_by_test_id("export-report").select_option("volume")
        await page.get_by_test_id("export-granularity").select_option("month")
        await page.get_by_test_id("export-start").click()
        row = page.locator("[data-testid=export-row]").filter(has_text="レポート（CSV）").first
        await expect(row).to_have_attribute("data-state", "done", timeout=SLOW)
        name, text = await downloaded(row, "export-download")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == ["period", "start", "end", "received", "sent"]
        assert rows[-1][0] == "total" and rows[-1][3] == "3"
    finally:
        await ctx.close()


async def test_an_operator_without_see_reports_is_offered_no_reports_and_the_route_refuses(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, agent = await operator(stack, admin, tenant, "Aoki Agent", ["agent"])
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, agent, PASSWORD)
        await expect(page.get_by_test_id("me")).to_have_text("Aoki Agent")
        await expect(page.get_by_test_id("nav-reports")).to_have_count(0)
        await expect(page.get_by_test_id("nav-exports")).to_have_count(0)
        await page.goto(f"{stack.gateway_url}/#/reports/volume")
        await expect(page.get_by_test_id("reports-refused")).to_contain_text("see reports")
        await expect(page.get_by_test_id("report-chart")).to_have_count(0)
        await page.goto(f"{stack.gateway_url}/#/exports")
        await expect(page.get_by_test_id("reports-refused")).to_contain_text("export")
        # and the server refuses too, whatever a page would ask
        status = await page.evaluate("fetch('/api/v1/reports/volume').then((r) => r.status)")
        assert status == 403
    finally:
        await ctx.close()
    code, _, _ = await call(stack, "GET", "/api/v1/reports/volume", token=admin)
    assert code == 200
