"""A reply to a channel conversation in the web UI (issue 21), in a real browser against the
whole running system: an agent answers an API channel's ticket in the normal reply editor;
once the conversation's reply window has closed the send is refused and the editor says
so in the agent's language (ja and en), with when it closed; after the customer writes
again the same reply goes and reaches the channel's webhook as plain text. A trainee's
reply approved only after the window closed shows in the ticket as a failed send, the
reason in the operator's words, and the history calls it a reply through the channel."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, sign_in
from tests.e2e.test_access import operator_token, own_operator
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_channel_replies import (
    Bridge,
    approve_and_send,
    channel_draft,
    open_bridge,
)
from tests.e2e.test_ui import PASSWORD, operator, row
from tests.helpers import Tenant, eventually

pytestmark = pytest.mark.e2e

WINDOW_S = 8
WORDS = {
    "en": "The reply window of this conversation has closed",
    "ja": "この会話の返信期限を過ぎたため",
}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@asynccontextmanager
async def windowed_bridge(stack: Stack, tenant: Tenant, admin: str) -> AsyncIterator[Bridge]:
    """An API channel of the tenant's inbox whose reply window is WINDOW_S seconds."""
    async with open_bridge(stack, tenant, admin, admin) as b:
        await b.window(WINDOW_S)
        yield b


@pytest.mark.parametrize("language", ["en", "ja"])
async def test_the_editor_says_the_window_closed_then_the_reply_goes_when_the_customer_writes(
    stack: Stack, browser: Browser, language: str
) -> None:
    tenant, admin = await admin_of(stack)
    _, login = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    async with windowed_bridge(stack, tenant, admin) as b:
        tag = uuid.uuid4().hex[:8]
        conversation = f"conv-{tag}"
        said = time.monotonic()
        await b.says(conversation, f"配送 {tag} について")
        ticket = await b.ticket(tag)
        ctx = await context(browser, lang=language)
        page = await ctx.new_page()
        try:
            await sign_in(page, stack.gateway_url, login, PASSWORD)
            await row(page, ticket["subject"]).click()
            await page.get_by_test_id("btn-reply").click()
            await page.get_by_test_id("body").fill(f"明日お届けします [{tag}]")
            await expect(page.get_by_test_id("save-state")).to_have_text(
                "Saved" if language == "en" else "保存済み"
            )
            await asyncio.sleep(max(0.0, WINDOW_S + 0.5 - (time.monotonic() - said)))
            editor = page.get_by_test_id("editor")
            await editor.get_by_test_id("send").click()
            error = page.get_by_test_id("editor-error")
            await expect(error).to_contain_text(WORDS[language])
            await expect(error).to_contain_text("reply window closed at")  # the detail: when
            # the whole sentence, not under the recipients' label ("To: …")
            assert (await error.inner_text()).startswith(WORDS[language])
            assert await b.posted(conversation) == []

            await b.says(conversation, "お願いします")  # the window opens again
            await editor.get_by_test_id("send").click()
            await expect(page.get_by_test_id("editor")).to_have_count(0)
            [hook] = await eventually(lambda: b.posted(conversation), timeout=30)
            assert hook["text"] == f"明日お届けします [{tag}]"
            assert hook["author"]["name"] == "Aiko Agent"
        finally:
            await ctx.close()


async def test_a_compact_reply_refused_for_the_closed_window_lets_the_lock_go(
    stack: Stack, browser: Browser
) -> None:
    """Enter in the compact chat composer after the window closed: the reason is shown and
    the reply lock is let go at once — colleagues are not told "replying" for minutes."""
    tenant, admin = await admin_of(stack)
    _, login = await operator(stack, admin, tenant, "Aiko Agent", ["agent"])
    async with windowed_bridge(stack, tenant, admin) as b:
        tag = uuid.uuid4().hex[:8]
        said = time.monotonic()
        await b.says(f"conv-{tag}", f"返品 {tag} について")
        ticket = await b.ticket(tag)
        ctx = await context(browser, lang="en")
        page = await ctx.new_page()
        try:
            await sign_in(page, stack.gateway_url, login, PASSWORD)
            await row(page, ticket["subject"]).click()
            await asyncio.sleep(max(0.0, WINDOW_S + 0.5 - (time.monotonic() - said)))
            box = page.get_by_test_id("chat-input")
            await box.fill(f"承知しました [{tag}]")
            await box.press("Enter")
            await expect(page.get_by_test_id("chat-error")).to_contain_text(WORDS["en"])

            async def let_go() -> bool:
                code, t, _ = await call(
                    stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin
                )
                assert code == 200, t
                return t["lock"] is None

            await eventually(let_go, timeout=10)
            assert await b.posted(f"conv-{tag}") == []
        finally:
            await ctx.close()


async def test_a_reply_approved_after_the_window_closed_shows_failed_with_the_reason_in_words(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    _, login, trainee = await own_operator(
        stack, admin, tenant, display_name="研修 三郎", roles=["trainee"]
    )
    supervisor = await operator_token(
        stack, admin, tenant, roles=["agent", "supervisor"], display_name="上長"
    )
    async with windowed_bridge(stack, tenant, admin) as b:
        tag = uuid.uuid4().hex[:8]
        said = time.monotonic()
        await b.says(f"conv-{tag}", f"解約 {tag} の件")
        ticket = await b.ticket(tag, trainee)
        draft, _ = await channel_draft(b, ticket, trainee, body_text=f"承りました [{tag}]")
        code, req, _ = await call(
            stack, "POST", f"/api/v1/drafts/{draft['id']}/approval", {}, token=trainee
        )
        assert code == 201, req
        await asyncio.sleep(max(0.0, WINDOW_S + 0.5 - (time.monotonic() - said)))
        await approve_and_send(b, supervisor, req)

        async def failed() -> bool:
            code, page, _ = await call(
                stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=trainee
            )
            return code == 200 and any(x["state"] == "failed" for x in page["items"])

        await eventually(failed, timeout=30)
        ctx = await context(browser, lang="ja")
        page = await ctx.new_page()
        try:
            await sign_in(page, stack.gateway_url, login, PASSWORD)
            await page.goto(f"{stack.gateway_url}/#/tickets/{ticket['id']}")
            send = page.locator("[data-testid=send][data-state=failed]")
            await expect(send).to_contain_text("送信失敗")
            await expect(send.get_by_test_id("send-reason")).to_contain_text(WORDS["ja"])
            submitted = page.locator("[data-testid=activity][data-action='send.submitted']")
            await expect(submitted).to_contain_text("APIチャネルでの返信を送信に登録")
            await expect(submitted).not_to_contain_text("メール")
        finally:
            await ctx.close()
