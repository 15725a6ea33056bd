"""Take the review page's screenshot for the docs, from a real sample seen by Debian's chromium.

    .venv/bin/python tools/screenshot_review.py

Samples 8 diverse frames of a synthetic street with the street detector's boxes as drafts
(`edgewatch data sample`), serves them with `edgewatch review`, opens the frame with the most boxes, accepts its first box with `y`, and
writes docs/images/review.png (1366×768).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
VIEWPORT = {"width": 1366, "height": 768}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EDGEWATCH = [sys.executable, "-m", "edgewatch"]


def _busiest(url: str, sampled: Path) -> str:
    """The sampled image with the most draft boxes: the picture shows what reviewing is about."""
    manifest = json.loads((sampled / "manifest.json").read_text())
    return max(manifest["frames"], key=lambda frame: frame["prediction"]["boxes"])["file"].split("/")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser to drive")
    parser.add_argument("--out", type=Path, default=DOCS_IMAGES / "review.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        sampled = Path(temporary) / "sampled"
        sample = ["data", "sample", "synthetic:street?seed=4&seconds=40", str(sampled), "--budget", "8"]
        subprocess.run([*EDGEWATCH, *sample, "--by", "diverse", "--detector", "street"], check=True)
        server = subprocess.Popen(
            [*EDGEWATCH, "review", str(sampled), "--serve", "0", "--quiet"], stdout=subprocess.PIPE, text=True
        )
        try:
            line = server.stdout.readline() if server.stdout else ""
            url = re.search(r"http://\S+", line)
            if url is None:
                raise SystemExit(f"edgewatch review printed no address: {line!r}")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(url.group(0).rstrip("/") + "/review#image=" + _busiest(url.group(0), sampled))
                page.wait_for_selector("canvas")
                page.wait_for_timeout(1000)  # the first image and its boxes
                page.keyboard.press("y")
                page.wait_for_timeout(500)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(10)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
