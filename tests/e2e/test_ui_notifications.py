"""Notifications in the web UI (issue 17, item 7), in Debian's chromium against the whole
running system: a trainee requests approval and the supervisor's page — on the ticket
list, not the queue — shows an "approval requested" toast without a reload, which opens
the request; the supervisor sends it back with a comment and the trainee's page shows a
toast carrying the comment, which stays until dismissed. Nobody gets a toast for their own
action, a supervisor of another inbox gets none, and a ticket assigned to the trainee
brings an "assigned" toast that opens the ticket."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import PASSWORD, mail_in, operator, other_inbox
from tests.e2e.test_ui_approval import request_approval

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def signed_in_and_live(page: Page, base_url: str, login: str) -> None:
    """Signed in with the live socket open (a push before that is not replayed)."""
    await sign_in(page, base_url, login, PASSWORD)
    await expect(page.get_by_test_id("live-state")).to_have_class(re.compile(r"\bup\b"))


async def test_a_request_and_its_send_back_reach_the_other_side_as_toasts(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    tomo_id, tomo = await operator(stack, admin, tenant, "Tomo Trainee", ["trainee"])
    _, sue = await operator(stack, admin, tenant, "Sue Supervisor", ["supervisor"])
    _, private_id = await other_inbox(stack, admin, "Private")
    _, sam = await operator(
        stack, admin, tenant, "Sam Supervisor", ["supervisor"], inbox_ids=[private_id]
    )
    subject = f"Opening hours {uuid.uuid4().hex[:6]}"
    other = f"Parking {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    await mail_in(stack, tenant.address, other)
    await ticket_by_subject(stack, admin, subject)
    ticket = await ticket_by_subject(stack, admin, other)
    contexts = [await context(browser) for _ in range(3)]
    trainee, sup, outsider = [await c.new_page() for c in contexts]
    try:
        await signed_in_and_live(sup, stack.gateway_url, sue)
        await signed_in_and_live(outsider, stack.gateway_url, sam)
        await signed_in_and_live(trainee, stack.gateway_url, tomo)
        await request_approval(trainee, subject, "We open at nine.", note="Hours right?")

        # the supervisor, on the ticket list, is told without a reload
        toast = sup.get_by_test_id("toast")
        await expect(toast).to_have_count(1)
        await expect(toast).to_have_attribute("data-kind", "approval_requested")
        await expect(toast.get_by_test_id("toast-title")).to_have_text(
            "Approval requested by Tomo Trainee"
        )
        await expect(toast.get_by_test_id("toast-subject")).to_have_text(f"Re: {subject}")
        await expect(sup.get_by_test_id("notifications")).to_have_attribute("aria-live", "polite")
        await shot(sup, "notification-approval-requested")
        # clicking it opens the request (and puts the toast away)
        await toast.get_by_test_id("toast-open").click()
        view = sup.get_by_test_id("approval-view")
        await expect(view.get_by_test_id("approval-note-text")).to_have_text("Hours right?")
        await expect(toast).to_have_count(0)

        await sup.get_by_test_id("send-back").click()
        dialog = sup.get_by_test_id("send-back-dialog")
        await dialog.get_by_test_id("send-back-comment").fill("Say 9:00 to 17:00, please.")
        await dialog.get_by_test_id("send-back-confirm").click()
        await expect(sup.get_by_test_id("approval-state")).to_have_text("Sent back")

        # the author is told, with the comment; their own request brought them no toast
        mine = trainee.get_by_test_id("toast")
        await expect(mine).to_have_count(1)
        await expect(mine).to_have_attribute("data-change", "sent_back")
        await expect(mine.get_by_test_id("toast-title")).to_have_text("Sent back by Sue Supervisor")
        await expect(mine.get_by_test_id("toast-quote")).to_have_text("Say 9:00 to 17:00, please.")
        await shot(trainee, "notification-sent-back")
        # in Japanese, the same toast in Japanese words and the Japanese date format
        await trainee.get_by_test_id("lang").click()
        await expect(mine.get_by_test_id("toast-title")).to_have_text(
            "Sue Supervisorさんが差し戻しました"
        )
        await expect(mine.locator("time")).to_have_text(
            re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}$")
        )
        await shot(trainee, "notification-sent-back-ja")
        await trainee.get_by_test_id("lang").click()
        # the supervisor's own send-back, and anything of an inbox he does not see, bring none
        await expect(sup.get_by_test_id("toast")).to_have_count(0)
        await expect(outsider.get_by_test_id("toast")).to_have_count(0)

        # another ticket assigned to the trainee: a toast that opens it
        code, body, _ = await call(
            stack, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"assignee_id": tomo_id}, token=admin
        )
        assert code == 200, body
        assigned = trainee.locator("[data-testid=toast][data-kind=assigned]")
        await expect(assigned.get_by_test_id("toast-title")).to_contain_text("Assigned to you by")
        await expect(assigned.get_by_test_id("toast-subject")).to_have_text(other)
        await expect(mine).to_have_count(2)  # the send-back waits to be dismissed
        await assigned.get_by_test_id("toast-open").click()
        await expect(trainee).to_have_url(re.compile(f"#/tickets/{ticket['id']}$"))
        # the sent-back one opens the request; its dismiss button puts it away
        sent_back = trainee.locator("[data-testid=toast][data-change=sent_back]")
        await sent_back.get_by_test_id("toast-dismiss").click()
        await expect(trainee.get_by_test_id("toast")).to_have_count(0)
        await expect(outsider.get_by_test_id("toast")).to_have_count(0)
    finally:
        for c in contexts:
            await c.close()


async def test_a_routing_rules_notify_action_shows_its_rule_and_message_as_a_toast(
    stack: Stack, browser: Browser
) -> None:
    """Issue 18: a rule "subject contains 至急 → notify role:supervisor" — the supervisor's
    page shows a toast naming the rule, with its message, that opens the ticket; the
    agent's page shows none."""
    tenant, admin = await admin_of(stack)
    _, sue = await operator(stack, admin, tenant, "Sue Supervisor", ["supervisor"])
    _, ann = await operator(stack, admin, tenant, "Ann Agent", ["agent"])
    rule = {
        "name": "至急通知",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "subject", "operator": "contains", "value": "至急"}],
        },
        "actions": [{"type": "notify", "value": "至急の問い合わせです", "to": ["role:supervisor"]}],
    }
    code, body, _ = await call(stack, "POST", "/api/v1/rules", rule, token=admin)
    assert code == 201, body
    contexts = [await context(browser) for _ in range(2)]
    sup, agent = [await c.new_page() for c in contexts]
    try:
        await signed_in_and_live(sup, stack.gateway_url, sue)
        await signed_in_and_live(agent, stack.gateway_url, ann)
        subject = f"至急 返金について {uuid.uuid4().hex[:6]}"
        await mail_in(stack, tenant.address, subject)
        toast = sup.locator("[data-testid=toast][data-kind=rule]")
        await expect(toast.get_by_test_id("toast-title")).to_have_text("Rule “至急通知”")
        await expect(toast.get_by_test_id("toast-subject")).to_have_text(subject)
        await expect(toast.get_by_test_id("toast-quote")).to_have_text("至急の問い合わせです")
        await shot(sup, "notification-rule")
        await sup.get_by_test_id("lang").click()
        await expect(toast.get_by_test_id("toast-title")).to_have_text("ルール「至急通知」")
        await sup.get_by_test_id("lang").click()
        # the agent saw the ticket arrive, and no toast
        await expect(agent.get_by_test_id("ticket-row").filter(has_text=subject)).to_have_count(1)
        await expect(agent.get_by_test_id("toast")).to_have_count(0)
        ticket = await ticket_by_subject(stack, admin, subject)
        await toast.get_by_test_id("toast-open").click()
        await expect(sup).to_have_url(re.compile(f"#/tickets/{ticket['id']}$"))
    finally:
        for c in contexts:
            await c.close()
