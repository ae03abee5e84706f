"""Scratch: the routing screens with faked routing answers, for looking at them."""
from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import Route, expect

from services.devstack.stack import Stack
from tests.browser import chromium, context, shot, sign_in
from tests.e2e.test_accounts import admin_of
from tests.e2e.test_ui import PASSWORD, mail_in, operator

pytestmark = pytest.mark.e2e

RULE = {
    "id": "r1", "name": "返品ルール", "inbox_id": None, "position": 0, "enabled": True,
    "triggers": ["new_ticket"],
    "conditions": {"match": "all", "conditions": [
        {"field": "subject", "operator": "contains", "value": "返品"},
        {"match": "any", "conditions": [
            {"field": "sender_domain", "operator": "in", "value": ["example.jp", "example.com"]},
            {"field": "header", "name": "X-Priority", "operator": "equals", "value": "1"},
        ]},
    ]},
    "actions": [{"type": "add_label", "value": "返品"}, {"type": "assign_by_strategy"}],
    "once_per_ticket": False, "business_hours": None, "version": 1,
}
RULES = [RULE, {**RULE, "id": "r2", "name": "VIP", "enabled": False}, {**RULE, "id": "r3", "name": "Spam"}]
CAL = {"id": "c1", "name": "Tokyo", "time_zone": "Asia/Tokyo", "public_holidays": "JP",
       "slots": [{"weekday": "mon", "start": "09:00", "end": "18:00", "crosses_midnight": False},
                 {"weekday": "fri", "start": "22:00", "end": "02:00", "crosses_midnight": True}],
       "holidays": [{"date": "2027-08-13", "name": "お盆休み", "yearly": False}], "version": 1}


async def fake(route: Route) -> None:
    url = route.request.url
    m = route.request.method
    if "/rules/dry-run" in url:
        body = {"ticket": {"id": "t", "number": 3, "subject": "返品したい"}, "message_id": "m",
                "results": [{"rule_id": "", "rule_name": "x", "matched": True, "skipped": "",
                             "conditions": [
                                 {"path": "conditions", "description": "all of 2", "held": True},
                                 {"path": "conditions.conditions[0]", "description": "s", "held": True},
                                 {"path": "conditions.conditions[1]", "description": "any", "held": False},
                                 {"path": "conditions.conditions[1].conditions[0]", "description": "d", "held": False},
                             ], "actions": []}]}
        return await route.fulfill(json=body)
    if re.search(r"/rules/r1$", url) and m == "PUT":
        return await route.fulfill(status=400, json={"error": {"code": "invalid_argument", "message": "invalid regex", "field": "conditions.conditions[1].conditions[0].value"}})
    if url.endswith("/rules"):
        return await route.fulfill(json={"rules": RULES})
    if "/public-holidays" in url:
        return await route.fulfill(json={"country": "JP", "year": 2027, "holidays": [{"date": "2027-01-01", "name": "元日"}, {"date": "2027-01-11", "name": "成人の日"}, {"date": "2027-02-11", "name": "建国記念の日"}]})
    if url.endswith("/calendars"):
        return await route.fulfill(json={"calendars": [CAL]})
    if url.endswith("/sla-policies"):
        return await route.fulfill(json={"policies": []})
    if url.endswith("/assignment"):
        return await route.fulfill(json={"inbox_id": "i", "strategy": "least_loaded", "capacity": 5, "channel_capacity": {"mail": 3}, "tiers": [{"operator_ids": [], "widen_after_minutes": 10}], "reassign_after_minutes": None, "max_new_per_hour": None})
    if url.endswith("/me/presence"):
        return await route.fulfill(json={"operator_id": "x", "status": "online", "effective": "online", "expires_at": None, "updated_at": None})
    if url.endswith("/sla"):
        return await route.fulfill(json={"ticket_id": "t", "policy": {"id": "p", "name": "Fast"}, "calendar_id": None, "state": "warning", "paused": False, "next_due_at": "2030-01-01T00:00:00Z",
            "targets": [{"kind": "first_response", "state": "ok", "started_at": None, "due_at": "2026-12-06T23:00:00Z", "warning_at": "2026-12-06T22:50:00Z", "met_at": None, "remaining_minutes": None},
                        {"kind": "resolution", "state": "paused", "started_at": None, "due_at": None, "warning_at": None, "met_at": None, "remaining_minutes": 42}]})
    await route.continue_()


async def test_look(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    _, ada = await operator(stack, admin, tenant, "Ada Admin", ["admin"])
    await mail_in(stack, tenant.address, "返品したい")
    async with chromium() as browser:
        for lang in ("en", "ja"):
            ctx = await context(browser, lang=lang)
            page = await ctx.new_page()
            await page.route(re.compile(r".*/api/v1/(rules|calendars|public-holidays|sla-policies|inboxes/[^/]+/assignment|me/presence|tickets/[^/]+/sla).*"), fake)
            await sign_in(page, stack.gateway_url, ada, PASSWORD)
            await page.get_by_test_id("nav-admin").click()
            await page.get_by_test_id("admin-rules").click()
            await expect(page.get_by_test_id("rule-row")).to_have_count(3)
            await shot(page, f"scratch-rules-{lang}")
            rows = page.get_by_test_id("rule-row")
            await rows.nth(0).get_by_test_id("rule-edit").click()
            await page.get_by_test_id("dry-number").fill("3")
            await page.get_by_test_id("dry-go").click()
            await page.get_by_test_id("rule-save").click()
            await page.screenshot(path=f".data/test-artifacts/scratch-rule-form-{lang}.png")
            await page.get_by_test_id("admin-calendars").click()
            await page.get_by_test_id("admin-edit").first.click()
            await expect(page.get_by_test_id("public-holiday").first).to_be_visible()
            await page.screenshot(path=f".data/test-artifacts/scratch-calendar-{lang}.png")
            await page.get_by_test_id("admin-sla").click()
            await page.get_by_test_id("admin-new").click()
            await page.screenshot(path=f".data/test-artifacts/scratch-sla-{lang}.png")
            await page.get_by_test_id("admin-assignment").click()
            await page.get_by_test_id("admin-edit").first.click()
            await page.screenshot(path=f".data/test-artifacts/scratch-assign-{lang}.png")
            await page.get_by_test_id("nav-inboxes").click()
            await page.get_by_test_id("ticket-row").first.click()
            await expect(page.get_by_test_id("sla")).to_be_visible()
            await page.screenshot(path=f".data/test-artifacts/scratch-ticket-{lang}.png")
            await ctx.close()
