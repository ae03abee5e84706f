"""Routing in the web UI (issue 18), in Debian's chromium against the whole running
system: an administrator builds the rule "subject contains 返品 → label 返品, assign by the
inbox's strategy" with the condition builder, tries it on a stored ticket picked by its
number, saves it, and a mail sent by SMTP appears labelled and assigned to the online
agent live, the timeline saying which rule routed it and how it was assigned; the rules
list reorders by dragging and by its ↑ ↓ buttons and switches a rule off; a refused
regular expression is shown at its condition in Japanese; a calendar lists Japan's
public holidays and refuses a slot ending before it starts at its row; the presence
switch sets and keeps the operator's presence with its heartbeat; a ticket's SLA due
time counts down and turns from on time to breached as the clock moves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import PASSWORD, mail_in, operator, row
from tests.helpers import Tenant, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def ok(stack: Stack, token: str, method: str, path: str, body: Any = None) -> Any:
    code, answer, _ = await call(stack, method, path, body, token=token)
    assert code in (200, 201, 204), (method, path, code, answer)
    return answer


async def open_admin(page: Page, section: str) -> None:
    await page.get_by_test_id("nav-admin").click()
    await page.get_by_test_id(f"admin-{section}").click()
    await expect(
        page.locator(f"[data-testid=admin-section][data-section={section}]")
    ).to_be_visible()


async def help_assignment(page: Page) -> Any:
    """The Help inbox's assignment form, opened in the administration."""
    await open_admin(page, "assignment")
    await (
        page.get_by_test_id("admin-row")
        .filter(has_text="Help")
        .get_by_test_id("admin-edit")
        .click()
    )
    return page.get_by_test_id("assignment-form")


async def present(stack: Stack, browser: Browser, login: str) -> tuple[Any, Page]:
    """The operator signed in in a browser of their own and switched online there."""
    ctx = await context(browser)
    page = await ctx.new_page()
    await sign_in(page, stack.gateway_url, login, PASSWORD)
    await page.get_by_test_id("presence-select").select_option("online")
    await expect(page.get_by_test_id("presence")).to_have_attribute("data-effective", "online")
    return ctx, page


