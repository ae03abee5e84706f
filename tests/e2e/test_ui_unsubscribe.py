"""The public unsubscribe page in a real browser (issue 20, OUT-6), in Japanese and in
English as the mail's link says: opening it asks with one button and unsubscribes
nobody; the button unsubscribes (the address on the list, reason `unsubscribed`), and
opening the link again says so without a button; a tampered link is refused with a page
in the browser's language."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot
from tests.e2e.test_compose import desk
from tests.e2e.test_unsubscribe import link, listed

pytestmark = pytest.mark.e2e

WORDS = {
    "ja": {
        "title": "配信停止",
        "button": "配信を停止する",
        "ask": "キャンペーンメールの配信を停止しますか",
        "done": "配信を停止しました",
        "already": "すでに配信停止されています",
        "refused": "この配信停止のリンクは無効です。",
    },
    "en": {
        "title": "Unsubscribe",
        "button": "Unsubscribe",
        "ask": "Stop campaign mails to",
        "done": "You are unsubscribed",
        "already": "is already unsubscribed",
        "refused": "This unsubscribe link is not valid.",
    },
}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_the_page_asks_then_the_button_unsubscribes_in_the_mails_language(
    stack: Stack, browser: Browser, lang: str
) -> None:
    tenant, admin, _agent, _ = await desk(stack)
    address = f"page-{lang}-{uuid.uuid4().hex[:6]}@customer.example"
    url = link(stack, tenant.tenant_id, address, lang, campaign_id=str(uuid.uuid4()))
    words = WORDS[lang]
    # the browser's language is the other one: the page follows the mail's
    ctx = await context(browser, "en" if lang == "ja" else "ja")
    page = await ctx.new_page()
    try:
        answer = await page.goto(url)
        assert answer is not None and answer.status == 200
        await expect(page.locator("h1")).to_have_text(words["title"])
        await expect(page.locator("body")).to_contain_text(words["ask"])
        await expect(page.locator("body")).to_contain_text("p***@customer.example")
        await shot(page, f"unsubscribe-page-{lang}")
        assert await listed(stack, admin, address) == []  # opening it changed nothing

        await page.get_by_role("button", name=words["button"]).click()
        await expect(page.get_by_role("status")).to_contain_text(words["done"])
        await shot(page, f"unsubscribe-done-{lang}")
        [entry] = await listed(stack, admin, address)
        assert entry["reason"] == "unsubscribed"

        await page.goto(url)
        await expect(page.get_by_role("status")).to_contain_text(words["already"])
        await expect(page.get_by_role("button")).to_have_count(0)

        token = url.rsplit("/", 1)[1]
        body, _, sig = token.rpartition(".")
        tampered = f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{sig}"
        answer = await page.goto(url.rsplit("/", 1)[0] + "/" + tampered)
        assert answer is not None and answer.status == 400
        refused = WORDS["en" if lang == "ja" else "ja"]["refused"]  # the browser's language
        await expect(page.get_by_role("alert")).to_have_text(refused)
    finally:
        await ctx.close()
