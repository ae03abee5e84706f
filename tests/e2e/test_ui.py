"""The operator web UI (issue 8) in a real browser — Debian's chromium driven by Playwright
— against the whole running system: the gateway serving the built app, every service, a
real SMTP intake and the SMTP server outbound delivers to. Nothing is mocked; the only
API calls a test makes itself are for setting up (a tenant, operators, a template).
Screenshots of the main screens are kept in .data/test-artifacts/."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.infra import free_port
from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.browser import TABLET, chromium, context, pick_time, shot, sign_in
from tests.dovecot import Dovecot
from tests.e2e.test_access import OWN_PASSWORD, own_operator, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call, log_in, new_operator
from tests.helpers import Tenant, eventually, make_mail, send
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e

PASSWORD = OWN_PASSWORD
CUSTOMER = "Taro Yamada <taro@customer.example>"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def operator(
    stack: Stack, admin: str, tenant: Tenant, name: str, roles: list[str], **fields: Any
) -> tuple[str, str]:
    """An operator who has chosen their own password (PASSWORD): (id, login)."""
    op_id, login, _ = await own_operator(
        stack, admin, tenant, display_name=name, roles=roles, **fields
    )
    return op_id, login


async def other_inbox(
    stack: Stack, admin: str, name: str, members: tuple[str, ...] = ()
) -> tuple[str, str]:
    """A second inbox of the tenant (the given members): its address and id."""
    address = f"{name.lower()}@{uuid.uuid4().hex[:8]}.example"
    code, made, _ = await call(
        stack,
        "POST",
        "/api/v1/inboxes",
        {"name": name, "addresses": [address], "member_ids": list(members)},
        token=admin,
    )
    assert code == 201, made
    return address, made["id"]


async def mail_in(stack: Stack, to: str, subject: str, body: str = "Hello\n") -> None:
    msg = make_mail(subject, sender=CUSTOMER, to=to, body=body)
    await asyncio.to_thread(send, stack.smtp_port, msg, [to])


def row(page: Page, subject: str) -> Any:
    return page.get_by_test_id("ticket-row").filter(has_text=subject)


async def schedule_reply(page: Page, subject: str, body: str) -> datetime:
    """Open the ticket, write a reply and send it at 09:00 tomorrow (UTC): that time."""
    await row(page, subject).click()
    await page.get_by_test_id("btn-reply").click()
    await page.get_by_test_id("body").fill(body)
    await page.get_by_test_id("later").check()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    await pick_time(page, "send-at", tomorrow)  # the tenant's zone is UTC
    await page.get_by_test_id("send").click()
    return tomorrow


async def test_two_operators_one_reply_the_lock_the_checks_and_the_sent_mail(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    _, ben = await operator(stack, admin, tenant, "Ben Agent", ["agent"])
    tag = uuid.uuid4().hex[:6]
    code, _, _ = await call(
        stack,
        "POST",
        "/api/v1/templates",
        {
            "name": f"請求書の送付 {tag}",
            "body_text": "{{customer.name}} 様\n\nご依頼の請求書を添付いたします。\n",
        },
        token=admin,
    )
    assert code == 201
    subject = f"請求書の再発行 {tag}"
    await mail_in(stack, tenant.address, subject, "請求書を再発行してください。\n")
    ticket = await ticket_by_subject(stack, admin, subject)

    a_ctx, b_ctx = await context(browser), await context(browser)
    a, b = await a_ctx.new_page(), await b_ctx.new_page()
    try:
        await sign_in(a, stack.gateway_url, aiko, PASSWORD)
        await sign_in(b, stack.gateway_url, ben, PASSWORD)
        await expect(row(a, subject)).to_be_visible()
        await expect(row(b, subject)).to_be_visible()
        await expect(b.get_by_test_id("live-state")).to_have_text("Live")

        # B looks at the ticket; A presses Reply: B sees it within a second and cannot reply
        await row(b, subject).click()
        await expect(b.get_by_test_id("btn-reply")).to_be_enabled()
        await row(a, subject).click()
        async with a.expect_response(lambda r: r.url.endswith("/lock") and r.status == 200):
            await a.get_by_test_id("btn-reply").click()
        locked_at = time.monotonic()
        await expect(b.get_by_test_id("lock-banner")).to_contain_text(
            "Aiko Agent is replying", timeout=1000
        )
        assert time.monotonic() - locked_at <= 1.0
        await expect(b.get_by_test_id("btn-reply")).to_be_disabled()
        await expect(b.get_by_test_id("btn-reply")).to_have_attribute(
            "title", "Aiko Agent is replying"
        )
        await expect(b.get_by_test_id("take-over")).to_have_count(0)  # agents may not
        await shot(b, "ticket-locked-by-another")

        # B goes back to the list: the row carries the badge
        await b.get_by_test_id("back").click()
        await expect(row(b, subject).get_by_test_id("lock-badge")).to_have_text(
            "Aiko Agent is replying"
        )
        resolved_before = int(await b.get_by_test_id("count-resolved").inner_text())

        # A inserts the template (it mentions 添付, and nothing is attached)
        await a.get_by_test_id("template-search").fill(tag)
        await a.get_by_test_id("template-item").filter(has_text=tag).click()
        # the reply body is the HTML editor (CMP-5): the template's text as paragraphs
        await expect(a.get_by_test_id("body").locator("p")).to_have_text(
            ["Taro Yamada 様", "ご依頼の請求書を添付いたします。"]
        )
        await a.get_by_test_id("status-after").select_option("resolved")
        await shot(a, "reply-editor")
        await a.get_by_test_id("send").click()
        dialog = a.get_by_test_id("checks-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("[data-code=attachment_forgotten]")).to_have_text(
            "The mail mentions an attachment (添付) but nothing is attached."
        )
        await shot(a, "pre-send-checks")
        await a.get_by_test_id("checks-confirm").click()
        await expect(a.get_by_test_id("editor")).to_have_count(0)

        # the mail reaches the SMTP server with the inbox's identity, threaded
        async def delivered() -> Any:
            return [
                r for r in smtp_peer.to("taro@customer.example") if tag in str(r.message["Subject"])
            ]

        [got] = await eventually(delivered, timeout=30)
        mail = got.message
        assert mail["From"].addresses[0].addr_spec == tenant.address
        assert str(mail["Subject"]) == f"Re: {subject}"
        original = (await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin))[1]
        first_id = original["messages"][0]["id"]
        parsed = (await call(stack, "GET", f"/api/v1/messages/{first_id}", token=admin))[1]
        assert mail["In-Reply-To"].strip("<>") == parsed["parsed"]["message_id"]
        assert parsed["parsed"]["message_id"] in mail["References"]
        assert "添付いたします" in mail.get_body(("plain",)).get_content()

        # B's open list loses the ticket, and the resolved count grows, without a reload
        await expect(row(b, subject)).to_have_count(0, timeout=15000)
        await expect(b.get_by_test_id("count-resolved")).to_have_text(str(resolved_before + 1))
        await b.get_by_test_id("tab-resolved").click()
        await expect(row(b, subject)).to_be_visible()
        await shot(b, "inbox-list")
        # A sees the sent mail in the timeline and its state
        await expect(a.locator("[data-testid=mail][data-channel=sent]")).to_have_count(
            1, timeout=15000
        )
        await expect(a.locator("[data-testid=send][data-state=sent]")).to_have_count(
            1, timeout=15000
        )
        await shot(a, "ticket-after-send")
    finally:
        await a_ctx.close()
        await b_ctx.close()


async def test_a_new_mail_appears_live_and_a_scheduled_send_can_be_cancelled(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await expect(page.get_by_test_id("live-state")).to_have_text("Live")
        await expect(page.get_by_test_id("empty")).to_be_visible()
        subject = f"Where is my parcel {uuid.uuid4().hex[:6]}"
        await mail_in(stack, tenant.address, subject)
        await expect(row(page, subject)).to_be_visible(timeout=15000)  # no reload
        await expect(page.get_by_test_id("count-open")).to_have_text("1")

        tomorrow = await schedule_reply(page, subject, "It left our warehouse today.")
        await expect(page.get_by_test_id("editor")).to_have_count(0)
        scheduled = page.locator("[data-testid=send][data-state=scheduled]")
        await expect(scheduled).to_be_visible()
        await expect(scheduled).to_contain_text("Scheduled")
        await shot(page, "scheduled-send")
        ticket = await ticket_by_subject(stack, admin, subject)

        async def send_at() -> datetime:
            sends = (
                await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=admin)
            )[1]
            return datetime.fromisoformat(sends["items"][0]["send_at"])

        first = await send_at()
        assert first == tomorrow
        await pick_time(page, "send-move-at", tomorrow + timedelta(days=1))
        await scheduled.get_by_test_id("send-move").click()

        async def moved() -> bool:
            return await send_at() - first == timedelta(days=1)

        await eventually(moved, timeout=10)
        await expect(page.get_by_test_id("ticket-notice")).to_have_count(0)
        await scheduled.get_by_test_id("send-cancel").click()
        await expect(page.locator("[data-testid=send][data-state=cancelled]")).to_be_visible()
        assert not smtp_peer.to("taro@customer.example") or all(
            subject not in str(r.message["Subject"]) for r in smtp_peer.to("taro@customer.example")
        )
        # the reply lock was let go when the send was scheduled
        await expect(page.get_by_test_id("btn-reply")).to_be_enabled()
    finally:
        await ctx.close()


async def test_a_mail_that_arrives_while_the_list_is_being_read_is_not_lost(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    ctx = await context(browser)
    page = await ctx.new_page()
    release = asyncio.Event()
    held: list[str] = []

    async def hold(route: Any) -> None:
        # the server's real answer, read now (before the mail) and delivered late
        response = await route.fetch()
        held.append(route.request.url)
        await release.wait()
        await route.fulfill(response=response)

    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await expect(page.get_by_test_id("live-state")).to_have_text("Live")
        await page.get_by_test_id("tab-pending").click()
        await expect(page.get_by_text("No tickets here.")).to_be_visible()
        await page.route(re.compile(r".*/api/v1/tickets\?.*status=open.*"), hold)
        await page.get_by_test_id("tab-open").click()
        await eventually(lambda: asyncio.sleep(0, bool(held)), timeout=10)
        subject = f"Arrived meanwhile {uuid.uuid4().hex[:6]}"
        await mail_in(stack, tenant.address, subject)
        await ticket_by_subject(stack, admin, subject)
        await expect(page.get_by_test_id("tab-open")).to_contain_text("1")  # pushed
        await asyncio.sleep(2)  # whatever else the new ticket announces arrives meanwhile
        await expect(row(page, subject)).to_be_visible()  # put in by the push
        release.set()  # the answer read before the mail now arrives: the row must stay
        await asyncio.sleep(1)
        assert await row(page, subject).count() == 1
    finally:
        release.set()
        await ctx.close()


async def test_sign_in_first_password_expired_password_notices_and_language(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, login, temporary = await new_operator(
        stack, admin, tenant, display_name="Chie New", roles=["agent"]
    )
    notice = {
        "title": "Maintenance tonight",
        "body": "The mail server restarts at 22:00.",
        "starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    code, made, _ = await call(stack, "POST", "/api/v1/notices", notice, token=admin)
    assert code == 201, made
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, login, "not the password")
        await expect(page.get_by_role("alert")).to_have_text("Wrong login or password.")

        await sign_in(page, stack.gateway_url, login, temporary)
        form = page.get_by_test_id("password-form")
        await expect(form).to_contain_text("temporary password")
        await shot(page, "first-password-change")
        await form.locator("input[name=current]").fill(temporary)
        await form.locator("input[name=new]").fill(PASSWORD)
        await form.locator("input[name=repeat]").fill(PASSWORD + "x")
        await form.locator("button[type=submit]").click()
        await expect(page.get_by_role("alert")).to_have_text("The two new passwords differ.")
        await form.locator("input[name=repeat]").fill(PASSWORD)
        await form.locator("button[type=submit]").click()
        notices = page.get_by_test_id("notices")
        await expect(notices).to_contain_text("Maintenance tonight")
        await shot(page, "notices")
        await notices.get_by_role("button").click()
        await expect(page.get_by_test_id("me")).to_have_text("Chie New")

        # Japanese, every visible string switched
        await page.get_by_test_id("lang").click()
        await expect(page.get_by_test_id("tab-open")).to_contain_text("未対応")
        await expect(page.get_by_test_id("logout")).to_have_text("ログアウト")
        await page.get_by_test_id("lang").click()
        await page.get_by_test_id("logout").click()
        await expect(page.get_by_test_id("login-form")).to_be_visible()

        # the password expires: the next sign-in asks for a new one before anything else
        code, _, _ = await call(
            stack, "PATCH", "/api/v1/tenant/settings", {"password_max_age_days": 30}, token=admin
        )
        assert code == 200
        conn = await asyncpg.connect(with_database(stack.database_url, "sb_accounts"))
        try:
            await conn.execute(
                "UPDATE operators SET password_changed_at = now() - interval '40 days' "
                "WHERE lower(login) = lower($1)",
                login,
            )
        finally:
            await conn.close()
        await sign_in(page, stack.gateway_url, login, PASSWORD)
        await expect(page.get_by_test_id("password-form")).to_contain_text("expired")
    finally:
        await ctx.close()


async def test_an_agent_sees_only_their_inboxes_and_a_trainee_sees_masked_addresses(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    private, _ = await other_inbox(stack, admin, "Private")
    _, agent = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    _, trainee = await operator(stack, admin, tenant, "Tomo Trainee", ["trainee"])
    secret, public = f"Board minutes {uuid.uuid4().hex[:6]}", f"Parcel {uuid.uuid4().hex[:6]}"
    await mail_in(stack, private, secret)
    await mail_in(stack, tenant.address, public)
    hidden = await ticket_by_subject(stack, admin, secret)
    await ticket_by_subject(stack, admin, public)

    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, agent, PASSWORD)
        await expect(row(page, public)).to_be_visible()
        await expect(page.get_by_test_id("inbox-link")).to_have_count(1)
        await expect(page.get_by_test_id("inbox-link")).to_contain_text("Help")
        await expect(row(page, secret)).to_have_count(0)
        await page.goto(f"{stack.gateway_url}/#/tickets/{hidden['id']}")
        await expect(page.get_by_test_id("ticket-error")).to_contain_text("No such ticket")
    finally:
        await ctx.close()

    ctx = await context(browser, viewport=TABLET)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, trainee, PASSWORD)
        await row(page, public).click()
        await expect(page.get_by_test_id("customer-address")).to_have_text("t***@c***.example")
        # a trainee may reply; the screen says their replies are approved before sending
        await expect(page.get_by_test_id("btn-reply")).to_be_enabled()
        await expect(page.get_by_test_id("trainee-help")).to_be_visible()
        await shot(page, "tablet-trainee-reply")
        # the search boxes say what is searched for them, and an address finds nothing
        await page.goto(f"{stack.gateway_url}/#/contacts")
        await expect(page.get_by_test_id("contact-row")).to_have_count(1)
        search = page.get_by_test_id("contact-search")
        await expect(search).to_have_attribute("placeholder", "Search name, company")
        await search.fill("taro@cust")
        await search.press("Enter")
        await expect(page.get_by_test_id("contact-row")).to_have_count(0)
        # the contact's addresses and phones are shown masked and read-only, and a memo
        # is saved without sending them back (the server refuses a change to them)
        await search.fill("")
        await search.press("Enter")
        await page.get_by_test_id("contact-row").click()
        addresses = page.get_by_test_id("contact-edit-addresses")
        await expect(addresses).to_have_value("t***@c***.example")
        await expect(addresses).not_to_be_editable()
        await expect(page.get_by_test_id("contact-edit-phones")).not_to_be_editable()
        await page.get_by_test_id("contact-memo").fill("Prefers mail.")
        await page.get_by_test_id("contact-save").click()
        await expect(page.get_by_test_id("contact-notice")).to_have_text("Saved.")
    finally:
        await ctx.close()


async def test_html_mail_is_shown_sanitised_in_a_sandboxed_frame_images_on_request(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, agent = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    subject = f"Newsletter {uuid.uuid4().hex[:6]}"
    msg = make_mail(subject, sender=CUSTOMER, to=tenant.address, body="plain part\n")
    msg.add_alternative(
        "<p id='hello' onclick='alert(1)'>Hello <b>friend</b></p>"
        "<script>parent.document.title='pwned'</script>"
        "<img alt='tracker' src='https://tracker.example/pixel.png'>",
        subtype="html",
    )
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])
    await ticket_by_subject(stack, admin, subject)
    ctx = await context(browser)
    page = await ctx.new_page()
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url) if "tracker.example" in r.url else None)
    try:
        await sign_in(page, stack.gateway_url, agent, PASSWORD)
        await row(page, subject).click()
        frame_el = page.get_by_test_id("mail-frame")
        await expect(frame_el).to_have_attribute(
            "sandbox", "allow-same-origin allow-popups allow-popups-to-escape-sandbox"
        )
        frame = page.frame_locator("[data-testid=mail-frame]")
        await expect(frame.locator("p").first).to_have_text("Hello friend")
        assert await frame.locator("p").first.get_attribute("onclick") is None
        await expect(frame.locator("script")).to_have_count(0)
        img = frame.locator("img")
        assert await img.get_attribute("src") is None
        assert await page.title() == "Switchboard" and remote == []
        await page.get_by_test_id("show-images").click()
        await expect(frame.locator("img")).to_have_attribute(
            "src", "https://tracker.example/pixel.png"
        )
        # the next mail of this sender shows them at once when the operator chose so
        await page.get_by_test_id("always-images").check()
        await page.reload()
        await expect(frame.locator("p").first).to_have_text("Hello friend")
        await expect(frame.locator("img")).to_have_attribute(
            "src", "https://tracker.example/pixel.png"
        )
        await expect(page.get_by_test_id("show-images")).to_have_count(0)
        await page.get_by_test_id("always-images").uncheck()
        await page.reload()
        await expect(frame.locator("p").first).to_have_text("Hello friend")
        assert await frame.locator("img").get_attribute("src") is None
    finally:
        await ctx.close()


async def test_the_counts_beside_the_tabs_cover_only_the_callers_inboxes(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    private, private_id = await other_inbox(stack, admin, "Private")
    _, agent = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    token = (await log_in(stack, agent, PASSWORD))[1]["token"]
    tag = uuid.uuid4().hex[:6]
    for n in range(3):
        await mail_in(stack, tenant.address, f"Counted {tag} {n}")
    await mail_in(stack, private, f"Hidden {tag}")
    first = await ticket_by_subject(stack, admin, f"Counted {tag} 0")
    await ticket_by_subject(stack, admin, f"Hidden {tag}")
    await ticket_by_subject(stack, admin, f"Counted {tag} 2")
    code, _, _ = await call(
        stack, "PATCH", f"/api/v1/tickets/{first['id']}", {"status": "pending"}, token=token
    )
    assert code == 200
    code, _, _ = await call(stack, "POST", f"/api/v1/tickets/{first['id']}/lock", token=token)
    assert code == 200

    code, mine, _ = await call(stack, "GET", "/api/v1/ticket-counts", token=token)
    assert code == 200
    assert mine["items"] == [
        {
            "inbox_id": tenant.inbox_id,
            "open": 2,
            "pending": 1,
            "resolved": 0,
            "no_action": 0,
            "trash": 0,
            "editing": 1,
            "awaiting_approval": 0,
        }
    ]
    code, everything, _ = await call(stack, "GET", "/api/v1/ticket-counts", token=admin)
    assert {c["inbox_id"]: c["open"] for c in everything["items"]} == {
        tenant.inbox_id: 2,
        private_id: 1,
    }
    assert (await call(stack, "GET", "/api/v1/ticket-counts"))[0] == 401


async def test_a_supervisor_takes_the_lock_over_and_the_replier_is_told_at_once(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    _, sue = await operator(stack, admin, tenant, "Sue Supervisor", ["supervisor"])
    subject = f"Refund {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    await ticket_by_subject(stack, admin, subject)
    a_ctx, s_ctx = await context(browser), await context(browser)
    a, s = await a_ctx.new_page(), await s_ctx.new_page()
    try:
        await sign_in(a, stack.gateway_url, aiko, PASSWORD)
        await sign_in(s, stack.gateway_url, sue, PASSWORD)
        await row(a, subject).click()
        await a.get_by_test_id("btn-reply").click()
        await a.get_by_test_id("body").fill("Our first answer")
        await expect(a.get_by_test_id("save-state")).to_have_text("Saved")
        await row(s, subject).click()
        await expect(s.get_by_test_id("lock-banner")).to_contain_text("Aiko Agent is replying")
        await s.get_by_test_id("take-over").click()
        await expect(s.get_by_test_id("editor")).to_be_visible()
        await expect(a.get_by_test_id("lock-lost")).to_contain_text("Sue Supervisor")
        await expect(a.get_by_test_id("send")).to_be_disabled()
        await shot(a, "lock-taken-over")
    finally:
        await a_ctx.close()
        await s_ctx.close()


async def test_comments_mention_with_autocomplete_and_a_ticket_moves_to_another_inbox(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    ben_id, ben = await operator(stack, admin, tenant, "Ben Billing", ["agent"])
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    _, sales_id = await other_inbox(stack, admin, "Sales", (ben_id,))
    code, body, _ = await call(
        stack,
        "PATCH",
        f"/api/v1/operators/{ben_id}",
        {"inbox_ids": [tenant.inbox_id, sales_id]},
        token=admin,
    )
    assert code == 200, body
    subject = f"Invoice question {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    ticket = await ticket_by_subject(stack, admin, subject)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await row(page, subject).click()
        box = page.get_by_test_id("comment-input")
        await box.click()
        await box.press_sequentially("Please check @ben")
        options = page.get_by_test_id("mention-list").get_by_role("option")
        await expect(options).to_have_count(1)
        await expect(options).to_contain_text("Ben Billing")
        await box.press("Enter")
        await expect(box).to_have_value(f"Please check @{ben} ")
        await page.get_by_test_id("comment-add").click()
        await expect(page.get_by_test_id("comment")).to_contain_text(f"@{ben}")
        detail = (await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin))[1]
        assert [m["name"] for m in detail["comments"][0]["mentions"]] == ["Ben Billing"]
        # a phone memo of the customer's call, in the timeline with who called
        memo = page.get_by_test_id("memo-form")
        await memo.locator("summary").click()
        await memo.get_by_role("textbox", name="Caller").fill("Taro Yamada")
        await memo.get_by_test_id("memo-body").fill("Called about the invoice; will pay Friday.")
        await memo.get_by_test_id("memo-add").click()
        logged = page.get_by_test_id("memo")
        await expect(logged).to_contain_text("Taro Yamada")
        await expect(logged).to_contain_text("will pay Friday")
        await expect(memo.get_by_test_id("memo-body")).to_have_value("")
        # Aiko keeps the ticket open in this tab and the list in another
        aikos_list = await ctx.new_page()
        await aikos_list.goto(f"{stack.gateway_url}/#/inbox/all/open")
        await expect(row(aikos_list, subject)).to_be_visible()

        bens = await context(browser)
        try:
            bens_page = await bens.new_page()
            await sign_in(bens_page, stack.gateway_url, ben, PASSWORD)
            await row(bens_page, subject).click()
            await bens_page.get_by_test_id("transfer").locator("summary").click()
            await bens_page.get_by_test_id("transfer-inbox").select_option(label="Sales")
            await (
                bens_page.get_by_test_id("transfer")
                .locator("textarea")
                .fill("Billing takes this one")
            )
            await bens_page.get_by_test_id("transfer-do").click()
            await expect(bens_page.get_by_test_id("ticket-inbox")).to_have_text("Sales")
        finally:
            await bens.close()
        # Aiko is not in Sales: the row leaves her list and the open ticket says why
        await expect(row(aikos_list, subject)).to_have_count(0)
        await expect(page.get_by_test_id("ticket-error")).to_have_text(
            "This ticket was moved to an inbox you do not see."
        )
    finally:
        await ctx.close()
    moved = (await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin))[1]
    assert moved["inbox"]["name"] == "Sales"


async def test_contacts_are_edited_merged_and_show_their_history(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    tag = uuid.uuid4().hex[:6]
    first, second = f"First order {tag}", f"Second address {tag}"
    await mail_in(stack, tenant.address, first)
    msg = make_mail(second, sender=f"Taro (work) <taro.{tag}@work.example>", to=tenant.address)
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])
    t1 = await ticket_by_subject(stack, admin, first)
    await ticket_by_subject(stack, admin, second)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await page.get_by_test_id("nav-contacts").click()
        await expect(page.get_by_test_id("contact-row")).to_have_count(2)
        await page.goto(f"{stack.gateway_url}/#/contacts/{t1['contact_id']}")
        await page.get_by_test_id("contact-edit-name").fill("山田 太郎")
        await page.get_by_test_id("custom-add").click()
        await page.get_by_test_id("custom-key").fill("会員番号")
        await page.get_by_test_id("custom-value").fill("A-1024")
        await page.get_by_test_id("contact-save").click()
        await expect(page.get_by_test_id("contact-name")).to_have_text("山田 太郎")
        await expect(page.get_by_test_id("custom-value")).to_have_value("A-1024")
        # the ticket's customer card shows what the address book knows
        await page.goto(f"{stack.gateway_url}/#/tickets/{t1['id']}")
        await expect(page.get_by_test_id("contact-facts")).to_contain_text("会員番号")
        await expect(page.get_by_test_id("contact-facts")).to_contain_text("A-1024")
        await page.goto(f"{stack.gateway_url}/#/contacts/{t1['contact_id']}")
        await page.get_by_test_id("merge-search").fill(f"taro.{tag}")
        await page.get_by_role("button", name="Find").click()
        await page.get_by_test_id("merge-this").click()
        await expect(page.get_by_test_id("contact-notice")).to_contain_text("merged")
        history = page.get_by_test_id("contact-timeline")
        await expect(history).to_contain_text(first)
        await expect(history).to_contain_text(second)
        await shot(page, "contact")
    finally:
        await ctx.close()
    code, merged, _ = await call(stack, "GET", f"/api/v1/contacts/{t1['contact_id']}", token=admin)
    assert code == 200 and f"taro.{tag}@work.example" in merged["addresses"]
    assert merged["custom"] == {"会員番号": "A-1024"}


async def test_administration_is_offered_by_permission_and_works_through_the_api(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        nav = page.get_by_test_id("nav-admin")
        await expect(nav).to_have_attribute("title", "You may not administer anything.")
        await page.goto(f"{stack.gateway_url}/#/admin")
        await expect(page.get_by_text("You may not administer anything.")).to_be_visible()
    finally:
        await ctx.close()

    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await page.get_by_test_id("nav-admin").click()
        await page.get_by_test_id("admin-operators").click()
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("admin-form")
        login = f"new-{uuid.uuid4().hex[:6]}@ops.example"
        await form.locator("#f-login").fill(login)
        await form.locator("#f-display_name").fill("Nao New")
        await form.locator("#f-roles").get_by_label("agent").check()
        await form.locator("#f-inbox_ids").get_by_label("Help").check()
        await page.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Temporary password")
        await expect(page.get_by_test_id("admin-row").filter(has_text=login)).to_be_visible()
        await shot(page, "admin-operators")

        await page.get_by_test_id("admin-templates").click()
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("admin-form")
        await form.locator("#f-kind").select_option("phrase")
        await form.locator("#f-name").fill("お詫び")
        await form.locator("#f-body_text").fill("様、大変申し訳ございません。")
        await form.locator("#f-body_text").press("Control+Home")
        words = form.get_by_test_id("words-f-body_text")
        await expect(words.get_by_role("button", name="{{customer.name}}")).to_have_attribute(
            "title", "the customer's name"
        )
        await words.get_by_role("button", name="{{customer.name}}").click()
        await expect(form.locator("#f-body_text")).to_have_value(
            "{{customer.name}}様、大変申し訳ございません。"
        )
        await page.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-row").filter(has_text="お詫び")).to_be_visible()

        # SMTP settings are tried before they are saved
        await page.get_by_test_id("admin-smtp").click()
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("admin-form")
        await form.locator("#f-name").fill("Our ESP")
        await form.locator("#f-host").fill("127.0.0.1")
        await form.locator("#f-port").fill(str(free_port()))
        await form.locator("#f-security").select_option("none")
        await page.get_by_test_id("admin-test").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Connection failed")
        await form.locator("#f-port").fill(str(smtp_peer.port))
        await page.get_by_test_id("admin-test").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Connection OK")
        await shot(page, "admin-smtp-test")
        await page.get_by_test_id("admin-save").click()
        await (
            page.get_by_test_id("admin-row")
            .filter(has_text="Our ESP")
            .get_by_test_id("admin-test-row")
            .click()
        )
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Connection OK")
        # an edit is tried before it is saved
        saved = page.get_by_test_id("admin-row").filter(has_text="Our ESP")
        await saved.get_by_role("button", name="Edit").click()
        form = page.get_by_test_id("admin-form")
        await form.locator("#f-port").fill(str(free_port()))
        await page.get_by_test_id("admin-test").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Connection failed")
        await form.locator("#f-port").fill(str(smtp_peer.port))
        await page.get_by_test_id("admin-test").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Connection OK")
    finally:
        await ctx.close()
    ops = (await call(stack, "GET", "/api/v1/operators", token=admin))[1]["items"]
    made = next(o for o in ops if o["login"] == login)
    assert made["display_name"] == "Nao New" and made["roles"] == ["agent"]
    assert made["inbox_ids"] == [tenant.inbox_id] and made["must_change_password"]
    phrases = (await call(stack, "GET", "/api/v1/templates?kind=phrase", token=admin))[1]["items"]
    assert [p["body_text"] for p in phrases] == ["{{customer.name}}様、大変申し訳ございません。"]


async def test_an_imap_mailbox_is_tried_saved_and_edited_in_the_administration_screen(
    stack: Stack, browser: Browser, dovecot: Dovecot
) -> None:
    tenant, admin = await admin_of(stack)
    first = (f"ui{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}")
    second = (f"ui{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}")
    for user, password in (first, second):
        dovecot.add_user(user, password)
    tag = f"Via IMAP {uuid.uuid4().hex[:6]}"
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await page.get_by_test_id("nav-admin").click()
        await page.get_by_test_id("admin-mailboxes").click()
        await page.get_by_test_id("admin-new").click()
        form = page.get_by_test_id("admin-form")
        await form.locator("#f-inbox_id").select_option(label="Help")
        await form.locator("#f-host").fill("127.0.0.1")
        await form.locator("#f-port").fill(str(dovecot.port))
        await form.locator("#f-security").select_option("none")
        await form.locator("#f-username").fill(first[0])
        await form.locator("#f-secret").fill("wrong")
        await page.get_by_test_id("admin-test").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("login refused")
        await form.locator("#f-secret").fill(first[1])
        await page.get_by_test_id("admin-test").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Connection OK")
        await page.get_by_test_id("admin-save").click()
        saved = page.get_by_test_id("admin-row").filter(has_text=first[0])
        await expect(saved).to_contain_text("idle", timeout=20_000)

        # Moved to another account: the stored password is tried (and refused) until the
        # new one is typed; the empty field says it keeps the stored one.
        await saved.get_by_role("button", name="Edit").click()
        form = page.get_by_test_id("admin-form")
        await expect(form.locator("#f-secret")).to_have_attribute("placeholder", re.compile("kept"))
        await expect(form.locator("#f-inbox_id")).to_have_value(tenant.inbox_id)
        await form.locator("#f-username").fill(second[0])
        await page.get_by_test_id("admin-test").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("login refused")
        await form.locator("#f-secret").fill(second[1])
        await page.get_by_test_id("admin-test").click()
        await expect(page.get_by_test_id("admin-notice")).to_contain_text("Connection OK")
        await page.get_by_test_id("admin-save").click()
        moved = page.get_by_test_id("admin-row").filter(has_text=second[0])
        await expect(moved).to_contain_text("idle", timeout=20_000)
        await shot(page, "admin-mailboxes")

        await page.goto(f"{stack.gateway_url}/#/inbox/all/open")
        dovecot.append(make_mail(f"{tag} to the second").as_bytes(), user=second[0])
        dovecot.append(make_mail(f"{tag} to the first").as_bytes(), user=first[0])
        await expect(row(page, f"{tag} to the second")).to_be_visible(timeout=20_000)
    finally:
        await ctx.close()
    await asyncio.sleep(2)
    code, body, _ = await call(stack, "GET", "/api/v1/tickets?limit=200", token=admin)
    assert code == 200
    assert not [t for t in body["items"] if t["subject"] == f"{tag} to the first"]
    code, body, _ = await call(stack, "GET", "/api/v1/mailboxes", token=admin)
    [mailbox] = body["items"]
    assert mailbox["username"] == second[0] and mailbox["state"]["last_error"] is None


async def test_a_file_attached_in_the_editor_goes_out_with_the_reply(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer, tmp_path: Any
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    tag = uuid.uuid4().hex[:6]
    subject = f"見積書をください {tag}"
    await mail_in(stack, tenant.address, subject)
    await ticket_by_subject(stack, admin, subject)
    quote = tmp_path / "見積書.pdf"
    quote.write_bytes(b"%PDF-1.4 quote " + tag.encode())
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await expect(page.get_by_test_id("tab-open")).to_contain_text("未対応")
        await row(page, subject).click()
        await page.get_by_test_id("btn-reply").click()
        await page.get_by_test_id("body").fill("見積書を添付いたします。")
        await page.get_by_test_id("attach-input").set_input_files(str(quote))
        await expect(page.get_by_test_id("editor")).to_contain_text("見積書.pdf")
        await expect(page.get_by_test_id("save-state")).to_have_text("保存済み")
        await page.get_by_test_id("send").click()
        # it mentions 添付 and has an attachment: no dialog, it goes
        await expect(page.get_by_test_id("editor")).to_have_count(0)
        await expect(page.get_by_test_id("checks-dialog")).to_have_count(0)
        await shot(page, "ticket-ja")
    finally:
        await ctx.close()

    async def delivered() -> Any:
        return [
            r for r in smtp_peer.to("taro@customer.example") if tag in str(r.message["Subject"])
        ]

    [got] = await eventually(delivered, timeout=30)
    [part] = list(got.message.iter_attachments())
    assert part.get_filename() == "見積書.pdf"
    assert part.get_content() == b"%PDF-1.4 quote " + tag.encode()


async def test_elapsed_time_colours_follow_the_clock_for_rows_that_arrived_live(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/inboxes/{tenant.inbox_id}/settings",
        {
            "thresholds": [
                {"after_minutes": 1, "color": "#ffcc00"},
                {"after_minutes": 3, "color": "#ff0000"},
            ],
            "new_ticket_after_days": 0,
        },
        token=admin,
    )
    assert code == 200, body
    ctx = await context(browser)
    page = await ctx.new_page()
    await page.clock.install()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await expect(page.get_by_test_id("live-state")).to_have_text("Live")
        subject = f"Waiting {uuid.uuid4().hex[:6]}"
        await mail_in(stack, tenant.address, subject)
        cell = row(page, subject).get_by_test_id("elapsed")
        await expect(cell).to_be_visible(timeout=15000)
        assert await cell.evaluate("e => e.style.background") == ""
        await page.clock.run_for("01:30")
        await expect(cell).to_have_css("background-color", "rgb(255, 204, 0)")
        await page.clock.run_for("02:00")
        await expect(cell).to_have_css("background-color", "rgb(255, 0, 0)")
        await expect(cell).to_have_text("3m")
    finally:
        await ctx.close()


async def test_the_frequent_actions_work_from_the_keyboard(stack: Stack, browser: Browser) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    tag = uuid.uuid4().hex[:6]
    for n in ("first", "second"):
        await mail_in(stack, tenant.address, f"Keys {tag} {n}")
    await ticket_by_subject(stack, admin, f"Keys {tag} first")
    await ticket_by_subject(stack, admin, f"Keys {tag} second")
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await expect(page.get_by_test_id("ticket-row")).to_have_count(2)
        await page.keyboard.press("j")  # the second row: the older mail
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("ticket-subject")).to_contain_text(f"Keys {tag} first")
        await page.keyboard.press("r")
        await expect(page.get_by_test_id("editor")).to_be_visible()
        await page.get_by_test_id("body").press("Escape")  # closes the editor, lets the lock go
        await expect(page.get_by_test_id("editor")).to_have_count(0)

        async def released() -> bool:
            t = await ticket_by_subject(stack, admin, f"Keys {tag} first")
            return t["lock"] is None

        await eventually(released, timeout=10)
        await page.keyboard.press("Escape")
        await expect(page.get_by_test_id("inbox-screen")).to_be_visible()
        await page.keyboard.press("?")
        await expect(page.get_by_test_id("keys-help")).to_contain_text("Ctrl+Enter send")
        await page.keyboard.press("Escape")
        await page.keyboard.press("/")
        await page.keyboard.type(f"{tag} second")
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("ticket-row")).to_have_count(1)
        await expect(page.get_by_test_id("ticket-row")).to_contain_text(f"Keys {tag} second")
    finally:
        await ctx.close()


PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2237f5c0000000049454e44ae426082"
)


async def test_images_inside_the_mail_are_shown_from_its_parts_when_permitted(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    subject = f"Photo of the damage {uuid.uuid4().hex[:6]}"
    msg = make_mail(subject, sender=CUSTOMER, to=tenant.address, body="see the photo\n")
    msg.add_alternative(
        "<p>The box:</p><img alt='box' src='cid:box@customer.example'>", subtype="html"
    )
    msg.get_payload()[1].add_related(
        PNG_1X1, maintype="image", subtype="png", cid="<box@customer.example>"
    )
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])
    await ticket_by_subject(stack, admin, subject)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await row(page, subject).click()
        img = page.frame_locator("[data-testid=mail-frame]").locator("img")
        await expect(img).to_have_attribute(
            "src", re.compile(r"^/api/v1/messages/.+/attachments/\d+$")
        )

        async def loaded() -> bool:
            return await img.evaluate("i => i.complete && i.naturalWidth") == 1

        await eventually(loaded, timeout=10)
    finally:
        await ctx.close()


async def test_a_draft_autosaves_and_comes_back_after_a_reload_which_frees_the_lock(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    subject = f"Autosave {uuid.uuid4().hex[:6]}"
    await mail_in(stack, tenant.address, subject)
    ticket = await ticket_by_subject(stack, admin, subject)
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await row(page, subject).click()
        await page.get_by_test_id("btn-reply").click()
        await page.get_by_test_id("body").fill("半分まで書いた返信")
        await expect(page.get_by_test_id("save-state")).to_have_text("Saved")
        await page.reload()

        async def free() -> bool:
            t = await ticket_by_subject(stack, admin, subject)
            return t["lock"] is None

        await eventually(free, timeout=10)  # the page going away let the lock go
        await page.get_by_test_id("btn-reply").click()
        await expect(page.get_by_test_id("body")).to_have_text("半分まで書いた返信")
        drafts = (await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}/drafts", token=admin))[
            1
        ]
        assert len(drafts["items"]) == 1
    finally:
        await ctx.close()


async def test_an_inbox_automatic_reply_is_set_in_the_administration_screen(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    code, tpl, _ = await call(
        stack,
        "POST",
        "/api/v1/templates",
        {
            "name": "受付のお知らせ",
            "subject": "受付しました",
            "body_text": "お問い合わせを受け付けました。",
        },
        token=admin,
    )
    assert code == 201
    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await page.goto(f"{stack.gateway_url}/#/admin/autoreply")
        await (
            page.get_by_test_id("admin-row")
            .filter(has_text="Help")
            .get_by_role("button", name="Edit")
            .click()
        )
        form = page.get_by_test_id("admin-form")
        await form.locator("#f-enabled").check()
        await form.locator("#f-mode").select_option("outside_hours")
        await form.locator("#f-hours").fill("Mon 09:00-18:00\nTue 09:00-18:00")
        await form.locator("#f-time_zone").fill("Asia/Tokyo")
        await form.locator("#f-template_id").select_option(label="受付のお知らせ")
        await form.locator("#f-period_hours").fill("24")
        await page.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("Saved.")
        await expect(page.get_by_test_id("admin-row").filter(has_text="Help")).to_contain_text(
            "Mon 09:00-18:00, Tue 09:00-18:00"
        )
    finally:
        await ctx.close()
    code, got, _ = await call(
        stack, "GET", f"/api/v1/inboxes/{tenant.inbox_id}/auto-reply", token=admin
    )
    assert code == 200
    assert got["enabled"] and got["mode"] == "outside_hours" and got["template_id"] == tpl["id"]
    assert got["hours"] == [
        {"weekday": 1, "start": "09:00", "end": "18:00"},
        {"weekday": 2, "start": "09:00", "end": "18:00"},
    ]
    assert got["time_zone"] == "Asia/Tokyo" and got["period_hours"] == 24


async def test_an_infected_mail_shows_its_virus_and_offers_no_download(
    stack: Stack, browser: Browser
) -> None:
    """ING-5: the verdict in the mail (Japanese UI), its files listed but not links; a
    clean mail's files carry a small "scanned" mark and download as usual."""
    from tests.clamd import EICAR, SIGNATURE

    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    tag = uuid.uuid4().hex[:6]
    infected, clean = f"Invoice {tag}", f"Report {tag}"
    for subject, name, data in ((infected, "invoice.com", EICAR), (clean, "report.txt", b"ok")):
        msg = make_mail(subject, sender=CUSTOMER, to=tenant.address, body="attached\n")
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
        await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])
    await ticket_by_subject(stack, admin, clean)
    ctx = await context(browser, lang="ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, aiko, PASSWORD)
        await expect(row(page, clean)).to_be_visible()
        await expect(row(page, infected)).to_have_count(0)  # not in the open queue
        await page.get_by_test_id("tab-trash").click()
        await row(page, infected).click()
        verdict = page.get_by_test_id("virus-found")
        await expect(verdict).to_contain_text("ウイルスが検出されました")
        await expect(verdict).to_contain_text(f"invoice.com：{SIGNATURE}")
        attachments = page.locator(".attachments")
        await expect(attachments).to_contain_text("invoice.com")
        await expect(attachments.locator("a")).to_have_count(0)
        await shot(page, "mail-virus-ja")
        await page.goto(f"{stack.gateway_url}/#/inbox/all/open")
        await row(page, clean).click()
        await expect(page.get_by_test_id("virus-clean")).to_have_text("ウイルス検査済み")
        await expect(page.locator(".attachments a", has_text="report.txt")).to_have_count(1)
        await expect(page.get_by_test_id("virus-found")).to_have_count(0)
    finally:
        await ctx.close()
