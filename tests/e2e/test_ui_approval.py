"""Approval before send in the web UI (issue 17), in Debian's chromium against the whole
running system: a trainee requests approval on a reply; a supervisor in a second browser
sees it appear in the queue without reloading, changes a word, approves and sends; the
customer's mail carries the supervisor's word and the trainee sees the diff. Then: the
trainee's primary button is "Request approval" (承認依頼 in Japanese), an agent may ask
for approval too; a send-back without a comment is refused in the dialog and the comment
reaches the author's editor; a decision that came second reads who decided first; the
policy form refuses a fourth stage and shows the server's field error at its stage; an
operator's "always needs approval until" is set in administration."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import own_operator, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import PASSWORD, mail_in, operator, row
from tests.helpers import eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def request_approval(page: Page, subject: str, body: str, note: str = "") -> None:
    """Open the ticket, write a reply and request approval (the trainee's primary button)."""
    await row(page, subject).click()
    await page.get_by_test_id("btn-reply").click()
    await page.get_by_test_id("body").fill(body)
    if note:
        await page.get_by_test_id("approval-note").fill(note)
    await page.get_by_test_id("request").click()
    await expect(page.get_by_test_id("editor")).to_have_count(0)
    await expect(page.get_by_test_id("awaiting-approval")).to_be_visible()


def queue_row(page: Page, subject: str) -> Any:
    return page.get_by_test_id("approval-row").filter(has_text=subject)


async def test_a_trainees_reply_goes_out_with_the_supervisors_word_and_the_trainee_sees_the_diff(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    _, tomo = await operator(stack, admin, tenant, "Tomo Trainee", ["trainee"])
    _, sue = await operator(stack, admin, tenant, "Sue Supervisor", ["supervisor"])
    subject = f"Refund question {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    await ticket_by_subject(stack, admin, subject)
    contexts = [await context(browser) for _ in range(2)]
    trainee, sup = [await c.new_page() for c in contexts]
    try:
        # the supervisor's queue is open and empty before anything is requested
        await sign_in(sup, stack.gateway_url, sue, PASSWORD)
        await sup.get_by_test_id("nav-approvals").click()
        await expect(sup.get_by_test_id("approval-empty")).to_be_visible()
        await expect(sup.get_by_test_id("approval-count")).to_have_text("0")

        await sign_in(trainee, stack.gateway_url, tomo, PASSWORD)
        await row(trainee, subject).click()
        await trainee.get_by_test_id("btn-reply").click()
        # a trainee is never offered a Send they may not use
        await expect(trainee.get_by_test_id("request")).to_have_text("Request approval")
        await expect(trainee.get_by_test_id("send")).to_have_count(0)
        await trainee.get_by_test_id("body").fill("Your refund was sent on Monday.")
        await trainee.get_by_test_id("approval-note").fill("Not sure about the day.")
        await trainee.get_by_test_id("request").click()
        await expect(trainee.get_by_test_id("editor")).to_have_count(0)
        waiting = trainee.get_by_test_id("awaiting-approval")
        await expect(waiting).to_contain_text("Awaiting approval")
        await expect(waiting.get_by_test_id("cancel-request")).to_be_visible()

        # the request appears in the supervisor's queue and count without a reload
        request = queue_row(sup, subject)
        await expect(request).to_contain_text("Tomo Trainee")
        await expect(request).to_contain_text("Stage 1 of 1")
        await expect(sup.get_by_test_id("approval-count")).to_have_text("1")
        await shot(sup, "approval-queue")
        await request.click()
        view = sup.get_by_test_id("approval-view")
        await expect(view.get_by_test_id("approval-note-text")).to_have_text(
            "Not sure about the day."
        )
        await expect(view.get_by_test_id("preview-to")).to_contain_text("taro@customer.example")
        await expect(view.get_by_test_id("approval-diff-none")).to_be_visible()

        # the supervisor changes a word (under the ticket's reply lock) and sees the diff
        await view.get_by_test_id("approval-edit-start").click()
        edit = view.get_by_test_id("approval-edit")
        await edit.get_by_test_id("body").fill("Your refund was sent on Tuesday.")
        await edit.get_by_test_id("approval-edit-save").click()
        await expect(edit).to_have_count(0)
        diff = view.get_by_test_id("approval-diff")
        await expect(diff.get_by_test_id("diff-insert")).to_contain_text("Tuesday")
        await expect(diff.get_by_test_id("diff-delete")).to_contain_text("Monday")
        # the mail as it will go out is the edited one
        frame = view.frame_locator("[data-testid=mail-frame]").locator("body")
        await expect(frame).to_contain_text("Your refund was sent on Tuesday.")
        await shot(sup, "approval-request")
        await view.get_by_test_id("approve-send").click()
        await expect(sup.get_by_test_id("approval-notice")).to_contain_text("Approved")
        await expect(sup.get_by_test_id("approval-count")).to_have_text("0")

        # the trainee sees what the supervisor changed, on the ticket
        result = trainee.get_by_test_id("approval-result")
        await expect(result.get_by_test_id("diff-insert")).to_contain_text("Tuesday")
        await expect(result.get_by_test_id("diff-delete")).to_contain_text("Monday")
        await expect(trainee.get_by_test_id("awaiting-approval")).to_have_count(0)
        await shot(trainee, "approval-diff-for-the-author")

        async def delivered() -> Any:
            return [
                r
                for r in smtp_peer.to("taro@customer.example")
                if subject in str(r.message["Subject"])
            ]

        [got] = await eventually(delivered, timeout=30)
        text = got.message.get_body(("plain",)).get_content()
        assert "Tuesday" in text and "Monday" not in text
        # and, once it went out, that it was approved and sent
        await expect(result).to_have_attribute("data-state", "sent")
        await expect(result).to_contain_text("Approved and sent")
    finally:
        for c in contexts:
            await c.close()


async def test_request_approval_is_the_trainees_primary_button_in_japanese_and_anyone_may_ask(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, tomo = await operator(stack, admin, tenant, "Tomo Trainee", ["trainee"])
    _, aki = await operator(stack, admin, tenant, "Aki Agent", ["agent"])
    subject = f"請求書について {uuid.uuid4().hex[:6]}"
    other = f"納期について {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    await mail_in(stack, tenant.address, other)
    await ticket_by_subject(stack, admin, other)
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tomo, PASSWORD)
        await row(page, subject).click()
        await expect(page.get_by_test_id("trainee-help")).to_contain_text("承認")
        await page.get_by_test_id("btn-reply").click()
        await expect(page.get_by_test_id("request")).to_have_text("承認依頼")
        await expect(page.get_by_test_id("request")).to_be_enabled()
        await expect(page.get_by_test_id("send")).to_have_count(0)
        await expect(page.get_by_test_id("editor")).to_contain_text("申し送り")
        await shot(page, "approval-trainee-editor-ja")
    finally:
        await ctx.close()

    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        # an agent sends directly, and may tick "Request approval" for this one mail
        await sign_in(page, stack.gateway_url, aki, PASSWORD)
        await row(page, other).click()
        await page.get_by_test_id("btn-reply").click()
        await expect(page.get_by_test_id("send")).to_have_text("Send")
        await expect(page.get_by_test_id("approval-note")).to_have_count(0)
        await page.get_by_test_id("request-approval").check()
        await expect(page.get_by_test_id("send")).to_have_count(0)
        await page.get_by_test_id("body").fill("The delivery is on Friday.")
        await page.get_by_test_id("approval-note").fill("First reply to this customer.")
        await page.get_by_test_id("request").click()
        await expect(page.get_by_test_id("awaiting-approval")).to_contain_text("Aki Agent")
        # their own reply is frozen while it waits: Reply is not offered again
        await expect(page.get_by_test_id("btn-reply")).to_be_disabled()
        # cancelling the request gives the draft back to its author
        await page.get_by_test_id("cancel-request").click()
        await expect(page.get_by_test_id("awaiting-approval")).to_have_count(0)
        await page.get_by_test_id("btn-reply").click()
        await expect(page.get_by_test_id("round-cancelled")).to_contain_text("Aki Agent")
        await expect(page.get_by_test_id("body")).to_contain_text("The delivery is on Friday.")
    finally:
        await ctx.close()


async def test_send_back_needs_a_comment_which_the_author_reads_when_reopening_the_draft(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, tomo = await operator(stack, admin, tenant, "Tomo Trainee", ["trainee"])
    _, sue, sue_token = await own_operator(
        stack, admin, tenant, display_name="Sue Supervisor", roles=["supervisor"]
    )
    subject = f"Opening hours {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    await ticket_by_subject(stack, admin, subject)
    contexts = [await context(browser) for _ in range(2)]
    trainee, sup = [await c.new_page() for c in contexts]
    try:
        await sign_in(trainee, stack.gateway_url, tomo, PASSWORD)
        await request_approval(trainee, subject, "We open at nine.")
        await sign_in(sup, stack.gateway_url, sue, PASSWORD)
        await sup.get_by_test_id("nav-approvals").click()
        await queue_row(sup, subject).click()
        await sup.get_by_test_id("send-back").click()
        dialog = sup.get_by_test_id("send-back-dialog")
        # an empty comment is refused in the dialog; nothing is decided
        await dialog.get_by_test_id("send-back-confirm").click()
        await expect(dialog.get_by_test_id("send-back-error")).to_have_text(
            "Write a comment for the author first."
        )
        await dialog.get_by_test_id("send-back-comment").fill("   ")
        await dialog.get_by_test_id("send-back-confirm").click()
        await expect(dialog.get_by_test_id("send-back-error")).to_be_visible()
        code, queue, _ = await call(stack, "GET", "/api/v1/approvals", token=sue_token)
        assert code == 200, queue
        assert [a["state"] for a in queue["approvals"] if subject in a["subject"]] == ["pending"]

        await dialog.get_by_test_id("send-back-comment").fill("Say 9:00 to 17:00, please.")
        await dialog.get_by_test_id("send-back-confirm").click()
        await expect(dialog).to_have_count(0)
        await expect(sup.get_by_test_id("approval-state")).to_have_text("Sent back")

        # the author's draft is theirs again, with the comment above it
        await expect(trainee.get_by_test_id("awaiting-approval")).to_have_count(0)
        await trainee.get_by_test_id("btn-reply").click()
        await expect(trainee.get_by_test_id("sent-back")).to_contain_text("Sue Supervisor")
        await expect(trainee.get_by_test_id("sent-back-comment")).to_have_text(
            "Say 9:00 to 17:00, please."
        )
        await expect(trainee.get_by_test_id("body")).to_contain_text("We open at nine.")
        await shot(trainee, "approval-sent-back")
    finally:
        for c in contexts:
            await c.close()


async def test_a_decision_that_came_second_names_who_decided_first(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, tomo = await operator(stack, admin, tenant, "Tomo Trainee", ["trainee"])
    _, sue = await operator(stack, admin, tenant, "Sue Supervisor", ["supervisor"])
    _, _, sam_token = await own_operator(
        stack, admin, tenant, display_name="Sam Supervisor", roles=["supervisor"]
    )
    subject = f"Invoice copy {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    await ticket_by_subject(stack, admin, subject)
    contexts = [await context(browser) for _ in range(2)]
    trainee, sup = [await c.new_page() for c in contexts]

    # Sue's browser does not hear the push of Sam's decision (as if it came a moment
    # late): her click is the second decision of the stage
    async def muffled(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def down(message: str | bytes) -> None:
            text = message if isinstance(message, str) else message.decode()
            if json.loads(text).get("type") != "approval.changed":
                ws.send(message)

        server.on_message(down)
        ws.on_message(lambda m: server.send(m))

    try:
        await sign_in(trainee, stack.gateway_url, tomo, PASSWORD)
        await request_approval(trainee, subject, "A copy is attached.")
        await sup.route_web_socket("**/api/v1/live", muffled)
        await sign_in(sup, stack.gateway_url, sue, PASSWORD)
        await sup.get_by_test_id("nav-approvals").click()
        await queue_row(sup, subject).click()
        approve = sup.get_by_test_id("approve")
        await expect(approve).to_be_visible()
        approval_id = sup.url.rsplit("/", 1)[-1]
        code, got, _ = await call(stack, "GET", f"/api/v1/approvals/{approval_id}", token=sam_token)
        assert code == 200, got
        code, decided, _ = await call(
            stack,
            "POST",
            f"/api/v1/approvals/{approval_id}/decisions",
            {"verdict": "approve", "stage": got["stage"], "revision": got["revision"]},
            token=sam_token,
        )
        assert code == 200, decided
        await approve.click()
        await expect(sup.get_by_test_id("approval-notice")).to_contain_text(
            "Sam Supervisor decided this request first"
        )
        await expect(sup.get_by_test_id("approval-state")).to_have_text("Approved")
    finally:
        for c in contexts:
            await c.close()


async def test_the_policy_form_refuses_a_fourth_stage_and_shows_the_servers_field_error(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    admin_id, boss = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    tomo_id, _ = await operator(stack, admin, tenant, "Tomo Trainee", ["agent"])
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, boss, PASSWORD)
        await page.goto(f"{stack.gateway_url}/#/admin/approval")
        section = page.locator("[data-testid=admin-section][data-section=approval]")
        # the built-in policy is listed and cannot be deleted
        await expect(section.get_by_test_id("admin-row")).to_contain_text("built in")
        await expect(section.get_by_test_id("admin-remove")).to_have_count(0)
        await section.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("policy-form")
        await form.get_by_test_id("policy-name").fill("Careful replies")
        await form.get_by_test_id("add-stage").click()
        await form.get_by_test_id("add-stage").click()
        await expect(form.get_by_test_id("stage")).to_have_count(3)
        await form.get_by_test_id("add-stage").click()
        await expect(form.get_by_test_id("too-many-stages")).to_have_text(
            "A policy has at most three stages."
        )
        await expect(form.get_by_test_id("stage")).to_have_count(3)

        # stage 2 names an operator without choosing one: the server's 400 at its stage
        stage2 = form.get_by_test_id("stage").nth(1)
        await stage2.get_by_test_id("approver-kind").select_option("operator")
        await form.get_by_test_id("admin-save").click()
        error = form.get_by_test_id("policy-error")
        await expect(error).to_contain_text("Stage 2")
        await expect(stage2.get_by_test_id("stage-error")).to_be_visible()
        code, listed, _ = await call(stack, "GET", "/api/v1/approval-policies", token=admin)
        assert code == 200 and all(p["name"] != "Careful replies" for p in listed["policies"])

        await stage2.get_by_test_id("approver-id").select_option(admin_id)
        await form.get_by_test_id("stage").nth(2).get_by_test_id("stage-deadline").fill("30")
        await form.get_by_test_id("admin-save").click()
        await expect(form).to_have_count(0)
        made = section.get_by_test_id("admin-row").filter(has_text="Careful replies")
        await expect(made).to_contain_text("Ada Admin")
        await shot(page, "approval-policies")

        # an operator flagged "always needs approval until" a date
        await page.get_by_test_id("admin-operators").click()
        ops = page.locator("[data-testid=admin-section][data-section=operators]")
        tomo_row = ops.get_by_test_id("admin-row").filter(has_text="Tomo Trainee")
        await tomo_row.get_by_test_id("flag-open").click()
        dialog = page.get_by_test_id("flag-dialog")
        await dialog.get_by_test_id("flag-until-day").select_option(index=30)
        await dialog.get_by_test_id("flag-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Tomo Trainee")
        code, flags, _ = await call(stack, "GET", "/api/v1/approval-flags", token=admin)
        assert code == 200, flags
        assert [f["operator_id"] for f in flags["flags"] if f["until"]] == [tomo_id]
    finally:
        await ctx.close()
