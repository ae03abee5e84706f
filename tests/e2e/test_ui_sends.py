"""Other people's outgoing mail in the web UI (issue 16, point 4), in a real browser
against the whole running system: a scheduled send offers its changes only to its author
and to those who may take over; the author whose send a supervisor cancelled is told who
did it when the draft opens again, and asked once more before it is sent; the ticket's
activity shows who cancelled it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import PASSWORD, mail_in, operator, row, schedule_reply
from tests.helpers import eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def test_a_cancelled_send_tells_its_author_who_cancelled_it_before_sending_again(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    _, ben = await operator(stack, admin, tenant, "Ben Agent", ["agent"])
    sue_id, sue = await operator(stack, admin, tenant, "Sue Supervisor", ["supervisor"])
    subject = f"Delivery date {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    ticket = await ticket_by_subject(stack, admin, subject)
    contexts = [await context(browser) for _ in range(3)]
    a, b, s = [await c.new_page() for c in contexts]
    try:
        # Aiko schedules her reply for tomorrow
        await sign_in(a, stack.gateway_url, aiko, PASSWORD)
        await schedule_reply(a, subject, "It arrives on Friday.")
        mine = a.locator("[data-testid=send][data-state=scheduled]")
        await expect(mine).to_be_visible()
        await expect(mine.get_by_test_id("send-cancel")).to_be_visible()

        # a colleague sees it, but is offered neither cancelling nor moving it
        await sign_in(b, stack.gateway_url, ben, PASSWORD)
        await row(b, subject).click()
        theirs = b.locator("[data-testid=send][data-state=scheduled]")
        await expect(theirs).to_be_visible()
        await expect(theirs.get_by_test_id("send-cancel")).to_have_count(0)
        await expect(theirs.get_by_test_id("send-move")).to_have_count(0)

        # a supervisor may, and cancels it
        await sign_in(s, stack.gateway_url, sue, PASSWORD)
        await row(s, subject).click()
        await (
            s.locator("[data-testid=send][data-state=scheduled]")
            .get_by_test_id("send-cancel")
            .click()
        )
        await expect(s.locator("[data-testid=send][data-state=cancelled]")).to_be_visible()
        await expect(a.locator("[data-testid=send][data-state=cancelled]")).to_be_visible()

        # Aiko's draft opens again, saying who cancelled it
        await a.get_by_test_id("btn-reply").click()
        await expect(a.get_by_test_id("body")).to_have_text("It arrives on Friday.")
        notice = a.get_by_test_id("draft-changed-by")
        await expect(notice).to_contain_text("Sue Supervisor cancelled the scheduled send")
        await shot(a, "draft-reopened-by-another")
        await a.get_by_test_id("editor").get_by_test_id("send").click()
        dialog = a.get_by_test_id("checks-dialog")
        await expect(dialog.locator("[data-code=changed_by_other]")).to_contain_text(
            "Sue Supervisor"
        )
        await a.get_by_test_id("checks-cancel").click()
        # while she edits it, the notice stays; having changed it herself, she sends it
        await a.get_by_test_id("body").fill("It arrives on Friday, as promised.")
        await expect(a.get_by_test_id("save-state")).to_have_text("Saved")
        await expect(notice).to_contain_text("Sue Supervisor")
        await a.get_by_test_id("editor").get_by_test_id("send").click()
        await expect(a.get_by_test_id("editor")).to_have_count(0)

        async def delivered() -> Any:
            return [
                r
                for r in smtp_peer.to("taro@customer.example")
                if subject in str(r.message["Subject"])
            ]

        [got] = await eventually(delivered, timeout=30)
        assert (
            "It arrives on Friday, as promised." in got.message.get_body(("plain",)).get_content()
        )

        # the cancellation is in the ticket's audit trail, with who did it
        async def cancelled_by() -> Any:
            code, audit, _ = await call(
                stack, "GET", f"/api/v1/tickets/{ticket['id']}/audit?limit=100", token=admin
            )
            assert code == 200, audit
            found = [e for e in audit["items"] if e["action"] == "send.cancelled"]
            return found[0]["actor"] if found else None

        assert (await eventually(cancelled_by, timeout=15))["id"] == sue_id
        # and shown on the ticket: the colleague's activity names who cancelled it
        await b.reload()
        cancelled = b.locator("[data-testid=activity][data-action='send.cancelled']")
        await expect(cancelled).to_contain_text("Sue Supervisor")
        await expect(cancelled).to_contain_text("Sending cancelled")
    finally:
        for c in contexts:
            await c.close()
