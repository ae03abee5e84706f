"""The administration screens in a real browser (issue 16, items 1, 4 and 8): each
section's table holds only its own rows, even when the answer of the section visited
before comes late; the records the API keeps — the operation log with its CSV, the login
history, who is logged in, locked logins, web forms and mail imports — are screens with
filters, each offered with its permission; a server's refusal reads in Japanese."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import OWN_PASSWORD, own_operator
from tests.e2e.test_accounts import admin_of, call, log_in, new_operator
from tests.helpers import eventually, make_mail

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


OPERATORS = re.compile(r".*/api/v1/operators\?include_inactive=true$")


def rows(page: Page) -> Any:
    return page.get_by_test_id("admin-row")


async def api_items(stack: Stack, token: str, path: str) -> list[dict[str, Any]]:
    code, body, _ = await call(stack, "GET", path, token=token)
    assert code == 200, body
    items: list[dict[str, Any]] = body["items"]
    return items


async def lock_out(stack: Stack, login: str) -> None:
    """Ten wrong passwords from as many addresses: the login is locked."""
    for i in range(10):
        await log_in(stack, login, f"wrong {i}", f"198.51.100.{i + 1}")
    assert (await log_in(stack, login, "wrong again", "198.51.100.99"))[0] == 429


async def test_each_administration_section_holds_only_its_own_rows(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    tag = uuid.uuid4().hex[:6]
    await own_operator(stack, admin, tenant, display_name=f"Olga {tag}", roles=["agent"])
    for path, body in (
        ("/api/v1/templates", {"name": f"Refund {tag}", "body_text": "We refund you."}),
        ("/api/v1/template-folders", {"name": f"Billing {tag}"}),
        ("/api/v1/blocklist", {"kind": "domain", "value": f"spam-{tag}.example"}),
    ):
        code, made, _ = await call(stack, "POST", path, body, token=admin)
        assert code == 201, made
    ctx = await context(browser)
    page = await ctx.new_page()
    held: list[Route] = []
    release = asyncio.Event()
    landed = asyncio.Event()

    async def hold(route: Route) -> None:
        if held:  # only the first answer comes late
            await route.continue_()
            return
        held.append(route)
        response = await route.fetch()  # the real answer, delivered after the next section's
        await release.wait()
        await route.fulfill(response=response)
        landed.set()

    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-admin")).to_be_visible()
        # the operators' answer comes late, after the administrator moved on to Templates
        await page.route(OPERATORS, hold)
        await page.goto(f"{stack.gateway_url}/#/admin/operators")
        await eventually(lambda: asyncio.sleep(0, bool(held)), timeout=10)
        await page.get_by_test_id("admin-templates").click()
        templates = [t["name"] for t in await api_items(stack, admin, "/api/v1/templates")]
        await expect(rows(page)).to_have_count(len(templates))
        async with page.expect_event("requestfinished", lambda r: bool(OPERATORS.match(r.url))):
            release.set()
            await landed.wait()
        # the late answer has reached the page's code: two frames later it must have changed
        # nothing
        await page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        await page.unroute(OPERATORS)
        await expect(rows(page)).to_have_count(len(templates))
        await expect(rows(page).get_by_role("button", name="Reset password")).to_have_count(0)
        await expect(page.get_by_test_id("admin-table")).to_contain_text(f"Refund {tag}")

        # every section in a row: its table has exactly the API's rows, its own columns
        first_cells = {
            "operators": [
                o["display_name"]
                for o in await api_items(stack, admin, "/api/v1/operators?include_inactive=true")
            ],
            "roles": [r["name"] for r in await api_items(stack, admin, "/api/v1/roles")],
            "templates": templates,
            "folders": [
                f["name"] for f in await api_items(stack, admin, "/api/v1/template-folders")
            ],
            "blocklist": ["Domain"],
            "inboxes": ["Help"],
            "thresholds": ["Help"],
            "assignment": ["Help"],
            "operator-routing": [
                o["display_name"] for o in await api_items(stack, admin, "/api/v1/operators")
            ],
            "autoreply": ["Help"],
            "approval": [
                f"{p['name']} (built in)" if p["builtin"] else p["name"]
                for p in (await call(stack, "GET", "/api/v1/approval-policies", token=admin))[1][
                    "policies"
                ]
            ],
        }
        counts = {
            "signatures": 0,
            "rules": 0,
            "webhooks": 0,
            "calendars": 0,
            "sla": 0,
            "dkim": 0,
            "survey": 0,  # one inbox's settings form (test_ui_surveys.py), no table
            "suppressions": 0,  # the unsubscribe list (test_ui_outreach.py)
            "customer-lookup": 0,  # one settings form (test_ui_lookup.py), no table
            "channels": 0,  # cards per channel (test_ui_channels.py), no table
            "notices": 0,
            "mailboxes": 0,
            "smtp": 0,
            "login_locks": 0,
            "forms": 0,
            "imports": 0,
            "logins": len(await api_items(stack, admin, "/api/v1/logins?limit=100")),
            "sessions": len(await api_items(stack, admin, "/api/v1/sessions")),
        }
        nav = page.locator("nav.side a")
        keys = [
            (await a.get_attribute("data-testid") or "").removeprefix("admin-")
            for a in await nav.all()
        ]
        assert "operations" in keys and "imports" in keys and "security" in keys
        for key in keys:
            await page.get_by_test_id(f"admin-{key}").click()
            section = page.locator(f"[data-testid=admin-section][data-section={key}]")
            await expect(section).to_be_visible()
            if key == "security":  # one settings form, no table
                await expect(page.get_by_test_id("admin-table")).to_have_count(0)
                continue
            if key == "operations":  # grows with the log; its rows are operations
                await expect(rows(page).first).to_be_visible()
                await expect(rows(page).get_by_role("button")).to_have_count(0)
                continue
            if key in first_cells:
                cells = rows(page).locator("td:first-child")
                await expect(cells).to_have_text(first_cells[key])
            else:
                await expect(rows(page)).to_have_count(counts[key])
            reset = rows(page).get_by_role("button", name="Reset password")
            await expect(reset).to_have_count(
                len(first_cells["operators"]) if key == "operators" else 0
            )
        await shot(page, "admin-every-section")
    finally:
        release.set()
        await ctx.close()


async def test_the_records_are_screens_with_filters_each_offered_with_its_permission(
    stack: Stack, browser: Browser, tmp_path: Any
) -> None:
    tenant, admin = await admin_of(stack)
    tag = uuid.uuid4().hex[:6]
    _, sue, _ = await own_operator(
        stack, admin, tenant, display_name="Sue Supervisor", roles=["supervisor"]
    )
    code, _, _ = await call(
        stack,
        "PUT",
        "/api/v1/roles/auditor",
        {"description": "reads the log", "permissions": ["view_operation_log"]},
        token=admin,
    )
    assert code in (200, 201)
    _, auditor, _ = await own_operator(stack, admin, tenant, display_name="Al", roles=["auditor"])
    # a session to end, and wrong passwords
    _, _, leaver_token = await own_operator(stack, admin, tenant, display_name="Lee Leaver")
    _, locked, temporary = await new_operator(stack, admin, tenant, display_name="Lou Locked")
    await lock_out(stack, locked)
    code, _, _ = await call(
        stack,
        "POST",
        "/api/v1/blocklist",
        {"kind": "address", "value": f"x-{tag}@spam.example"},
        token=admin,
    )
    assert code == 201

    async def logged(action: str) -> bool:
        items = await api_items(stack, admin, f"/api/v1/operations?action={action}")
        return bool(items)

    await eventually(lambda: logged("addBlock"), timeout=20)

    eml = tmp_path / "old.eml"
    eml.write_bytes(make_mail(f"Imported long ago {tag}", to=tenant.address).as_bytes())
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-admin")).to_be_visible()

        # the operation log, filtered by operation, and its CSV with the same filter
        await page.goto(f"{stack.gateway_url}/#/admin/operations")
        await expect(rows(page).first).to_be_visible()
        await page.locator("#filter-action").fill("addBlock")
        await expect(rows(page)).to_have_count(1)
        await expect(rows(page)).to_contain_text("POST /api/v1/blocklist")
        csv = page.get_by_test_id("admin-csv")
        href = await csv.get_attribute("href")
        assert href is not None and "action=addBlock" in href
        got = await page.request.get(f"{stack.gateway_url}{href}")
        text = await got.text()
        assert got.status == 200 and "addBlock" in text and "createOperator" not in text
        await page.locator("#filter-action").fill("")
        await page.locator("#filter-operator_id").select_option(label="Boss")
        await expect(rows(page).first).to_contain_text("Boss")
        await shot(page, "admin-operation-log")

        # the login history: failures only
        await page.get_by_test_id("admin-logins").click()
        await page.locator("#filter-failures_only").check()
        failed = rows(page).filter(has_text=locked)
        await expect(failed.filter(has_text="Wrong password").first).to_be_visible()
        await expect(rows(page).filter(has_text="Signed in")).to_have_count(0)

        # who is logged in: the leaver's session ended from here stops working at once
        await page.get_by_test_id("admin-sessions").click()
        leaving = rows(page).filter(has_text="Lee Leaver")
        await expect(leaving).to_have_count(1)
        await leaving.get_by_test_id("admin-remove").click()
        await page.get_by_test_id("admin-remove-confirm").click()
        await expect(leaving).to_have_count(0)
        assert (await call(stack, "GET", "/api/v1/me", token=leaver_token))[0] == 401

        # a locked login, unlocked here, signs in at once (the test stack's locks last
        # LOGIN_LOCK_S: it is locked anew just before)
        await lock_out(stack, locked)
        await page.get_by_test_id("admin-login_locks").click()
        lock = rows(page).filter(has_text=locked)
        await expect(lock).to_contain_text("Login")
        await lock.get_by_test_id("admin-remove").click()
        await page.get_by_test_id("admin-remove-confirm").click()
        await expect(lock).to_have_count(0)
        assert (await log_in(stack, locked, temporary, "198.51.100.200"))[0] == 201

        # a web form made here, listed with its public address
        await page.get_by_test_id("admin-forms").click()
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("admin-form")
        await form.locator("#f-inbox_id").select_option(label="Help")
        await form.locator("#f-name").fill(f"Contact us {tag}")
        await page.get_by_test_id("admin-save").click()
        made = rows(page).filter(has_text=f"Contact us {tag}")
        await expect(made).to_contain_text("/submissions")

        # an old mail imported here: the job's progress, then the ticket
        await page.get_by_test_id("admin-imports").click()
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("admin-form")
        await form.locator("#f-inbox_id").select_option(label="Help")
        await form.locator("#f-file").set_input_files(str(eml))
        await page.get_by_test_id("admin-save").click()
        job = rows(page).filter(has_text="old.eml")
        await expect(job).to_contain_text("Done", timeout=20_000)
        await expect(job).to_contain_text("1 of 1: 1 new")
        await shot(page, "admin-imports")
    finally:
        await ctx.close()
    forms = await api_items(stack, admin, "/api/v1/forms")
    assert [f["name"] for f in forms] == [f"Contact us {tag}"]

    # each record with its permission: a supervisor reads the log (and downloads it),
    # not the logins; an auditor reads the log without the CSV
    for login, csv_links in ((sue, 1), (auditor, 0)):
        ctx = await context(browser, lang="ja")
        page = await ctx.new_page()
        try:
            await sign_in(page, stack.gateway_url, login, OWN_PASSWORD)
            await page.goto(f"{stack.gateway_url}/#/admin/operations")
            await expect(page.get_by_role("heading", name="操作ログ")).to_be_visible()
            await expect(rows(page).first).to_be_visible()
            await expect(page.get_by_test_id("admin-csv")).to_have_count(csv_links)
            await expect(page.get_by_test_id("admin-logins")).to_have_count(0)
            blocked = page.locator("nav.side span.disabled", has_text="ログイン履歴")
            await expect(blocked).to_have_attribute("title", re.compile("オペレーターの管理"))
            if csv_links:
                await shot(page, "admin-operation-log-ja")
        finally:
            await ctx.close()


async def test_a_refusal_from_the_server_reads_in_japanese_with_its_detail_kept(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, taken, _ = await new_operator(stack, admin, tenant, display_name="Already Here")
    assert taken
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await page.goto(f"{stack.gateway_url}/#/admin/operators")
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("admin-form")
        await form.locator("#f-login").fill(taken)
        await form.locator("#f-display_name").fill("Twin")
        await page.get_by_test_id("admin-save").click()
        notice = page.get_by_test_id("admin-notice")
        # the code's own words first (already_exists, field login), the server's after
        await expect(notice).to_have_text(
            re.compile(
                r"^ログインID：すでに存在します。（詳細：an operator with this login exists）$"
            )
        )
        await shot(page, "admin-error-ja")
    finally:
        await ctx.close()
