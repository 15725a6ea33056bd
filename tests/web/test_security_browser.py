"""Cross-site request forgery in a real browser (Debian's chromium through Playwright): a hostile page
served from another port on 127.0.0.1 (same site, other origin) posts a form, sends `fetch(...,
{mode: "no-cors"})` and a PUT at the review API, and reads for the CSRF token; the dataset's files stay
byte for byte what they were, while the real page, in the same browser, still saves. Once against
`edgewatch review DIR`, once against the dashboard behind a token (whose SameSite=Strict cookie a
same-site page's requests carry)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokers import free_port
from browsers import CHROMIUM
from edgewatch.web.app import create_app
from edgewatch.web.hub import LiveHub
from edgewatch.web.server import WebServer

if not CHROMIUM.is_file():
    pytest.skip(f"the browser tests drive Debian's chromium, and {CHROMIUM} is missing", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the playwright package")

TOKEN = "Vq3kP9xZ-2mLrT7w_Yb4Nc8e"
# Every way a page of another origin can send a write without the target's consent; each step notes
# what came of it, and the page's title says when all are done.
HOSTILE = """<!doctype html>
<html><head><meta charset="utf-8"><title>cute cats</title></head><body>
<form id="form" method="POST" action="{target}/api/review/{folder}/save?format=sagemaker" target="sink"
      enctype="text/plain"><input name='{{"state": "reviewed", "boxes": [], "x": "' value='"}}'></form>
<iframe name="sink"></iframe>
<pre id="log"></pre>
<script>
const target = "{target}", folder = "{folder}";
const note = (what) => {{ document.getElementById("log").textContent += what + "\\n"; }};
const edit = JSON.stringify({{state: "reviewed", boxes: []}});
async function attempt(what, request) {{
  try {{ const answer = await request(); note(`${{what}}: sent (${{answer.type}})`); }}
  catch (error) {{ note(`${{what}}: blocked (${{error}})`); }}
}}
(async () => {{
  await attempt("no-cors POST save", () => fetch(`${{target}}/api/review/${{folder}}/save?format=coco`,
    {{method: "POST", mode: "no-cors", credentials: "include"}}));
  await attempt("no-cors POST text body", () => fetch(`${{target}}/api/review/${{folder}}/save?format=yolo`,
    {{method: "POST", mode: "no-cors", credentials: "include", headers: {{"Content-Type": "text/plain"}}, body: edit}}));
  await attempt("no-cors PUT", () => fetch(`${{target}}/api/review/${{folder}}/images/a.jpg`,
    {{method: "PUT", mode: "no-cors", credentials: "include", body: edit}}));
  await attempt("cors PUT", () => fetch(`${{target}}/api/review/${{folder}}/images/a.jpg`,
    {{method: "PUT", credentials: "include", headers: {{"Content-Type": "application/json"}}, body: edit}}));
  await attempt("read the CSRF token", async () => {{
    const answer = await fetch(`${{target}}/api/csrf`, {{credentials: "include"}});
    note(`token read: ${{(await answer.json()).token}}`);
    return answer;
  }});
  await new Promise((resolve) => {{
    const sink = document.querySelector("iframe");
    sink.onload = resolve;
    setTimeout(resolve, 5000);  // a refused answer loads too; this is only a guard
    document.getElementById("form").submit();
  }});
  note("form posted");
  document.title = "done";
}})();
</script></body></html>
"""


def files_in(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain web server on another port of 127.0.0.1: (its folder, its URL); write pages to the folder."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(folder), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield folder, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def visit_hostile(context: sync_api.BrowserContext, hostile: tuple[Path, str], target: str, folder: str) -> str:
    """Open the hostile page against `target`; what it says of its attempts, once they are done."""
    pages, url = hostile
    (pages / "cats.html").write_text(HOSTILE.format(target=target, folder=folder))
    page = context.new_page()
    for _ in range(50):  # http.server is up within a moment of starting
        try:
            page.goto(f"{url}/cats.html")
            break
        except sync_api.Error:
            page.wait_for_timeout(100)
    page.wait_for_function("document.title === 'done'", timeout=20000)
    log = page.locator("#log").text_content()
    page.close()
    return log


def save_from_the_real_page(context: sync_api.BrowserContext, url: str) -> None:
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#canvas[data-image='a.jpg']")
    page.keyboard.press("Control+s")
    sync_api.expect(page.locator("#message")).to_have_text(re.compile("^saved as voc: 2 images"))
    page.close()


def test_a_page_of_another_port_cannot_write_to_the_review_command(browser, hostile, review_server, voc_folder):
    context = browser.new_context()
    context.new_page().goto(f"{review_server}/review")  # the user has the page open: a session exists
    before = files_in(voc_folder)
    log = visit_hostile(context, hostile, review_server, "voc")
    assert "token read:" not in log, log
    assert files_in(voc_folder) == before, log  # not a byte of the dataset or its review changed
    save_from_the_real_page(context, f"{review_server}/review")
    assert json.loads((voc_folder / ".review" / "review.json").read_text())["saved"]["format"] == "voc"
    context.close()


def test_a_same_site_page_cannot_write_to_the_dashboard_behind_its_token(browser, hostile, voc_folder):
    server = WebServer(create_app(LiveHub(), token=TOKEN, review={"door": voc_folder}), "127.0.0.1", 0).start()
    try:
        target = server.url.rstrip("/")
        context = browser.new_context()
        login = context.new_page()
        login.goto(f"{target}/review?token={TOKEN}")  # the SameSite=Strict cookie: sent by same-site pages too
        login.wait_for_selector("#canvas[data-image='a.jpg']")
        before = files_in(voc_folder)
        log = visit_hostile(context, hostile, target, "door")
        assert "token read:" not in log, log
        assert files_in(voc_folder) == before, log
        save_from_the_real_page(context, f"{target}/review")
        context.close()
    finally:
        server.close()
