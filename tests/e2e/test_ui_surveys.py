"""Satisfaction surveys in a real browser (issue 20, OUT-5): an administrator turns an
inbox's survey on in Japanese, and a value out of range is refused at its field with
nothing saved; an operator resolves "without survey" — in the ticket, on a bulk change
and with a reply — only where the inbox has surveys on, and no survey goes; the customer's
rating link opens the public page, which records the rating, keeps the comment and
changes the rating on a second click (one answer), and refuses a tampered link, in
Japanese and in English."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_access import own_operator, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_surveys import (
    MORE,
    QUESTIONS,
    mailed,
    rating_links,
    settled_episodes,
    survey_on,
    surveys_to,
)
from tests.e2e.test_ui import PASSWORD, mail_in, other_inbox, row
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


async def settings(stack: Stack, admin: str, inbox_id: str) -> dict[str, Any]:
    code, out, _ = await call(stack, "GET", f"/api/v1/inboxes/{inbox_id}/survey", token=admin)
    assert code == 200, out
    return out


async def test_an_administrator_turns_the_survey_on_in_japanese_a_bad_delay_refused_at_its_field(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    before = await settings(stack, admin, tenant.inbox_id)
    assert before["enabled"] is False
    ctx = await context(browser, "ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await expect(page.get_by_test_id("nav-inboxes")).to_be_visible()
        await page.goto(f"{stack.gateway_url}/#/admin/survey")
        await expect(page.get_by_test_id("admin-survey")).to_have_text("満足度アンケート")
        form = page.get_by_test_id("survey-form")
        # the stored values, read: off, the default delay and suppression
        await expect(page.get_by_test_id("survey-enabled")).not_to_be_checked()
        await expect(page.get_by_test_id("survey-delay_minutes")).to_have_value("60")
        await expect(page.get_by_test_id("survey-skip_auto_resolved")).to_be_checked()
        await expect(form).to_contain_text("解決から送信までの時間")

        await page.get_by_test_id("survey-enabled").check()
        await page.get_by_test_id("survey-question_ja").fill(QUESTIONS["question_ja"])
        await page.get_by_test_id("survey-question_en").fill(QUESTIONS["question_en"])
        await page.get_by_test_id("survey-scale_style").select_option("faces")
        await page.get_by_test_id("survey-skip_labels").fill("クレーム\nspam-ish")
        await page.get_by_test_id("survey-contact_days").fill("30")
        await page.get_by_test_id("survey-delay_minutes").fill("50000")  # over 30 days
        await page.get_by_test_id("admin-save").click()
        refusal = page.get_by_test_id("survey-error")
        await expect(refusal).to_have_attribute("data-field", "delay_minutes")
        await expect(refusal).to_contain_text("0〜43200分")
        # shown at the field it names
        at_field = page.locator("[data-field=delay_minutes]").get_by_test_id("survey-error")
        await expect(at_field).to_be_visible()
        await expect(page.get_by_test_id("survey-delay_minutes")).to_have_attribute(
            "aria-invalid", "true"
        )
        await shot(page, "survey-settings-refused-ja")
        assert await settings(stack, admin, tenant.inbox_id) == before  # nothing saved

        await page.get_by_test_id("survey-delay_minutes").fill("15")
        await page.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("保存しました。")
        await expect(refusal).to_have_count(0)
        saved = await settings(stack, admin, tenant.inbox_id)
        assert saved["enabled"] is True and saved["delay_minutes"] == 15
        assert saved["question_ja"] == QUESTIONS["question_ja"]
        assert saved["scale_style"] == "faces" and saved["contact_days"] == 30
        assert saved["skip_labels"] == ["クレーム", "spam-ish"] and saved["updated_at"]

        # read again as stored, with when it was saved
        await page.reload()
        await expect(page.get_by_test_id("survey-enabled")).to_be_checked()
        await expect(page.get_by_test_id("survey-question_ja")).to_have_value(
            QUESTIONS["question_ja"]
        )
        await expect(page.get_by_test_id("survey-scale_style")).to_have_value("faces")
        await expect(page.get_by_test_id("survey-delay_minutes")).to_have_value("15")
        await expect(form).to_contain_text("最終保存")
        await shot(page, "survey-settings-ja")
    finally:
        await ctx.close()


async def test_an_administrator_adds_reorders_and_removes_additional_questions_in_japanese(
    stack: Stack, browser: Browser
) -> None:
    tenant, admin = await admin_of(stack)
    await survey_on(stack, admin, tenant.inbox_id)
    ctx = await context(browser, "ja")
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, tenant.login, tenant.password)
        await page.goto(f"{stack.gateway_url}/#/admin/survey")
        box = page.get_by_test_id("survey-questions")
        await expect(box.locator("legend")).to_have_text("追加の質問（4つまで）")
        add = page.get_by_test_id("survey-q-add")
        await add.click()
        await page.get_by_label("質問 1（日本語）").fill(MORE[0]["text_ja"])
        # the English text left out: refused at the questions, nothing saved
        await page.get_by_test_id("admin-save").click()
        refusal = box.get_by_test_id("survey-error")
        await expect(refusal).to_contain_text("追加の質問を確認してください")
        assert (await settings(stack, admin, tenant.inbox_id))["questions"] == []
        await page.get_by_label("質問 1（英語）").fill(MORE[0]["text_en"])
        await add.click()
        await page.get_by_label("質問 2（日本語）").fill(MORE[1]["text_ja"])
        await page.get_by_label("質問 2（英語）").fill(MORE[1]["text_en"])
        await page.get_by_role("button", name="質問 2 を上へ").click()  # now the first
        await page.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("保存しました。")
        saved = (await settings(stack, admin, tenant.inbox_id))["questions"]
        assert [(q["text_ja"], q["text_en"]) for q in saved] == [
            (MORE[1]["text_ja"], MORE[1]["text_en"]),
            (MORE[0]["text_ja"], MORE[0]["text_en"]),
        ]
        assert len({q["id"] for q in saved}) == 2
        for _ in range(2):
            await add.click()
        await expect(add).to_be_disabled()  # four at most
        await shot(page, "survey-questions-ja")
        # read again: two, in order; removing the first keeps the other's id
        await page.reload()
        await expect(page.get_by_test_id("survey-question")).to_have_count(2)
        await expect(page.get_by_label("質問 1（日本語）")).to_have_value(MORE[1]["text_ja"])
        await page.get_by_test_id("survey-q-remove").first.click()
        await page.get_by_test_id("admin-save").click()
        await expect(page.get_by_test_id("admin-notice")).to_have_text("保存しました。")
        assert (await settings(stack, admin, tenant.inbox_id))["questions"] == saved[1:]
    finally:
        await ctx.close()


async def test_resolve_without_survey_is_offered_where_surveys_are_on_and_sends_none(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    agent_id, login, agent = await own_operator(
        stack, admin, tenant, display_name="Aiko Agent", roles=["agent"]
    )
    other_address, other_id = await other_inbox(stack, admin, "Sales", (agent_id,))
    await survey_on(stack, admin, tenant.inbox_id)
    tag = uuid.uuid4().hex[:6]
    subjects = {k: f"{k} {tag}" for k in ("ticket", "bulk", "reply", "control", "off")}
    for key, subject in subjects.items():
        await mail_in(stack, other_address if key == "off" else tenant.address, subject)
    t = {k: await ticket_by_subject(stack, admin, s) for k, s in subjects.items()}

    # the inboxes an operator sees say which have surveys on — to an agent too, who may
    # not read the settings themselves
    code, _, _ = await call(stack, "GET", f"/api/v1/inboxes/{tenant.inbox_id}/survey", token=agent)
    assert code == 403
    for token in (admin, agent):
        code, listed, _ = await call(stack, "GET", "/api/v1/inboxes", token=token)
        assert code == 200, listed
        flags = {i["id"]: i["survey_enabled"] for i in listed["items"]}
        assert flags == {tenant.inbox_id: True, other_id: False}

    ctx = await context(browser)
    page = await ctx.new_page()
    try:
        await sign_in(page, stack.gateway_url, login, PASSWORD)
        await expect(row(page, subjects["off"])).to_be_visible()

        # an inbox without surveys: no such choice
        await page.goto(f"{stack.gateway_url}/#/tickets/{t['off']['id']}")
        await expect(page.get_by_test_id("status-select")).to_be_enabled()
        await expect(page.get_by_test_id("without-survey")).to_have_count(0)

        # the ticket's status: resolved without survey
        await page.goto(f"{stack.gateway_url}/#/tickets/{t['ticket']['id']}")
        choice = page.get_by_test_id("without-survey")
        await expect(choice).to_be_visible()
        await expect(page.locator("label", has=choice)).to_contain_text("Resolve without survey")
        await choice.check()
        await page.get_by_test_id("status-select").select_option("resolved")
        await expect(page.get_by_test_id("status-select")).to_have_value("resolved")
        await expect(choice).to_have_count(0)  # resolved: nothing more to choose

        # a control: resolved the same way without the choice, it gets its survey
        await page.goto(f"{stack.gateway_url}/#/tickets/{t['control']['id']}")
        await expect(page.get_by_test_id("without-survey")).not_to_be_checked()
        await page.get_by_test_id("status-select").select_option("resolved")
        await expect(page.get_by_test_id("status-select")).to_have_value("resolved")

        # a reply sent with "resolve"
        await page.goto(f"{stack.gateway_url}/#/tickets/{t['reply']['id']}")
        await page.get_by_test_id("btn-reply").click()
        await page.get_by_test_id("body").fill("Thank you, it is sorted.")
        sendbar = page.locator(".sendbar")
        await expect(sendbar.get_by_test_id("without-survey")).to_have_count(0)  # not resolving
        await page.get_by_test_id("status-after").select_option("resolved")
        await sendbar.get_by_test_id("without-survey").check()
        await shot(page, "reply-resolve-without-survey")
        await page.get_by_test_id("send").click()
        await expect(page.get_by_test_id("editor")).to_have_count(0)

        # the list's bulk change
        await page.goto(f"{stack.gateway_url}/#/inbox/all/open")
        await row(page, subjects["bulk"]).get_by_role("checkbox").check()
        bar = page.get_by_test_id("bulkbar")
        await bar.get_by_test_id("without-survey").check()
        await bar.get_by_test_id("bulk-status").select_option("resolved")
        await expect(row(page, subjects["bulk"])).to_have_count(0)
        # a ticket of the inbox without surveys selected alone: not offered
        await row(page, subjects["off"]).get_by_role("checkbox").check()
        await expect(page.get_by_test_id("bulkbar")).to_be_visible()
        await expect(page.get_by_test_id("bulkbar").get_by_test_id("without-survey")).to_have_count(
            0
        )
    finally:
        await ctx.close()

    for key in ("ticket", "bulk", "reply"):
        [episode] = await settled_episodes(stack, t[key]["id"], 1)
        assert (episode["state"], episode["reason"]) == ("skipped", "resolved without survey"), key
    [control] = await settled_episodes(stack, t["control"]["id"], 1)
    assert control["state"] == "sent"
    await mailed(smtp_peer, tenant, t["control"]["number"])
    for key in ("ticket", "bulk", "reply"):
        assert surveys_to(smtp_peer, tenant, t[key]["number"]) == [], key


async def answers(stack: Stack, survey_id: uuid.UUID) -> list[tuple[int, str, int]]:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        rows = await conn.fetch(
            "SELECT rating, comment, changes FROM survey_answers WHERE survey_id = $1",
            survey_id,
        )
    finally:
        await conn.close()
    return [(r["rating"], r["comment"], r["changes"]) for r in rows]


async def surveyed(
    stack: Stack, smtp_peer: SmtpPeer, tenant: Any, admin: str, subject: str, body: str
) -> tuple[list[str], asyncpg.Record]:
    """A customer's mail, resolved by the administrator: its survey's rating links and
    its episode, once the mail is at the SMTP peer."""
    await mail_in(stack, tenant.address, subject, body)
    ticket = await ticket_by_subject(stack, admin, subject)
    code, out, _ = await call(
        stack, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"status": "resolved"}, token=admin
    )
    assert code == 200, out
    [got] = await mailed(smtp_peer, tenant, ticket["number"])
    [episode] = await settled_episodes(stack, ticket["id"], 1)
    return rating_links(got), episode


async def rate_comment_and_change(
    stack: Stack, page: Page, link: str, words: dict[str, str]
) -> None:
    """The rating link of the mail (4), a comment, then 2 from the page's own scale."""
    await page.goto(link)
    status = page.get_by_role("status")
    await expect(status).to_have_text(words["recorded4"])
    await page.locator("textarea[name=comment]").fill(words["comment"])
    await page.get_by_role("button", name=words["send"]).click()
    await expect(status).to_have_text(words["saved"])
    await page.get_by_role("link", name="2", exact=True).click()
    await expect(status).to_have_text(words["recorded2"])
    await expect(page.locator("textarea[name=comment]")).to_have_value(words["comment"])