async def test_an_administrator_builds_a_rule_tries_it_and_a_mail_arrives_labelled_and_assigned(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    aiko_id, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    # a stored ticket to try the rule on, from before the rule existed
    tag = uuid.uuid4().hex[:6]
    first = f"返品の相談 {tag}"
    await mail_in(stack, tenant.address, first, "注文した商品を返品したいです。\n")
    stored = await ticket_by_subject(stack, admin, first)
    assert stored["labels"] == [] and stored["assignee"] is None

    agent_ctx, agent = await present(stack, browser, aiko)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        # the inbox hands tickets to the least loaded online operator
        form = await help_assignment(page)
        await form.get_by_test_id("asg-strategy").select_option("least_loaded")
        await form.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("Saved.")
        await expect(page.get_by_test_id("admin-row").filter(has_text="Help")).to_contain_text(
            "Least loaded"
        )

        # the rule, built in the condition builder
        await open_admin(page, "rules")
        await expect(page.get_by_test_id("admin-empty")).to_be_visible()
        await page.get_by_test_id("rule-new").click()
        form = page.get_by_test_id("rule-form")
        await form.get_by_test_id("rule-name").fill("返品ルール")
        cond = form.get_by_test_id("cond").first
        await cond.get_by_test_id("cond-field").select_option("subject")
        await cond.get_by_test_id("cond-op").select_option("contains")
        await cond.get_by_test_id("cond-value").fill("返品")
        action = form.get_by_test_id("action").first
        await action.get_by_test_id("action-type").select_option("add_label")
        await action.get_by_test_id("action-value").fill("返品")
        await form.get_by_test_id("add-action").click()
        await (
            form.get_by_test_id("action")
            .nth(1)
            .get_by_test_id("action-type")
            .select_option("assign_by_strategy")
        )

        # tried on the stored ticket before saving: the condition held, what it would do
        dry = page.get_by_test_id("dry-run")
        await dry.get_by_test_id("dry-number").fill(str(stored["number"]))
        await dry.get_by_test_id("dry-go").click()
        result = dry.get_by_test_id("dry-result")
        await expect(result).to_have_attribute("data-matched", "true")
        await expect(result.get_by_test_id("dry-verdict")).to_have_text("It applies.")
        await expect(result).to_contain_text(first)
        await expect(result.get_by_test_id("dry-cond").last).to_contain_text(
            "Subject contains “返品”"
        )
        await expect(result.get_by_test_id("dry-actions")).to_contain_text("Add the label: 返品")
        await expect(result.get_by_test_id("dry-actions")).to_contain_text(
            "Assign by the inbox's strategy"
        )
        # and marked on the builder itself
        await expect(cond.get_by_test_id("cond-held")).to_have_attribute("data-held", "true")
        # nothing changed by trying (the stored ticket was meanwhile given to the online
        # agent by the inbox's strategy, as waiting tickets are)
        again = await ok(stack, admin, "GET", f"/api/v1/tickets/{stored['id']}")
        assert again["labels"] == []
        await shot(page, "routing-rule-dry-run")

        await form.get_by_test_id("rule-save").click()
        await expect(page.get_by_test_id("rule-form")).to_have_count(0)
        await expect(page.get_by_test_id("rule-row")).to_have_count(1)
        await expect(page.get_by_test_id("rule-row-name")).to_have_text("返品ルール")
        [saved] = (await ok(stack, admin, "GET", "/api/v1/rules"))["rules"]
        [leaf] = saved["conditions"]["conditions"]
        assert (leaf["field"], leaf["operator"], leaf["value"]) == ("subject", "contains", "返品")
        assert [a["type"] for a in saved["actions"]] == ["add_label", "assign_by_strategy"]

        # a mail by SMTP: the agent's list shows it labelled and assigned to her, live
        subject = f"返品について {tag}"
        await mail_in(stack, tenant.address, subject, "返品の方法を教えてください。\n")
        line = row(agent, subject)
        await expect(line).to_be_visible(timeout=20000)
        await expect(line).to_contain_text("返品")
        await expect(line.get_by_test_id("cell-assignee")).to_have_text("Aiko Agent", timeout=20000)
        ticket = await ticket_by_subject(stack, admin, subject)
        assert "返品" in ticket["labels"]
        assert ticket["assignee"]["id"] == aiko_id
        # she is told, by automatic routing (not thanked by name like a person)
        await expect(
            agent.get_by_test_id("toast-title").filter(has_text="automatic routing").first
        ).to_be_visible(timeout=15000)

        # the ticket's timeline says which rule routed it and how it was assigned
        await line.click()
        notes = agent.get_by_test_id("activity-note")
        await expect(
            notes.filter(has_text="rule “返品ルール”: Add the label: 返品").first
        ).to_be_visible(timeout=15000)
        await expect(notes.filter(has_text="assigned by least loaded")).to_be_visible()
        # the flag the rule set is said in words, not by its name
        flag = agent.get_by_test_id("activity").filter(has_text="Flags:")
        await expect(flag.first).to_contain_text("— → to be assigned by the inbox's strategy")
        await expect(agent.get_by_test_id("timeline")).not_to_contain_text("assign_by_strategy")
        await shot(agent, "routing-ticket-routed")
        # and in Japanese
        await agent.get_by_test_id("lang").click()
        await expect(
            notes.filter(has_text="ルール「返品ルール」：ラベルを付ける: 返品").first
        ).to_be_visible()
        await expect(notes.filter(has_text="担当の少ない人に割り当て")).to_be_visible()
        await expect(
            agent.get_by_test_id("activity").filter(has_text="フラグ:").first
        ).to_contain_text("— → 受信箱の方式で割り当て待ち")
    finally:
        await ctx.close()
        await agent_ctx.close()


async def make_rule(stack: Stack, admin: str, name: str, label: str) -> dict[str, Any]:
    rule: dict[str, Any] = await ok(
        stack,
        admin,
        "POST",
        "/api/v1/rules",
        {
            "name": name,
            "inbox_id": None,
            "enabled": True,
            "triggers": ["new_ticket"],
            "conditions": {
                "match": "all",
                "conditions": [{"field": "subject", "operator": "contains", "value": label}],
            },
            "actions": [{"type": "add_label", "value": label}],
            "once_per_ticket": False,
            "business_hours": None,
        },
    )
    return rule


RULE_FIELDS = (
    "name",
    "inbox_id",
    "enabled",
    "triggers",
    "conditions",
    "actions",
    "once_per_ticket",
    "business_hours",
)


async def rule_names(stack: Stack, admin: str) -> list[str]:
    return [r["name"] for r in (await ok(stack, admin, "GET", "/api/v1/rules"))["rules"]]


async def test_rules_reorder_by_dragging_and_by_buttons_and_switch_off(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    for name in ("A first", "B second", "C third"):
        await make_rule(stack, admin, name, name[0])
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await open_admin(page, "rules")
        names = page.get_by_test_id("rule-row-name")
        await expect(names).to_have_text(["A first", "B second", "C third"])
        # dragged: the third to the top
        rows = page.get_by_test_id("rule-row")
        await rows.nth(2).drag_to(rows.nth(0))
        await expect(names).to_have_text(["C third", "A first", "B second"])
        await expect(page.get_by_test_id("admin-notice")).to_have_text("The new order is saved.")
        assert await rule_names(stack, admin) == ["C third", "A first", "B second"]
        # the keyboard's way: ↓ on the first
        await rows.nth(0).get_by_test_id("rule-down").focus()
        await page.keyboard.press("Enter")
        await expect(names).to_have_text(["A first", "C third", "B second"])

        async def stored_order() -> bool:
            return await rule_names(stack, admin) == ["A first", "C third", "B second"]

        await eventually(stored_order, timeout=10)
        await expect(rows.nth(0).get_by_test_id("rule-up")).to_be_disabled()
        # switched off in place
        await rows.nth(1).get_by_test_id("rule-enabled").uncheck()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("“C third” is off.")
        stored = (await ok(stack, admin, "GET", "/api/v1/rules"))["rules"]
        assert [r["enabled"] for r in stored] == [True, False, True]
        await shot(page, "routing-rules-list")
        # its versions: switched off is the second
        await rows.nth(1).get_by_test_id("rule-edit").click()
        versions = page.get_by_test_id("rule-versions")
        await versions.locator("summary").click()
        await expect(versions.get_by_test_id("rule-version")).to_have_count(2)
        await expect(versions.get_by_test_id("rule-version").first).to_contain_text("version 2")
        await expect(versions.get_by_test_id("rule-version").first).to_contain_text("(off)")
        # saved by someone else meanwhile: this form's save is refused, saying so
        c_third = next(r for r in stored if r["name"] == "C third")
        await ok(
            stack,
            admin,
            "PUT",
            f"/api/v1/rules/{c_third['id']}",
            {**{k: c_third[k] for k in RULE_FIELDS}, "name": "C renamed", "version": 2},
        )
        form = page.get_by_test_id("rule-form")
        await form.get_by_test_id("rule-name").fill("C mine")
        await form.get_by_test_id("rule-save").click()
        await expect(form.get_by_test_id("form-error")).to_contain_text(
            "Someone else saved this meanwhile"
        )
        assert "C renamed" in await rule_names(stack, admin)
    finally:
        await ctx.close()


async def test_a_refused_pattern_is_shown_at_its_condition_in_japanese_and_nothing_is_saved(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await open_admin(page, "rules")
        await expect(page.locator("h1")).to_have_text("振り分けルール")
        await page.get_by_test_id("rule-new").click()
        form = page.get_by_test_id("rule-form")
        await form.get_by_test_id("rule-name").fill("後方参照")
        await form.get_by_test_id("cond").first.get_by_test_id("cond-value").fill("返品")
        await form.get_by_test_id("action-value").fill("返品")
        # tried on a ticket that does not exist: said in Japanese, naming the number
        dry = page.get_by_test_id("dry-run")
        await dry.get_by_test_id("dry-number").fill("999999")
        await dry.get_by_test_id("dry-go").click()
        await expect(dry.get_by_test_id("dry-error")).to_contain_text(
            "「チケット番号」：見つかりません"
        )
        # a nested OR group holding the bad pattern
        await form.get_by_test_id("add-group").click()
        inner = form.get_by_test_id("cond-group").nth(1)
        await expect(inner.get_by_test_id("group-match")).to_have_value("any")
        bad = inner.get_by_test_id("cond").first
        await bad.get_by_test_id("cond-field").select_option("body")
        await bad.get_by_test_id("cond-op").select_option("regex")
        await bad.get_by_test_id("cond-value").fill(r"(a+)+\1")
        await form.get_by_test_id("rule-save").click()
        error = form.get_by_test_id("form-error")
        await expect(error).to_have_attribute(
            "data-field", "conditions.conditions[1].conditions[0].value"
        )
        await expect(error).to_contain_text("入力内容に誤りがあります")
        await expect(error).to_contain_text("条件")
        await expect(bad).to_have_class("cond-leaf bad")
        await expect(form.get_by_test_id("cond").first).to_have_class("cond-leaf")
        assert await rule_names(stack, admin) == []
        await shot(page, "routing-rule-refused-ja")
    finally:
        await ctx.close()


ICAL = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//routing//JA
BEGIN:VEVENT
UID:obon@test
DTSTART;VALUE=DATE:20270813
DTEND;VALUE=DATE:20270814
SUMMARY:お盆休み
END:VEVENT
BEGIN:VEVENT
UID:nenmatsu@test
DTSTART;VALUE=DATE:20271230
DTEND;VALUE=DATE:20271231
RRULE:FREQ=YEARLY
SUMMARY:年末
END:VEVENT
END:VCALENDAR
"""


async def test_a_calendar_lists_japans_holidays_and_refuses_a_slot_ending_before_it_starts(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await open_admin(page, "calendars")
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("calendar-form")
        await form.get_by_test_id("calendar-name").fill("東京サポート")
        # Japan's public holidays are there without typing them: 成人の日 of next year,
        # the second Monday of January, in the app's Japanese date format
        year = date.today().year + 1
        holidays = form.get_by_test_id("public-holidays")
        await holidays.get_by_role("button", name="次の年").click()
        await expect(holidays.get_by_test_id("public-year")).to_have_text(str(year))
        jan = [date(year, 1, d) for d in range(8, 15)]
        seijin = next(d for d in jan if d.weekday() == 0)
        await expect(
            holidays.get_by_test_id("public-holiday").filter(has_text="成人の日")
        ).to_have_text(f"{seijin:%Y/%m/%d} 成人の日")
        # the second slot (Tuesday) made to end before it starts
        slot = form.get_by_test_id("slot").nth(1)
        await slot.get_by_test_id("slot-start-hour").select_option("18")
        await slot.get_by_test_id("slot-end-hour").select_option("09")
        # a closed day of its own
        await form.get_by_test_id("add-holiday").click()
        day = form.get_by_test_id("holiday").last
        await day.get_by_test_id("holiday-name").fill("創立記念日")
        await form.get_by_test_id("admin-save").click()
        error = form.get_by_test_id("form-error")
        await expect(error).to_have_attribute("data-field", "slots[1].end")
        await expect(error).to_contain_text("「営業時間 2 · 終了」")
        await expect(slot).to_have_class("row gap wrap bad")
        code, listed, _ = await call(stack, "GET", "/api/v1/calendars", token=admin)
        assert code == 200 and listed["calendars"] == []
        # marked to end the next day, it is saved
        await slot.get_by_test_id("slot-midnight").check()
        await form.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("calendar-form")).to_have_count(0)
        [cal] = (await ok(stack, admin, "GET", "/api/v1/calendars"))["calendars"]
        assert cal["public_holidays"] == "JP"
        assert cal["slots"][1]["crosses_midnight"] is True
        assert [h["name"] for h in cal["holidays"]] == ["創立記念日"]
        # closed days imported from an iCal file's whole-day events, one of them yearly
        await page.get_by_test_id("admin-edit").click()
        form = page.get_by_test_id("calendar-form")
        ical = form.get_by_test_id("ical")
        await ical.locator("summary").click()
        await ical.get_by_test_id("ical-text").fill(ICAL)
        await ical.get_by_test_id("ical-import").click()
        await expect(form.get_by_test_id("form-note")).to_have_text("休業日を2日取り込みました。")
        names = form.get_by_test_id("holiday-name")
        await expect(names).to_have_count(3)
        await expect(
            form.get_by_test_id("holiday").filter(has=page.locator("[value=お盆休み]"))
        ).to_have_count(1)
        [cal] = (await ok(stack, admin, "GET", "/api/v1/calendars"))["calendars"]
        assert sorted(h["name"] for h in cal["holidays"]) == ["お盆休み", "創立記念日", "年末"]
        assert next(h for h in cal["holidays"] if h["name"] == "年末")["yearly"] is True
        await shot(page, "routing-calendar-ja")
    finally:
        await ctx.close()


async def test_the_presence_switch_sets_the_presence_and_keeps_it_alive_with_a_heartbeat(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    ctx = await context(browser)
    page = await ctx.new_page()
    await page.clock.install()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        switch = page.get_by_test_id("presence")
        await expect(switch).to_have_attribute("data-effective", "offline")
        await page.get_by_test_id("presence-select").select_option("online")
        await expect(switch).to_have_attribute("data-effective", "online")
        token = (
            await call(stack, "POST", "/api/v1/sessions", {"login": aiko, "password": PASSWORD})
        )[1]["token"]
        mine = await ok(stack, token, "GET", "/api/v1/me/presence")
        assert mine["status"] == "online" and mine["effective"] == "online"
        # the heartbeat: 30 s later the page says "online" again by itself
        async with page.expect_request(
            lambda r: r.url.endswith("/api/v1/me/presence") and r.method == "PUT"
        ) as beat:
            await page.clock.run_for("00:31")
        assert (await beat.value).post_data_json == {"status": "online"}
        # away is kept across a reload, and no heartbeat revives "online"
        await page.get_by_test_id("presence-select").select_option("away")
        await expect(switch).to_have_attribute("data-effective", "away")
        await page.reload()
        await expect(page.get_by_test_id("presence-select")).to_have_value("away")
        assert (await ok(stack, token, "GET", "/api/v1/me/presence"))["status"] == "away"
    finally:
        await ctx.close()


async def sla_policy(stack: Stack, admin: str, tenant: Tenant, minutes: int) -> None:
    await ok(
        stack,
        admin,
        "POST",
        "/api/v1/sla-policies",
        {
            "name": "Fast answers",
            "enabled": True,
            "inbox_ids": [tenant.inbox_id],
            "categories": [],
            "priorities": [],
            "calendar_id": None,
            "first_response_minutes": minutes,
            "next_response_minutes": None,
            "resolution_minutes": None,
            "pause_statuses": ["pending"],
            "warning": {"before_minutes": 1},
        },
    )


async def test_a_tickets_sla_due_time_counts_down_and_turns_breached_as_the_clock_moves(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    # the policy, made in the administration: 3 minutes to a first response around the
    # clock, warned 1 minute before
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await open_admin(page, "sla")
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("sla-form")
        await form.get_by_test_id("sla-name").fill("Fast answers")
        await form.get_by_test_id("sla-inboxes").get_by_label("Help").check()
        await form.get_by_test_id("sla-first_response_minutes").fill("3")
        await form.get_by_test_id("sla-warning-value").fill("1")
        await form.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-row")).to_contain_text("Fast answers")
        await expect(page.get_by_test_id("admin-row")).to_contain_text("3 min")
    finally:
        await ctx.close()
    [policy] = (await ok(stack, admin, "GET", "/api/v1/sla-policies"))["policies"]
    assert policy["inbox_ids"] == [tenant.inbox_id] and policy["calendar_id"] is None
    assert policy["first_response_minutes"] == 3 and policy["warning"] == {"before_minutes": 1}
    assert policy["pause_statuses"] == ["pending"]
    subject = f"Where is my parcel {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    ticket = await ticket_by_subject(stack, admin, subject)

    async def due() -> Any:
        code, sla, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}/sla", token=admin)
        return sla if code == 200 and sla["targets"] else None

    await eventually(due, timeout=20)
    ctx = await context(browser)
    page = await ctx.new_page()
    await page.clock.install()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await row(page, subject).click()
        target = page.get_by_test_id("sla-target")
        await expect(target).to_have_attribute("data-kind", "first_response")
        await expect(target).to_have_attribute("data-state", "ok")
        await expect(target.get_by_test_id("sla-state")).to_have_text("On time")
        await expect(target.get_by_test_id("sla-countdown")).to_contain_text("left")
        await expect(page.get_by_test_id("sla-policy")).to_have_text("Fast answers")
        await shot(page, "routing-sla-ok")
        await page.clock.run_for("02:30")
        await expect(target).to_have_attribute("data-state", "warning")
        await expect(target.get_by_test_id("sla-state")).to_have_text("Due soon")
        await page.clock.run_for("01:00")
        await expect(target).to_have_attribute("data-state", "breached")
        await expect(target.get_by_test_id("sla-countdown")).to_contain_text("overdue by")
        await expect(target.get_by_test_id("sla-state")).to_have_css(
            "background-color", "rgb(253, 226, 223)"
        )
        await shot(page, "routing-sla-breached")
    finally:
        await ctx.close()


async def test_the_list_sorts_by_sla_due_time(stack: Stack, browser: Browser) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    await sla_policy(stack, admin, tenant, 600)
    tag = uuid.uuid4().hex[:6]
    first, second = f"Earlier {tag}", f"Later {tag}"
    for s in (first, second):
        await mail_in(stack, tenant.address, s)

        async def due(subject: str = s) -> bool:
            return bool((await ticket_by_subject(stack, admin, subject)).get("sla_due_at"))

        await eventually(due, timeout=20)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        for s in (first, second):
            await expect(row(page, s).get_by_test_id("cell-sla")).to_have_attribute(
                "data-state", "running"
            )
        subjects = page.get_by_test_id("ticket-row").locator(".subject a")
        # newest first by default; soonest due first by the SLA column
        await expect(subjects).to_have_text([second, first])
        await page.get_by_test_id("sort-sla").click()
        await expect(subjects).to_have_text([first, second])
        await expect(page.get_by_test_id("sort-sla")).to_contain_text("▲")
    finally:
        await ctx.close()


async def test_an_operators_skills_languages_and_capacity_are_edited_a_bad_language_refused(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    aiko_id, _ = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await open_admin(page, "operator-routing")
        line = page.get_by_test_id("admin-row").filter(has_text="Aiko Agent")
        await expect(line).to_contain_text("オフライン")
        await expect(line).to_contain_text("0 / ∞")
        await line.get_by_test_id("admin-edit").click()
        form = page.get_by_test_id("profile-form")
        await form.get_by_test_id("op-capacity").fill("2")
        await form.get_by_test_id("add-skill").click()
        await form.get_by_test_id("skill-name").fill("返品")
        await form.get_by_test_id("skill-level").select_option("4")
        await form.get_by_test_id("op-languages").fill("ja, english")
        await form.get_by_test_id("admin-save").click()
        error = form.get_by_test_id("form-error")
        await expect(error).to_have_attribute("data-field", "languages")
        await expect(error).to_contain_text("「言語」：入力内容に誤りがあります。")
        routing = await ok(stack, admin, "GET", f"/api/v1/operators/{aiko_id}/routing")
        assert routing["capacity"] is None and routing["skills"] == []
        await form.get_by_test_id("op-languages").fill("ja, en")
        await form.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("profile-form")).to_have_count(0)
        await expect(line).to_contain_text("0 / 2")
        routing = await ok(stack, admin, "GET", f"/api/v1/operators/{aiko_id}/routing")
        assert routing["capacity"] == 2
        assert routing["skills"] == [{"name": "返品", "level": 4}]
        assert routing["languages"] == ["ja", "en"]
    finally:
        await ctx.close()


async def test_an_inboxs_tiers_and_limits_are_set_and_an_outsider_in_a_tier_refused(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    aiko_id, _ = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    ben_id, _ = await operator(stack, admin, tenant, "Ben Agent", ["agent"])
    await operator(stack, admin, tenant, "Olga Outsider", ["agent"], inbox_ids=[])
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        form = await help_assignment(page)
        await form.get_by_test_id("asg-strategy").select_option("round_robin")
        await form.get_by_test_id("asg-capacity").fill("3")
        await form.get_by_test_id("asg-fair").fill("10")
        # Aiko first, then Ben and an operator who cannot see the inbox after 5 minutes
        await form.get_by_test_id("add-tier").click()
        await form.get_by_test_id("add-tier").click()
        tiers = form.get_by_test_id("tier")
        await tiers.nth(0).get_by_label("Aiko Agent").check()
        await tiers.nth(0).get_by_test_id("tier-widen").fill("5")
        await tiers.nth(1).get_by_label("Ben Agent").check()
        await tiers.nth(1).get_by_label("Olga Outsider").check()
        await form.get_by_test_id("admin-save").click()
        error = form.get_by_test_id("form-error")
        # the server names the row (`tiers[1].operator_ids`): that tier is marked
        await expect(error).to_have_attribute("data-field", "tiers[1].operator_ids")
        await expect(error).to_contain_text("“Who receives first 2 · Operators”")
        await expect(error).to_contain_text("tier 2")
        await expect(tiers.nth(1)).to_have_class("policy-box bad")
        await expect(tiers.nth(0)).to_have_class("policy-box")
        doc = await ok(stack, admin, "GET", f"/api/v1/inboxes/{tenant.inbox_id}/assignment")
        assert doc["strategy"] == "manual" and doc["tiers"] == []
        await tiers.nth(1).get_by_label("Olga Outsider").uncheck()
        await form.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("assignment-form")).to_have_count(0)
        await expect(page.get_by_test_id("admin-row").filter(has_text="Help")).to_contain_text(
            "Round robin"
        )
        doc = await ok(stack, admin, "GET", f"/api/v1/inboxes/{tenant.inbox_id}/assignment")
        assert doc["strategy"] == "round_robin"
        assert (doc["capacity"], doc["max_new_per_hour"]) == (3, 10)
        assert [t["operator_ids"] for t in doc["tiers"]] == [[aiko_id], [ben_id]]
        assert doc["tiers"][0]["widen_after_minutes"] == 5
    finally:
        await ctx.close()
