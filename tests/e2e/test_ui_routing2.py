"""Routing in the web UI, second part (issue 18), in Debian's chromium against the whole
running system: a backlog handed to an operator coming online is one toast, not one per
ticket over the ticket's side panel; a rule on "no first reply within N minutes" is built
(its missing minutes refused at the field); a pending ticket given a date that has come
is reopened by a rule on "pending date reached"; a rule that replies with a template,
notifies an operator (a toast) and calls a webhook (a failed call listed with Retry, the
signing secret shown once); a customer's value and VIP set on the contact, the detected
language and the priority score on the ticket, the list sorted by the score, a rule on
VIP and language tried on the ticket; another operator's presence changing on the
administrator's screen without a reload."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import PASSWORD, mail_in, operator, row
from tests.e2e.test_ui_routing import ok, open_admin, present
from tests.helpers import eventually, make_mail, send

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


async def mail_in_from(stack: Stack, to: str, subject: str, body: str) -> None:
    """A mail from a customer of its own (a contact no other test's mails join)."""
    msg = make_mail(
        subject,
        sender=f"Hanako Sato <hanako-{uuid.uuid4().hex[:6]}@kunde.example>",
        to=to,
        body=body,
    )
    await asyncio.to_thread(send, stack.smtp_port, msg, [to])


async def rule_of(stack: Stack, admin: str, name: str) -> dict[str, Any]:
    rules = (await ok(stack, admin, "GET", "/api/v1/rules"))["rules"]
    return dict(next(r for r in rules if r["name"] == name))


async def test_a_no_first_reply_rule_is_built_its_missing_minutes_refused_at_the_field(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await open_admin(page, "rules")
        await page.get_by_test_id("rule-new").click()
        form = page.get_by_test_id("rule-form")
        await form.get_by_test_id("rule-name").fill("Nobody answered")
        await form.get_by_test_id("trigger-new_ticket").uncheck()
        await form.get_by_test_id("trigger-no_first_reply").check()
        minutes = form.get_by_test_id("rule-no-reply-minutes")
        await expect(minutes).to_have_value("30")
        await minutes.fill("")
        await form.get_by_test_id("cond-remove").click()
        await expect(form).to_contain_text("No condition: the rule always applies.")
        action = form.get_by_test_id("action").first
        await action.get_by_test_id("action-type").select_option("set_priority")
        await action.get_by_test_id("action-value").select_option("high")
        await form.get_by_test_id("rule-save").click()
        error = form.get_by_test_id("form-error")
        await expect(error).to_have_attribute("data-field", "no_first_reply_minutes")
        await expect(error).to_contain_text("“Minutes without a first reply”")
        await expect(form.locator("label.check.bad")).to_contain_text("No first reply within")
        await shot(page, "routing-no-first-reply-refused")
        assert (await ok(stack, admin, "GET", "/api/v1/rules"))["rules"] == []
        await minutes.fill("45")
        await form.get_by_test_id("rule-save").click()
        await expect(page.get_by_test_id("rule-form")).to_have_count(0)
        line = page.get_by_test_id("rule-row")
        await expect(line).to_contain_text("No first reply within 45 min")
        await expect(line).to_contain_text("Set the priority: High")
        saved = await rule_of(stack, admin, "Nobody answered")
        assert saved["triggers"] == ["no_first_reply"]
        assert saved["no_first_reply_minutes"] == 45
        # in Japanese
        await page.get_by_test_id("lang").click()
        await expect(line).to_contain_text("45分以内に初回返信なし")
        # the notice too: it follows the language
        await expect(page.get_by_test_id("admin-notice")).to_have_text("保存しました。")
        await shot(page, "routing-no-first-reply-ja")
    finally:
        await ctx.close()


async def test_a_pending_ticket_given_a_date_that_has_come_is_reopened_by_its_rule(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    await ok(
        stack,
        admin,
        "POST",
        "/api/v1/rules",
        {
            "name": "期限で再開",
            "inbox_id": None,
            "enabled": True,
            "triggers": ["pending_until"],
            "conditions": {"match": "all", "conditions": []},
            "actions": [
                {"type": "set_status", "value": "open"},
                {"type": "add_label", "value": "期限到来"},
            ],
            "once_per_ticket": False,
            "business_hours": None,
        },
    )
    subject = f"見積もりの件 {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    ticket = await ticket_by_subject(stack, admin, subject)
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await row(page, subject).click()
        await expect(page.get_by_test_id("pending-until")).to_have_count(0)
        await page.get_by_test_id("status-select").select_option("pending")
        block = page.get_by_test_id("pending-until")
        await expect(block.get_by_test_id("pending-until-value")).to_have_text("期限なし")
        # a date to come: shown in the app's Japanese format (the tenant's zone is UTC)
        today = datetime.now(UTC)
        later = today.replace(year=today.year + 1, month=1, day=15, hour=9, minute=0)
        await page.get_by_test_id("pending-at-day").select_option(later.strftime("%Y-%m-%d"))
        await page.get_by_test_id("pending-at-hour").select_option("09")
        await page.get_by_test_id("pending-at-minute").select_option("00")
        await block.get_by_test_id("pending-set").click()
        await expect(block.get_by_test_id("pending-until-value")).to_have_text(
            f"{later:%Y/%m/%d} 09:00"
        )
        stored = await ok(stack, admin, "GET", f"/api/v1/tickets/{ticket['id']}")
        assert stored["pending_until"].startswith(later.strftime("%Y-%m-%dT09:00:00"))
        await shot(page, "routing-pending-until-ja")
        # a date that has come (today, 00:00): the rule reopens it, live
        await page.get_by_test_id("pending-at-day").select_option(today.strftime("%Y-%m-%d"))
        await page.get_by_test_id("pending-at-hour").select_option("00")
        await page.get_by_test_id("pending-at-minute").select_option("00")
        await block.get_by_test_id("pending-set").click()
        await expect(page.get_by_test_id("status-select")).to_have_value("open", timeout=20000)
        await expect(page.locator(".ticket-side")).to_contain_text("期限到来")
        await expect(page.get_by_test_id("pending-until")).to_have_count(0)
        # the timeline says so in words
        await expect(
            page.get_by_test_id("activity-note").filter(has_text="ルール「期限で再開」").first
        ).to_be_visible(timeout=15000)
        await expect(
            page.get_by_test_id("activity").filter(has_text="保留期限:").first
        ).to_be_visible()
    finally:
        await ctx.close()


async def test_a_rule_replies_notifies_and_calls_a_webhook_a_failed_call_is_retried(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    ben_id, ben = await operator(stack, admin, tenant, "Ben Agent", ["agent"])
    template = await ok(
        stack,
        admin,
        "POST",
        "/api/v1/templates",
        {"name": "受付のお知らせ", "body_text": "お問い合わせを受け付けました。"},
    )
    ben_ctx = await context(browser)
    ben_page = await ben_ctx.new_page()
    await sign_in(ben_page, stack.gateway_url, ben, PASSWORD)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await open_admin(page, "rules")
        await page.get_by_test_id("rule-new").click()
        form = page.get_by_test_id("rule-form")
        await form.get_by_test_id("rule-name").fill("Escalate")
        await form.get_by_test_id("cond-value").fill("至急")
        reply = form.get_by_test_id("action").first
        await reply.get_by_test_id("action-type").select_option("auto_reply")
        await reply.get_by_test_id("action-value").select_option(label="受付のお知らせ")
        await form.get_by_test_id("add-action").click()
        notify = form.get_by_test_id("action").nth(1)
        await notify.get_by_test_id("action-type").select_option("notify")
        await notify.get_by_test_id("notify-members").uncheck()
        await notify.get_by_test_id("notify-to").get_by_label("Ben Agent").check()
        await notify.get_by_test_id("action-value").fill("Urgent mail: please look")
        await form.get_by_test_id("add-action").click()
        hook = form.get_by_test_id("action").nth(2)
        await hook.get_by_test_id("action-type").select_option("webhook")
        # a loopback address, never called unless the deployment allows it: a failed call
        await hook.get_by_test_id("action-value").fill("ftp://127.0.0.1:9/hook")
        await form.get_by_test_id("rule-save").click()
        error = form.get_by_test_id("form-error")
        await expect(error).to_have_attribute("data-field", "actions[2].value")
        await expect(error).to_contain_text("“Actions 3 · Value”")
        await expect(hook).to_have_class("action bad")
        await hook.get_by_test_id("action-value").fill("http://127.0.0.1:9/hook")
        await shot(page, "routing-rule-actions")
        await form.get_by_test_id("rule-save").click()
        await expect(page.get_by_test_id("rule-form")).to_have_count(0)
        await expect(page.get_by_test_id("rule-row")).to_contain_text(
            "Auto-reply with the template: 受付のお知らせ → "
            "Notify: Ben Agent: “Urgent mail: please look” → "
            "Call the webhook: http://127.0.0.1:9/hook"
        )
        saved = await rule_of(stack, admin, "Escalate")
        assert saved["actions"] == [
            {"type": "auto_reply", "value": template["id"]},
            {"type": "notify", "to": [f"operator:{ben_id}"], "value": "Urgent mail: please look"},
            {"type": "webhook", "value": "http://127.0.0.1:9/hook"},
        ]

        # a mail: Ben is told by a toast that opens the ticket
        subject = f"至急 {uuid.uuid4().hex[:6]}"
        await mail_in(stack, tenant.address, subject)
        toast = ben_page.locator("[data-testid=toast][data-kind=rule]")
        await expect(toast.get_by_test_id("toast-title")).to_have_text(
            "Rule “Escalate”", timeout=20000
        )
        await expect(toast.get_by_test_id("toast-quote")).to_have_text("Urgent mail: please look")
        await expect(toast.get_by_test_id("toast-subject")).to_have_text(subject)
        await toast.get_by_test_id("toast-open").click()
        await expect(ben_page.get_by_test_id("timeline")).to_contain_text(subject)
        notes = ben_page.get_by_test_id("activity-note")
        await expect(
            notes.filter(has_text="rule “Escalate”: Auto-reply with the template")
        ).to_be_visible(timeout=15000)
        await expect(
            notes.filter(has_text="rule “Escalate”: Call the webhook: http://127.0.0.1:9/hook")
        ).to_be_visible()

        # the failed call, listed with its error; retried
        async def dead() -> Any:
            code, body, _ = await call(
                stack, "GET", "/api/v1/rules/webhook-deliveries?state=dead", token=admin
            )
            return code == 200 and body["deliveries"]

        await eventually(dead, timeout=60)
        await open_admin(page, "webhooks")
        line = page.get_by_test_id("webhook-delivery").first
        await expect(line).to_contain_text("Escalate")
        await expect(line).to_contain_text("http://127.0.0.1:9/hook")
        await expect(line.get_by_test_id("webhook-error")).not_to_be_empty()
        await line.get_by_test_id("webhook-retry").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text(
            "The call to http://127.0.0.1:9/hook is retried now."
        )
        # the signing secret: made on request, shown once
        await page.get_by_test_id("webhook-rotate").click()
        await page.get_by_test_id("webhook-rotate-confirm").click()
        value = page.get_by_test_id("webhook-secret-value")
        await expect(value).to_contain_text("whsec_")
        secret = await value.text_content()
        assert secret is not None
        await expect(page.get_by_test_id("webhook-secret-state")).to_contain_text(
            f"ends in {secret[-4:]}"
        )
        await shot(page, "routing-webhooks")
        await page.get_by_test_id("lang").click()
        await expect(page.locator("h1")).to_have_text("Webhook")
        await expect(page.get_by_test_id("webhook-state")).to_contain_text("失敗")
        await shot(page, "routing-webhooks-ja")
    finally:
        await ctx.close()
        await ben_ctx.close()


async def test_a_vip_customers_value_raises_the_score_and_a_rule_on_vip_and_language_holds(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    tag = uuid.uuid4().hex[:6]
    plain, vip = f"Question {tag}", f"返品の依頼 {tag}"
    await mail_in(stack, tenant.address, plain, "Hello, where is my parcel?\n")
    # from another customer, in Japanese
    await mail_in_from(
        stack, tenant.address, vip, "注文した商品を返品したいのですが、手続きを教えてください。\n"
    )
    ticket = await ticket_by_subject(stack, admin, vip)
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await row(page, vip).click()
        facts = page.get_by_test_id("routing-facts")
        await expect(facts.get_by_test_id("ticket-language")).to_have_text("日本語")
        # a normal priority counts 60 minutes, plus the minutes waited
        score = facts.get_by_test_id("priority-score")
        await expect(score).to_have_text(re.compile(r"^6\d$"))
        before = int(await score.inner_text())
        raised = re.compile(rf"^(?:{before + 500}|{before + 501})$")
        # the customer's value and VIP, on the contact
        await page.get_by_test_id("contact-card").get_by_role("link", name="アドレス帳").click()
        await page.get_by_test_id("contact-value").fill("500")
        await page.get_by_test_id("contact-vip").check()
        await page.get_by_test_id("contact-save").click()
        await expect(page.get_by_test_id("contact-notice")).to_have_text("保存しました。")
        contact = await ok(stack, admin, "GET", f"/api/v1/contacts/{ticket['contact_id']}")
        assert (contact["customer_value"], contact["vip"]) == (500, True)
        # the ticket: the score counts the value; the card says VIP
        await page.go_back()
        await expect(score).to_have_text(raised, timeout=15000)
        await expect(page.get_by_test_id("contact-vip-badge")).to_have_text("VIP")
        await expect(page.get_by_test_id("contact-value-fact")).to_have_text("500")
        await shot(page, "routing-ticket-facts-ja")
        # the list sorted by the score: the VIP's first
        await page.get_by_test_id("nav-inboxes").click()
        await page.get_by_test_id("sort-score").click()
        subjects = page.get_by_test_id("ticket-row").locator(".subject a")
        await expect(subjects.first).to_have_text(vip)
        await expect(row(page, vip).get_by_test_id("cell-score")).to_have_text(raised)
        await expect(page.get_by_test_id("sort-score")).to_contain_text("▼")
        # a rule on VIP and the language, tried on the ticket
        await open_admin(page, "rules")
        await page.get_by_test_id("rule-new").click()
        form = page.get_by_test_id("rule-form")
        await form.get_by_test_id("rule-name").fill("VIP の日本語")
        first = form.get_by_test_id("cond").first
        await first.get_by_test_id("cond-field").select_option("vip")
        await form.get_by_test_id("add-cond").click()
        second = form.get_by_test_id("cond").nth(1)
        await second.get_by_test_id("cond-field").select_option("language")
        await second.get_by_test_id("cond-value").select_option("ja")
        await form.get_by_test_id("add-cond").click()
        third = form.get_by_test_id("cond").nth(2)
        await third.get_by_test_id("cond-field").select_option("customer_value")
        await third.get_by_test_id("cond-op").select_option("gte")
        await third.get_by_test_id("cond-value").fill("100")
        action = form.get_by_test_id("action").first
        await action.get_by_test_id("action-type").select_option("require_skill")
        await action.get_by_test_id("action-value").fill("返品")
        await action.get_by_test_id("action-level").select_option("3")
        dry = page.get_by_test_id("dry-run")
        await dry.get_by_test_id("dry-number").fill(str(ticket["number"]))
        await dry.get_by_test_id("dry-go").click()
        result = dry.get_by_test_id("dry-result")
        await expect(result).to_have_attribute("data-matched", "true")
        await expect(result.get_by_test_id("dry-cond").nth(1)).to_contain_text("VIP：はい と一致")
        await expect(result.get_by_test_id("dry-cond").nth(2)).to_contain_text(
            "検出された言語：日本語 と一致"
        )
        await expect(result.get_by_test_id("dry-actions")).to_have_text(
            "必要なスキル: 返品（レベル3以上）"
        )
        await form.get_by_test_id("rule-save").click()
        await expect(page.get_by_test_id("rule-form")).to_have_count(0)
        saved = await rule_of(stack, admin, "VIP の日本語")
        assert saved["conditions"]["conditions"] == [
            {"field": "vip", "operator": "equals", "value": True, "negate": False},
            {"field": "language", "operator": "equals", "value": "ja", "negate": False},
            {"field": "customer_value", "operator": "gte", "value": 100, "negate": False},
        ]
        assert saved["actions"] == [{"type": "require_skill", "value": "返品", "level": 3}]
        await shot(page, "routing-rule-vip-ja")
    finally:
        await ctx.close()


async def test_another_operators_presence_changes_on_the_administrators_screen_live(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    ctx = await context(browser)
    page = await ctx.new_page()
    agent_ctx = None
    try:
        await sign_in(page, stack.gateway_url, ada, PASSWORD)
        await open_admin(page, "operator-routing")
        line = page.get_by_test_id("admin-row").filter(has_text="Aiko Agent")
        await expect(line).to_contain_text("Offline")
        agent_ctx, agent = await present(stack, browser, aiko)
        await expect(line).to_contain_text("Online")
        # her second tab follows her choice in the first
        other_tab = await agent_ctx.new_page()
        await other_tab.goto(f"{stack.gateway_url}/")
        await expect(other_tab.get_by_test_id("presence-select")).to_have_value("online")
        await expect(other_tab.get_by_test_id("live-state")).to_have_class("live up")
        await agent.get_by_test_id("presence-select").select_option("away")
        await expect(line).to_contain_text("Away")
        await expect(other_tab.get_by_test_id("presence-select")).to_have_value("away")
        await expect(other_tab.get_by_test_id("presence")).to_have_attribute(
            "data-effective", "away"
        )
    finally:
        await ctx.close()
        if agent_ctx is not None:
            await agent_ctx.close()
