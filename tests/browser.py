"""Playwright driving Debian's chromium (found on PATH, headless) — for the UI tests and
the UI benchmark. Screenshots go to $SB_TEST_ARTIFACTS (default .data/test-artifacts)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from services.devstack.stack import ROOT

ARTIFACTS = Path(os.environ.get("SB_TEST_ARTIFACTS", ROOT / ".data" / "test-artifacts"))
UI_BUILD = ROOT / "gateway" / "ui" / "dist" / "index.html"
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("the UI tests need Debian's chromium on PATH (apt-get install chromium)")
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not UI_BUILD.is_file():
        raise RuntimeError("the web UI is not built: run `make ui` (make test does)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def context(
    browser: Browser, lang: str = "en", viewport: dict[str, int] | None = None
) -> BrowserContext:
    ctx = await browser.new_context(
        viewport=viewport or DESKTOP,  # type: ignore[arg-type]
        # the app's language follows the browser's until the operator chooses one
        locale="ja-JP" if lang == "ja" else "en-GB",
    )
    # an uncaught error in the app is printed (pytest shows it with the failure)
    ctx.on("weberror", lambda e: print(f"page error: {e.error}"))
    return ctx


async def sign_in(page: Page, base_url: str, login: str, password: str) -> None:
    await page.goto(f"{base_url}/")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def pick_time(page: Page, test_id: str, when: datetime) -> None:
    """Choose `when` (aware, in the operator's time zone) in the app's date-time picker
    (DateTimeInput.tsx): its day, hour and minute selects."""
    await page.get_by_test_id(f"{test_id}-day").first.select_option(when.strftime("%Y-%m-%d"))
    await page.get_by_test_id(f"{test_id}-hour").first.select_option(when.strftime("%H"))
    await page.get_by_test_id(f"{test_id}-minute").first.select_option(when.strftime("%M"))
