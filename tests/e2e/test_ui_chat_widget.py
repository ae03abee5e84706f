"""The web chat widget in Debian's chromium (issue 21, ING-6) on a visitor's page of
another origin, against the whole running system: the labelled launcher opens the chat
with the focus in the message field; a message sent with Enter becomes a chat ticket;
an operator typing shows "An operator is typing…"; the operator's reply (delivered
through ChannelsService.Deliver) appears in the log; after a reload the conversation is
back, each message once; Escape closes it and gives the focus back to the launcher. When
nobody of the inbox is present, the widget offers the inquiry form instead, and the form
reaches the inbox. Japanese by the page's language."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot
from tests.chat_visitor import visitor_site
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_chat import chat_ticket, chat_widget, deliver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def operator_typing(
    stack: Stack, tenant_id: str, inbox_id: str, conversation_id: str
) -> None:
    """What the operator's replica announces when they type (gateway/live.py, chui's)."""
    nc = await nats.connect(stack.nats_url)
    note = {
        "tenant_id": tenant_id,
        "inbox_id": inbox_id,
        "conversation_id": conversation_id,
        "ticket_id": "",
        "who": "operator",
        "name": "Sato",
        "event": "typing",
    }
    await nc.publish("sb.live.chat", json.dumps(note).encode())
    await nc.flush()
    await nc.close()


async def test_a_visitor_chats_with_an_operator_by_keyboard(stack: Stack, browser: Browser) -> None:
    tenant, admin = await admin_of(stack)
    code, _, _ = await call(stack, "PUT", "/api/v1/me/presence", {"status": "online"}, token=admin)
    assert code == 200
    async with visitor_site(stack.gateway_url) as (origin, keys):
        widget = await chat_widget(
            stack, admin, tenant, [origin], greeting_en="Welcome to the shop!"
        )
        keys.append(widget["public_key"])
        ctx = await context(browser)
        page = await ctx.new_page()
        await page.goto(origin + "/")
        launcher = page.get_by_role("button", name="Chat with us")
        await launcher.focus()
        await page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Shop chat")
        await expect(dialog).to_be_visible()
        field = dialog.get_by_role("textbox", name="Message")
        await expect(field).to_be_focused()
        await expect(dialog.get_by_role("log")).to_contain_text("Welcome to the shop!")
        words = f"Where is my parcel {uuid.uuid4().hex[:6]}"
        await page.keyboard.type(words)
        await page.keyboard.press("Enter")
        await expect(dialog.locator(".b.in").filter(has_text=words)).not_to_have_class("wait")
        ticket = await chat_ticket(stack, admin, words)
        code, conv, _ = await call(
            stack, "GET", f"/api/v1/tickets/{ticket['id']}/conversation", token=admin
        )
        assert code == 200, conv
        await operator_typing(stack, tenant.tenant_id, tenant.inbox_id, conv["id"])
        await expect(dialog.get_by_role("status")).to_have_text("An operator is typing…")
        await deliver(stack, tenant, conv["id"], "It left our warehouse today.")
        reply = dialog.locator(".b.out").filter(has_text="It left our warehouse today.")
        await expect(reply).to_contain_text("佐藤")
        await expect(dialog.get_by_role("status")).to_have_text("")
        await shot(page, "chat-widget-conversation")
        # the page is loaded again: the conversation is back, each message once
        await page.reload()
        dialog = page.get_by_role("dialog", name="Shop chat")
        await expect(dialog.locator(".b.out").filter(has_text="It left")).to_have_count(1)
        await expect(dialog.locator(".b.in").filter(has_text=words)).to_have_count(1)
        await dialog.get_by_role("textbox", name="Message").focus()
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(page.get_by_role("button", name="Chat with us")).to_be_focused()
        await ctx.close()


async def test_with_nobody_present_the_widget_offers_the_inquiry_form(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    code, form, _ = await call(
        stack,
        "POST",
        "/api/v1/forms",
        {"inbox_id": tenant.inbox_id, "name": "Offline"},
        token=admin,
    )
    assert code == 201, form
    async with visitor_site(stack.gateway_url, lang="ja") as (origin, keys):
        widget = await chat_widget(stack, admin, tenant, [origin], offline_form_id=form["id"])
        keys.append(widget["public_key"])
        ctx = await context(browser, lang="ja")
        page: Page = await ctx.new_page()
        await page.goto(origin + "/")
        await page.get_by_role("button", name="チャットで問い合わせる").click()
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_contain_text("ただいま対応できる担当者がいません")
        await expect(dialog.get_by_role("textbox", name="メッセージ")).to_be_hidden()
        await expect(dialog.get_by_role("textbox", name="お名前（任意）")).to_be_focused()
        # an operator comes: the chat instead of the form; goes again: the form is back
        message = dialog.get_by_role("textbox", name="メッセージ")
        for status, chat_shown in (("online", True), ("offline", False)):
            code, _, _ = await call(
                stack, "PUT", "/api/v1/me/presence", {"status": status}, token=admin
            )
            assert code == 200
            await (
                expect(message).to_be_visible() if chat_shown else expect(message).to_be_hidden()
            )
        await dialog.get_by_role("textbox", name="お名前（任意）").focus()
        await page.keyboard.type("山田 花子")
        await dialog.get_by_role("textbox", name="メールアドレス").fill("hanako@customer.example")
        subject_words = f"在庫の確認 {uuid.uuid4().hex[:6]}"
        await dialog.get_by_role("textbox", name="お問い合わせ内容").fill(subject_words)
        await dialog.get_by_role("button", name="送信する").click()
        await expect(dialog).to_contain_text("送信しました")
        await shot(page, "chat-widget-offline-form")
        await ctx.close()
    ticket = await ticket_by_subject(stack, admin, subject_words)
    code, detail, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin)
    assert [m["channel"] for m in detail["messages"]] == ["form"]