async def test_the_public_page_records_one_answer_and_refuses_a_tampered_link_in_both_languages(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    await survey_on(stack, admin, tenant.inbox_id)
    tag = uuid.uuid4().hex[:6]
    bodies = {
        "ja": "注文した商品がまだ届きません。確認していただけますか。よろしくお願いいたします。\n",
        "en": "My order has not arrived yet. Could you check it for me, please?\n",
    }
    words = {
        "ja": {
            "recorded4": "ご回答ありがとうございます。評価 4 を記録しました。",
            "recorded2": "ご回答ありがとうございます。評価 2 を記録しました。",
            "comment": "早い対応でした",
            "send": "送信",
            "saved": "コメントを受け付けました。ありがとうございました。",
            "question": QUESTIONS["question_ja"],
            "refused": "このアンケートのリンクは無効です。",
        },
        "en": {
            "recorded4": "Thank you — your rating 4 is recorded.",
            "recorded2": "Thank you — your rating 2 is recorded.",
            "comment": "Quick and kind",
            "send": "Send",
            "saved": "Thank you, your comment is saved.",
            "question": QUESTIONS["question_en"],
            "refused": "This survey link is not valid.",
        },
    }
    for lang, body in bodies.items():
        subject = f"{lang} delivery {tag}"
        links, episode = await surveyed(stack, smtp_peer, tenant, admin, subject, body)
        assert len(links) == 5
        assert episode["language"] == lang

        ctx = await context(browser, lang)  # no login: the link is the key
        page = await ctx.new_page()
        try:
            await rate_comment_and_change(stack, page, links[3], words[lang])
            await expect(page.locator("h1")).to_have_text(words[lang]["question"])
            await shot(page, f"survey-page-{lang}")
            assert await answers(stack, episode["id"]) == [(2, words[lang]["comment"], 2)]

            token = links[0].split("?", 1)[0].rsplit("/", 1)[1]
            tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
            answer = await page.goto(f"{stack.gateway_url}/survey/{tampered}?rating=5")
            assert answer is not None and answer.status == 400
            await expect(page.get_by_role("alert")).to_have_text(words[lang]["refused"])
            await shot(page, f"survey-page-refused-{lang}")
            # the tampered link changed nothing
            assert await answers(stack, episode["id"]) == [(2, words[lang]["comment"], 2)]
        finally:
            await ctx.close()


async def test_the_public_page_asks_the_additional_questions_after_the_rating_in_japanese(
    stack: Stack, browser: Browser, smtp_peer: SmtpPeer
) -> None:
    tenant, admin = await admin_of(stack)
    await survey_on(stack, admin, tenant.inbox_id, questions=MORE)
    subject = f"ja questions {uuid.uuid4().hex[:6]}"
    body = "注文した商品がまだ届きません。確認していただけますか。よろしくお願いいたします。\n"
    links, episode = await surveyed(stack, smtp_peer, tenant, admin, subject, body)
    ctx = await context(browser, "ja")
    page = await ctx.new_page()
    try:
        await page.goto(links[2])  # the mail's one-click 3
        await expect(page.get_by_role("status")).to_have_text(
            "ご回答ありがとうございます。評価 3 を記録しました。"
        )
        speed = page.get_by_role("radiogroup", name=MORE[0]["text_ja"])
        clarity = page.get_by_role("radiogroup", name=MORE[1]["text_ja"])
        await expect(speed.get_by_role("radio")).to_have_count(5)
        await speed.get_by_role("radio", name="4（5段階中）").check()
        await clarity.get_by_role("radio", name="5（5段階中）").check()
        await page.get_by_label("ご意見（任意）").fill("丁寧でした")
        await shot(page, "survey-page-questions-ja")
        await page.get_by_role("button", name="送信").click()
        await expect(page.get_by_role("status")).to_have_text(
            "ご回答を受け付けました。ありがとうございました。"
        )
        await expect(speed.get_by_role("radio", name="4（5段階中）")).to_be_checked()
        assert await answers(stack, episode["id"]) == [(3, "丁寧でした", 1)]
        assert await extra(stack, episode["id"]) == {"speed": 4, "clarity": 5}
        # a second submit changes them (one answer)
        await speed.get_by_role("radio", name="2（5段階中）").check()
        await page.get_by_label("ご意見（任意）").fill("少し遅かった")
        await page.get_by_role("button", name="送信").click()
        await expect(speed.get_by_role("radio", name="2（5段階中）")).to_be_checked()
        await expect(clarity.get_by_role("radio", name="5（5段階中）")).to_be_checked()
        assert await answers(stack, episode["id"]) == [(3, "少し遅かった", 2)]
        assert await extra(stack, episode["id"]) == {"speed": 2, "clarity": 5}
    finally:
        await ctx.close()


async def extra(stack: Stack, survey_id: uuid.UUID) -> dict[str, int]:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        raw = await conn.fetchval(
            "SELECT answers FROM survey_answers WHERE survey_id = $1", survey_id
        )
    finally:
        await conn.close()
    found: dict[str, int] = json.loads(raw)
    return found
