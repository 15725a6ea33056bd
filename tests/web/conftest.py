"""The browser tests' chromium and pages (tests/browsers.py starts Debian's chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from browsers import chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (no cookies) whose console errors, uncaught errors and failed requests are kept
    in `page.problems`."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":  # the page names an empty icon, so not even a favicon 404 is expected
            problems.append(f"console: {message.text} ({message.location.get('url')})")

    def failed(request: Request) -> None:
        # Leaving a page aborts its endless streams (video, live numbers); anything else is a fault.
        endless = request.url.endswith("/stream.mjpeg") or request.url.endswith("/api/live")
        if not (endless and request.failure == "net::ERR_ABORTED"):
            problems.append(f"request failed: {request.url} {request.failure}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", failed)
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    context.close()
