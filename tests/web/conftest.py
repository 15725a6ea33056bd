"""The web tests' shared parts: Debian's chromium and its pages (tests/browsers.py starts it), a small
Pascal VOC folder with `edgewatch review` serving it, and API clients that hold a browser session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from browsers import chromium
from edgewatch.data.datasets import save
from labelled import plain_dataset
from media import review_served

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request

VOC_CLASSES = ["car", "person"]
# every image 160x120
VOC_DRAFTS = {"a.jpg": [("car", 10, 20, 60, 70), ("person", 90, 10, 120, 100)], "b.jpg": [("person", 5, 5, 40, 110)]}


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


@pytest.fixture
def voc_folder(tmp_path: Path) -> Path:
    """A Pascal VOC folder (images/, annotations/) as labelImg leaves it."""
    save(plain_dataset(tmp_path / "drawn", VOC_DRAFTS, VOC_CLASSES, (160, 120)), "voc", tmp_path / "voc")
    return tmp_path / "voc"


@pytest.fixture
def review_server(voc_folder: Path, tmp_path: Path) -> Iterator[str]:
    """`edgewatch review VOC --serve 0`, at the address it prints (no trailing slash); its log goes to
    `tmp_path/review.log`. Ctrl-C at the end: exit 0."""
    with open(tmp_path / "review.log", "wb") as log, review_served(voc_folder, log) as url:
        yield url.rstrip("/")


@pytest.fixture
def api_client() -> Callable[..., TestClient]:
    """`api_client(app, headers=None)`: a TestClient that talks to `app` as its own page does: at
    127.0.0.1 (the Host a loopback server answers to), holding the session's CSRF token."""
    from fastapi.testclient import TestClient

    def open_client(app: FastAPI, headers: dict[str, str] | None = None) -> TestClient:
        client = TestClient(app, base_url="http://127.0.0.1", headers=headers)
        answer = client.get("/api/csrf")
        if answer.status_code == 200:  # behind a token without one, there is no session to join
            client.headers["X-CSRF-Token"] = answer.json()["token"]
        return client

    return open_client
