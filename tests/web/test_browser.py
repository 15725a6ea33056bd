"""The page in a real browser (Debian's chromium through Playwright) against `edgewatch run --serve`:
it loads clean, its video moves, its numbers change live, an incident arrives with a thumbnail and a
clip that plays, the token keeps strangers out, and media stays inside its folder."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from brokers import free_port
from browsers import CHROMIUM
from media import edgewatch_command, wait_until_serving

if not CHROMIUM.is_file():
    pytest.skip(f"the browser tests drive Debian's chromium, and {CHROMIUM} is missing", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the playwright package")

TOKEN = "s3cret-token-for-the-tests"

STREET = """
cameras:
  street:
    source: synthetic:street?seed={seed}&seconds={seconds}
    realtime: true
    stats_interval: 1
    lines:
      middle: {{points: [[0.5, 0.0], [0.5, 1.0]]}}
"""

# The pets scene has no trained detector: its `motion` boxes are the animals. Some motion is in view
# all along, so the incident is "two moving things at once", which on seed 2 starts at 1.2 s and
# ends at 2.5 s: its snapshot and clip are written at about 3.5 s, while the scene still plays.
PETS = """
cameras:
  pets:
    source: synthetic:pets?seed=2&seconds=8
    realtime: true
    stats_interval: 1
    rules:
      - {name: busy, count_above: 1, labels: [motion], end_after: 1}
    record: {pre_seconds: 1, post_seconds: 1, events: [incident]}
