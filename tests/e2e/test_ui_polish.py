"""Four rough edges of the web UI, in a real browser against the whole running system: a
single-key shortcut does nothing while a dialog is open; forwarding says "Mail being
forwarded" beside the editor; administration asks before deleting in the app's own
dialog, not the browser's; the reply's "… wrote:" line is in the language the operator
reads the UI in — in English and Japanese."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Dialog, Page, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, sign_in
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_ui import PASSWORD, mail_in, operator, row
from tests.e2e.test_ui_reply import desk, replying

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def signed_in(
    stack: Stack, browser: Browser, login: str, password: str = PASSWORD, lang: str = "en"
) -> tuple[BrowserContext, Page]:
    """A browser context in `lang` and its page, signed in."""
    ctx = await context(browser, lang=lang)
    page = await ctx.new_page()
    await sign_in(page, stack.gateway_url, login, password)
    return ctx, page


def no_browser_dialogs(page: Page) -> list[str]:
    """The browser's own alert/confirm/prompt dialogs the page opens (dismissed)."""
    seen: list[str] = []

    async def dismiss(d: Dialog) -> None:
        seen.append(d.message)
        await d.dismiss()

    page.on("dialog", dismiss)
    return seen


async def test_shortcuts_do_nothing_behind_an_open_dialog(stack: Stack, browser: Browser) -> None:
    tenant, admin = await admin_of(stack)
    _, aiko = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    tag = uuid.uuid4().hex[:6]
    for n in ("first", "second"):
        await mail_in(stack, tenant.address, f"Quiet {tag} {n}")
    first = await ticket_by_subject(stack, admin, f"Quiet {tag} first")
    await ticket_by_subject(stack, admin, f"Quiet {tag} second")
    ctx, page = await signed_in(stack, browser, aiko)
    help_ = page.get_by_test_id("keys-help")
    try:
        rows = page.get_by_test_id("ticket-row")
        await expect(rows).to_have_count(2)

        # the list's keys under the keyboard help: no row marked, none opened
        await page.keyboard.press("?")
        await expect(help_).to_be_visible()
        for key in ("x", "j", "x", "/"):
            await page.keyboard.press(key)
        await expect(help_).to_be_visible()
        await expect(page.locator("[data-testid=ticket-row].selected")).to_have_count(0)
        # Enter presses the help's Close, and opens no ticket behind it
        await page.keyboard.press("Enter")
        await expect(help_).to_have_count(0)
        await expect(page.get_by_test_id("inbox-screen")).to_be_visible()
        await expect(page.get_by_test_id("ticket-screen")).to_have_count(0)
        await expect(page.locator("[data-testid=ticket-row].selected")).to_have_count(0)
        await expect(page.locator("[data-testid=ticket-row] input:checked")).to_have_count(0)
        # and they work again once it is closed
        await page.keyboard.press("x")
        await expect(page.locator("[data-testid=ticket-row].selected")).to_have_count(1)

        # r under the keyboard help starts no reply; ? closes the help again
        await row(page, f"Quiet {tag} first").click()
        await expect(page.get_by_test_id("ticket-subject")).to_contain_text(f"Quiet {tag} first")
        await page.keyboard.press("?")
        await expect(help_).to_be_visible()
        await page.keyboard.press("r")
        await page.keyboard.press("?")
        await expect(help_).to_have_count(0)
        # a round trip through the server after the key: a reply begun would show by now
        await page.get_by_test_id("comment-input").fill(f"checked {tag}")
        await page.get_by_test_id("comment-add").click()
        await expect(page.get_by_test_id("comment")).to_contain_text(f"checked {tag}")
        await expect(page.get_by_test_id("editor")).to_have_count(0)
        await expect(page.get_by_test_id("btn-reply")).to_be_visible()
        got = (await call(stack, "GET", f"/api/v1/tickets/{first['id']}", token=admin))[1]
        assert got["lock"] is None, got["lock"]
        await expect(page.get_by_test_id("ticket-screen")).to_be_visible()

        # with the help closed, r replies as before
        await page.evaluate("document.activeElement.blur()")  # out of the memo box
        await page.keyboard.press("r")
        await expect(page.get_by_test_id("editor")).to_be_visible()
    finally:
        await ctx.close()


