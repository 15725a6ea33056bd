"""Take the live page's screenshots for the docs, from a real run seen by Debian's chromium.

    .venv/bin/python tools/screenshot_page.py

Runs `edgewatch run site.yaml --serve PORT` on a config it writes in a temporary folder (a synthetic
street with a counting line and a zone, and a pets room recording its incidents), waits until the
live numbers have counted something and an incident has its snapshot, and writes
docs/images/page-live.png and docs/images/page-events.png (1366×768).
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
# A common laptop screen, where the two camera tiles (640 px of video each) sit side by side.
VIEWPORT = {"width": 1366, "height": 768}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# The pets scene has no trained detector: its default `motion` detector finds the animals, and some
# motion is in view all along, so the incident is "two moving things at once".
SITE = """
cameras:
  street:
    source: synthetic:street?seed=1&seconds=60
    realtime: true
    stats_interval: 1
    lines:
      middle: {points: [[0.5, 0.0], [0.5, 1.0]]}
    zones:
      pavement: {polygon: [[0.0, 0.8], [1.0, 0.8], [1.0, 1.0], [0.0, 1.0]], labels: [person]}
  pets:
    source: synthetic:pets?seed=2&seconds=60
    realtime: true
    stats_interval: 1
    rules:
      - {name: busy, count_above: 1, labels: [motion], end_after: 1}
    record: {pre_seconds: 1, post_seconds: 1, events: [incident]}
"""

# Something has crossed the line, and a car and a person are in view now (their boxes are drawn).
LIVE_READY = """() => {
  const value = (name) => document.querySelector(`#camera-street tr[data-name="${name}"] td:last-child`)?.textContent;
  const line = value("line middle") || "in 0 / out 0";
  const crossed = !/^in 0 \\/ out 0$/.test(line);
  const videos = [...document.querySelectorAll(".camera img")];
  return crossed && Number(value("car now")) > 0 && Number(value("person now")) > 0
    && videos.length === 2 && videos.every((img) => img.naturalWidth > 0);
}"""

# Incidents near the top of the list have their snapshots (the newest one is often still going on).
EVENTS_READY = """() => [...document.querySelectorAll("li.event.incident")].slice(0, 3).filter((row) => {
  const img = row.querySelector("img");
  return img && img.complete && img.naturalWidth > 0 && row.querySelector("button");
}).length >= 2"""

THUMBNAILS_SHOWN = (
    """() => [...document.querySelectorAll("li.event img")].every((img) => img.complete && img.naturalWidth > 0)"""
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, run: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            cameras = httpx.get(f"{url}/api/cameras", timeout=1).json()
            if sum(camera["frames"] > 0 for camera in cameras) == 2:  # both have delivered a frame
                return
        except httpx.HTTPError:
            pass
        if run.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"edgewatch did not come up:\n{log.read_text()}")
        time.sleep(0.2)


def take(page: Page, url: str, out: Path, timeout_s: float) -> tuple[Path, Path]:
    page.goto(f"{url}/#live")
    page.wait_for_function(LIVE_READY, timeout=timeout_s * 1000, polling=100)
    live = out / "page-live.png"
    page.screenshot(path=live)
    deadline = time.monotonic() + timeout_s
    page.goto(f"{url}/#events")
    page.select_option("#filters select[name=type]", "incident")
    while not page.evaluate(EVENTS_READY):  # the snapshot is written after the incident's end + 1 s
        if time.monotonic() > deadline:
            sys.exit("no incident with a snapshot arrived")
        page.click("#filters button[type=submit]")
        time.sleep(1)
    page.locator("li.event.incident button").first.click()  # the clip plays in the player
    page.wait_for_function("document.getElementById('player').currentTime > 1", timeout=10_000)
    # the player and the list below it, where the thumbnails are (the charts are scrolled away)
    page.evaluate("const player = document.getElementById('player'); player.pause(); player.scrollIntoView()")
    page.wait_for_function(THUMBNAILS_SHOWN, timeout=5_000)
    events = out / "page-events.png"
    page.screenshot(path=events)
    return live, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DOCS_IMAGES, help="folder for the two PNG files")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser to drive")
    parser.add_argument("--timeout", type=float, default=45, help="seconds to wait for each view to be ready")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgewatch-screenshots-") as folder:
        work = Path(folder)
        (work / "site.yaml").write_text(SITE)
        port = free_port()
        log = work / "edgewatch.log"
        with log.open("wb") as stderr:
            run = subprocess.Popen(
                [sys.executable, "-m", "edgewatch", "run", "site.yaml", "--serve", str(port), "--quiet"],
                cwd=work, stderr=stderr,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, run, log)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                for path in take(page, url, args.out, args.timeout):
                    print(f"wrote {path}")
                page.goto("about:blank")  # a video stream left open holds the server's shutdown up
                browser.close()
        finally:
            run.send_signal(signal.SIGINT)
            run.wait(30)


if __name__ == "__main__":
    main()