"""

# Draws the <img> into a canvas twice, a second apart: what the user would see at those moments.
GRAB_TWICE = """async (img) => {
  const grab = () => {
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0);
    return context.getImageData(0, 0, canvas.width, canvas.height).data;
  };
  const first = grab();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const second = grab();
  let changed = 0, lit = 0;
  for (let i = 0; i < first.length; i += 4) {
    if (first[i] !== second[i] || first[i + 1] !== second[i + 1] || first[i + 2] !== second[i + 2]) changed++;
    if (first[i] + first[i + 1] + first[i + 2] > 30) lit++;
  }
  return {width: img.naturalWidth, height: img.naturalHeight, pixels: first.length / 4, changed, lit};
}"""

LIVE_ROWS = "rows => Object.fromEntries(rows.map((row) => [row.dataset.name, row.cells[1].textContent]))"


@contextmanager
def serving(
    folder: Path, config: str, page: sync_api.Page, host: str = "127.0.0.1", token: str | None = None
) -> Iterator[str]:
    """`edgewatch run site.yaml --serve HOST:PORT` from `folder`, answering; SIGINT at the end, once
    `page` has left (a video stream still open when the server stops holds it up for 5 s)."""
    (folder / "site.yaml").write_text(config)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "EDGEWATCH_TOKEN"}
    if token is not None:
        env["EDGEWATCH_TOKEN"] = token
    log = folder / "edgewatch.log"
    with log.open("wb") as stderr:
        run = subprocess.Popen(
            edgewatch_command("run", "site.yaml", "--serve", f"{host}:{port}", "--quiet"),
            cwd=folder, env=env, stderr=stderr,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        wait_until_serving(url, run, log.read_text, headers)  # up once the first camera has delivered a frame
        yield url
    finally:
        page.goto("about:blank")
        time.sleep(0.3)  # the next frame finds the stream gone and ends it
        run.send_signal(signal.SIGINT)
        run.wait(20)


def test_the_page_loads_clean_and_its_video_shows_new_frames(tmp_path, page):
    # seed 16: a car drives through from 0.4 s to 5 s, so a second later the picture has moved
    with serving(tmp_path, STREET.format(seed=16, seconds=8), page) as url:
        page.goto(url)
        video = page.locator("#camera-street img")
        page.wait_for_function("(img) => img.naturalWidth > 0", arg=video.element_handle(), timeout=10_000)
        seen = video.evaluate(GRAB_TWICE)
        box = video.bounding_box()
        problems = list(page.problems)  # what the page met while served: stopping the server aborts its polls
    assert (seen["width"], seen["height"]) == (640, 360)  # the scene's own size, not a placeholder
    assert seen["lit"] > seen["pixels"] / 2  # a picture, not a black box
    assert seen["changed"] > seen["pixels"] / 100  # a second later the car has moved on
    assert box is not None and box["width"] > 300 and box["height"] > 150  # and it is on screen
    assert problems == []


def test_the_live_numbers_change_while_the_scene_plays_without_a_reload(tmp_path, page):
    with serving(tmp_path, STREET.format(seed=2, seconds=12), page) as url:
        page.goto(url)
        rows = page.locator("#camera-street tr[data-name]")
        rows.first.wait_for(timeout=10_000)
        page.evaluate("window.notReloaded = true")
        first = rows.evaluate_all(LIVE_ROWS)
        # counts only grow: what is seen so far, and the line's crossings
        page.wait_for_function(
            f"""(first) => {{
              const now = ({LIVE_ROWS})([...document.querySelectorAll("#camera-street tr[data-name]")]);
              return Object.keys(now).some((name) =>
                (name.endsWith(" seen") || name.startsWith("line ")) && now[name] !== first[name]);
            }}""",
            arg=first,
            timeout=12_000,
        )
        later = rows.evaluate_all(LIVE_ROWS)
        still_the_same_page = page.evaluate("window.notReloaded === true")
        health = page.locator("#camera-street .health").text_content()
        problems = list(page.problems)  # what the page met while served: stopping the server aborts its polls
    assert still_the_same_page
    assert "line middle" in later and later["line middle"].startswith("in ")
    changed = {name for name in later if later[name] != first.get(name)}
    assert any(name.endswith(" seen") or name.startswith("line ") for name in changed), (first, later)
    assert health.startswith("online")
    assert problems == []


def test_an_incident_arrives_with_its_thumbnail_and_its_clip_plays(tmp_path, page):
    with serving(tmp_path, PETS, page) as url:
        page.goto(f"{url}/#events")
        page.select_option("#filters select[name=type]", "incident")
        thumbnail = page.locator("li.event img").first
        deadline = time.monotonic() + 30  # generous: a loaded CI machine plays the scene slower
        while not (thumbnail.count() and thumbnail.evaluate("(img) => img.complete && img.naturalWidth > 0")):
            assert time.monotonic() < deadline, page.locator("#event-list").inner_text()
            # as a user would, to see what is new; waiting for the answer, as a new click aborts the last fetch
            with page.expect_response(lambda response: "/api/events" in response.url, timeout=15_000):
                page.click("#filters button[type=submit]")
            time.sleep(0.5)
        row = page.locator("li.event", has=page.locator("img")).first
        text = row.inner_text()
        size = thumbnail.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
        player = page.locator("#player")
        row.get_by_role("button", name="play clip").click()
        page.wait_for_function("document.getElementById('player').currentTime > 0", timeout=10_000)
        played = player.evaluate("(video) => ({error: video.error && video.error.message, duration: video.duration,"
                                 " width: video.videoWidth, visible: !video.hidden})")  # fmt: skip
        problems = list(page.problems)  # what the page met while served: stopping the server aborts its polls
    assert "incident" in text and "busy" in text and "pets" in text
    assert size == [640, 360]
    assert played["error"] is None and played["visible"] and played["width"] == 640
    assert 2.0 <= played["duration"] <= 5.0  # 1 s before + about 1.3 s of incident + 1 s after
    assert problems == []


def test_off_loopback_the_page_needs_the_token_then_works_through_its_cookie(tmp_path, page, browser):
    with serving(tmp_path, STREET.format(seed=2, seconds=8), page, host="0.0.0.0", token=TOKEN) as url:
        refused = page.goto(url)
        refused_text = page.locator("body").inner_text()
        assert refused is not None
        welcomed = page.goto(f"{url}/?token={TOKEN}")
        assert welcomed is not None
        video = page.locator("#camera-street img")
        page.wait_for_function("(img) => img.naturalWidth > 0", arg=video.element_handle(), timeout=10_000)
        api = page.evaluate("""async () => {
          const answer = await fetch("/api/cameras");
          return {status: answer.status, cameras: (await answer.json()).map((camera) => camera.name)};
        }""")
        script_sees_token = TOKEN in page.evaluate("document.cookie")
        stranger = browser.new_context()
        try:
            stranger_api = stranger.request.get(f"{url}/api/cameras").status
            wrong_token = stranger.request.get(f"{url}/?token=not-{TOKEN}").status
        finally:
            stranger.close()
    assert refused.status == 401 and "token" in refused_text
    assert welcomed.status == 200
    assert api == {"status": 200, "cameras": ["street"]}  # the page's own calls pass with the cookie
    assert not script_sees_token  # the cookie is httponly
    assert stranger_api == 401 and wrong_token == 401


def test_media_paths_that_leave_the_media_folder_are_refused_from_the_browser(tmp_path, page):
    media = tmp_path / "edgewatch-data" / "media"
    media.mkdir(parents=True)
    (media / "note.txt").write_text("inside")
    (media / "link.yaml").symlink_to(tmp_path / "site.yaml")
    with serving(tmp_path, STREET.format(seed=2, seconds=6), page) as url:
        page.goto(url)
        answers = page.evaluate(
            """async (paths) => {
              const answers = {};
              for (const path of paths) {
                const answer = await fetch(`/media/${path}`);
                answers[path] = [answer.status, await answer.text()];
              }
              return answers;
            }""",
            [
                "note.txt",
                "../site.yaml",
                "..%2Fevents.sqlite",
                "..%2F..%2Fsite.yaml",
                "street/..%2F..%2F..%2Fsite.yaml",
                "%2e%2e/%2e%2e/site.yaml",
                "%2Fetc%2Fpasswd",
                "link.yaml",
            ],
        )
    assert answers.pop("note.txt") == [200, "inside"]  # media inside is served
    assert {path: status for path, (status, _) in answers.items()} == dict.fromkeys(answers, 404)
    assert not any("cameras:" in body or "root:" in body for _, body in answers.values())