@pytest.mark.parametrize(
    ("lang", "forwarding", "answering", "title"),
    [
        ("en", "Mail being forwarded", "Mail being answered", "Forward"),
        ("ja", "転送するメール", "返信元のメール", "転送"),
    ],
)
async def test_forwarding_says_the_mail_is_being_forwarded(
    stack: Stack, browser: Browser, lang: str, forwarding: str, answering: str, title: str
) -> None:
    d = await desk(stack, "Invoice", "Please send the invoice again.\n")
    ctx, page = await signed_in(stack, browser, d.login, lang=lang)
    try:
        await row(page, d.subject).click()
        await page.get_by_test_id("btn-forward").click()
        editor = page.get_by_test_id("editor")
        beside = page.get_by_test_id("answering")
        await expect(beside.get_by_test_id("mail-text")).to_contain_text("send the invoice again")
        await expect(beside).to_contain_text(forwarding)
        await expect(beside).not_to_contain_text(answering)
        await expect(editor.locator("h2").first).to_have_text(title)
        await page.get_by_test_id("close-editor").click()
        await expect(editor).to_have_count(0)

        # a reply still says it answers
        await page.get_by_test_id("btn-reply").click()
        await expect(beside).to_contain_text(answering)
        await expect(beside).not_to_contain_text(forwarding)
    finally:
        await ctx.close()


@pytest.mark.parametrize(
    ("lang", "question", "cancel", "delete"),
    [("en", "Delete this?", "Cancel", "Delete"), ("ja", "削除しますか？", "キャンセル", "削除")],
)
async def test_administration_asks_before_deleting_in_its_own_dialog(
    stack: Stack, browser: Browser, lang: str, question: str, cancel: str, delete: str
) -> None:
    tenant, admin = await admin_of(stack)
    value = f"x-{uuid.uuid4().hex[:6]}@spam.example"
    code, made, _ = await call(
        stack, "POST", "/api/v1/blocklist", {"kind": "address", "value": value}, token=admin
    )
    assert code == 201, made

    async def blocked() -> list[str]:
        body = (await call(stack, "GET", "/api/v1/blocklist", token=admin))[1]
        return [b["value"] for b in body["items"]]

    ctx, page = await signed_in(stack, browser, tenant.login, tenant.password, lang)
    native = no_browser_dialogs(page)
    try:
        await expect(page.get_by_test_id("nav-admin")).to_be_visible()
        await page.goto(f"{stack.gateway_url}/#/admin/blocklist")
        entry = page.get_by_test_id("admin-row").filter(has_text=value)
        remove = entry.get_by_test_id("admin-remove")
        ask = page.get_by_test_id("admin-remove-dialog")

        # Esc keeps the row, and the focus comes back to its button
        await remove.click()
        await expect(ask).to_contain_text(question)
        await expect(ask.get_by_test_id("admin-remove-cancel")).to_have_text(cancel)
        await expect(ask.get_by_test_id("admin-remove-confirm")).to_have_text(delete)
        await expect(ask.get_by_test_id("admin-remove-cancel")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(ask).to_have_count(0)
        await expect(remove).to_be_focused()
        await expect(page.get_by_test_id("admin-section")).to_be_visible()  # still here

        # Cancel keeps it too
        await remove.click()
        await ask.get_by_test_id("admin-remove-cancel").click()
        await expect(ask).to_have_count(0)
        await expect(entry).to_have_count(1)
        assert value in await blocked()

        # the confirmation deletes it
        await remove.click()
        await ask.get_by_test_id("admin-remove-confirm").click()
        await expect(ask).to_have_count(0)
        await expect(entry).to_have_count(0)
        assert value not in await blocked()
        assert native == []
    finally:
        await ctx.close()


@pytest.mark.parametrize(
    ("lang", "profile", "header", "other"),
    [("en", "ja", " wrote:", "さんは書きました"), ("ja", "en", "さんは書きました：", " wrote:")],
)
async def test_the_quote_header_follows_the_language_of_the_ui(
    stack: Stack, browser: Browser, lang: str, profile: str, header: str, other: str
) -> None:
    # the operator's profile says one language, the UI she reads says the other
    d = await desk(stack, "Quote", "Where is my parcel?\n", language=profile)
    ctx, page = await signed_in(stack, browser, d.login, lang=lang)
    try:
        await replying(page, d.subject)
        await page.get_by_test_id("preview").click()
        text = page.get_by_test_id("preview-dialog").get_by_test_id("preview-text")
        await expect(text).to_contain_text("> Where is my parcel?")
        await expect(text).to_contain_text(header)
        await expect(text).not_to_contain_text(other)
    finally:
        await ctx.close()
