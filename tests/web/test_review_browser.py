"""The review page in a real browser (Debian's chromium through Playwright) against
`edgewatch review DIR --serve 0`: labelImg's keys step through the images, accept and reject boxes,
a drag moves or resizes one, `w` and a drag draw a box that Ctrl+S saves where the drag was, each
change is backed up, the page reopens at the image reviewed last, and nothing goes wrong in the
console."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from browsers import CHROMIUM
from edgewatch.data.datasets import load, save
from labelled import plain_dataset
from media import review_served

if not CHROMIUM.is_file():
    pytest.skip(f"the browser tests drive Debian's chromium, and {CHROMIUM} is missing", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the playwright package")

CLASSES = ["car", "person"]
# every image 320x240; c.jpg has nothing on it yet
DRAFTS = {"a.jpg": [("car", 20, 30, 120, 150), ("person", 180, 40, 300, 220)], "b.jpg": [("car", 50, 50, 150, 120)],
          "c.jpg": []}  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A Pascal VOC folder (images/, annotations/) of DRAFTS."""
    save(plain_dataset(tmp_path / "drawn", DRAFTS, CLASSES, (320, 240)), "voc", tmp_path / "voc")
    return tmp_path / "voc"


@pytest.fixture
def url(folder: Path) -> Iterator[str]:
    """`edgewatch review FOLDER --serve 0`, at the address it prints; Ctrl-C (SIGINT) at the end: exit 0."""
    with review_served(folder) as address:
        yield address


def backups(folder: Path) -> int:
    return len(list((folder / ".review" / "backups").glob("review-*.json")))


def index(folder: Path) -> dict:
    return json.loads((folder / ".review" / "review.json").read_text())


def settled(page: sync_api.Page) -> None:
    """Wait until every change has reached the server's index."""
    page.wait_for_selector("#sync[data-state=idle]", state="attached")


def box_row(page: sync_api.Page, index: int) -> sync_api.Locator:
    return page.locator(f"#boxes li[data-index='{index}']")


def on_canvas(page: sync_api.Page, x: float, y: float) -> tuple[float, float]:
    """Where image pixel (x, y) is on the screen."""
    bounds = page.locator("#canvas").bounding_box()
    width = float(page.locator("#canvas").get_attribute("data-width"))
    scale = bounds["width"] / width
    return bounds["x"] + x * scale, bounds["y"] + y * scale


def test_keys_step_through_the_images_and_accept_and_reject_boxes(page, url, folder):
    page.goto(url)
    page.wait_for_selector("#canvas[data-image='a.jpg']")  # nothing reviewed yet: the first image
    assert backups(folder) == 0
    page.keyboard.press("d")
    page.wait_for_selector("#canvas[data-image='b.jpg']")
    page.keyboard.press("d")
    page.wait_for_selector("#canvas[data-image='c.jpg']")
    page.keyboard.press("d")
    sync_api.expect(page.locator("#message")).to_have_text("this is the last image")
    page.keyboard.press("a")
    page.wait_for_selector("#canvas[data-image='b.jpg']")
    page.keyboard.press("a")
    page.wait_for_selector("#canvas[data-image='a.jpg']")

    # the first pending box comes selected: y accepts it and moves on to the next, x rejects that one
    sync_api.expect(box_row(page, 0)).to_have_class("selected")
    page.keyboard.press("y")
    sync_api.expect(box_row(page, 0)).to_have_attribute("data-status", "accepted")
    settled(page)
    assert backups(folder) == 1
    sync_api.expect(box_row(page, 1)).to_have_class("selected")
    page.keyboard.press("x")
    sync_api.expect(box_row(page, 1)).to_have_attribute("data-status", "rejected")
    settled(page)
    assert backups(folder) == 2
    sync_api.expect(page.locator("#image-state")).to_have_class("reviewed")  # nothing pending is left

    # a click selects a box; Shift+Y accepts every box of the image
    page.keyboard.press("Escape")
    page.mouse.click(*on_canvas(page, 240, 130))
    sync_api.expect(box_row(page, 1)).to_have_class("selected")
    page.keyboard.press("Shift+Y")
    sync_api.expect(box_row(page, 1)).to_have_attribute("data-status", "accepted")
    settled(page)
    assert backups(folder) == 3
    boxes = index(folder)["images"]["a.jpg"]["boxes"]
    assert [(box["status"], box["origin"]) for box in boxes] == [("accepted", "model"), ("accepted", "model")]

    # dragging a box moves it, dragging its corner resizes it: a person's box now
    page.mouse.move(*on_canvas(page, 70, 90))
    page.mouse.down()
    page.mouse.move(*on_canvas(page, 80, 95), steps=3)
    page.mouse.up()
    settled(page)
    page.mouse.move(*on_canvas(page, 130, 155))  # the bottom-right corner, moved to (130, 155)
    page.mouse.down()
    page.mouse.move(*on_canvas(page, 150, 170), steps=3)
    page.mouse.up()
    settled(page)
    moved = index(folder)["images"]["a.jpg"]["boxes"][0]
    assert np.allclose(moved["xyxy"], [30, 35, 150, 170], atol=1) and moved["origin"] == "human"
    assert backups(folder) == 5

    # on to b.jpg with the keys; l comes back to the image reviewed last
    page.keyboard.press("d")
    page.wait_for_selector("#canvas[data-image='b.jpg']")
    page.keyboard.press("l")
    page.wait_for_selector("#canvas[data-image='a.jpg']")
    assert page.problems == []  # type: ignore[attr-defined]


def test_a_box_drawn_with_w_and_a_drag_is_saved_with_ctrl_s_where_it_was_drawn(page, url, folder):
    page.goto(url)
    page.wait_for_selector("#canvas[data-image='a.jpg']")
    page.keyboard.press("d")
    page.keyboard.press("d")
    page.wait_for_selector("#canvas[data-image='c.jpg']")
    page.select_option("#format", "yolo")

    page.keyboard.press("w")
    page.mouse.move(*on_canvas(page, 40, 30))
    page.mouse.down()
    page.mouse.move(*on_canvas(page, 120, 90), steps=4)
    page.mouse.move(*on_canvas(page, 200, 150), steps=4)
    page.mouse.up()
    sync_api.expect(box_row(page, 0)).to_have_class("selected")
    page.keyboard.press("2")  # the second class
    sync_api.expect(box_row(page, 0).locator(".what")).to_have_text("person")
    page.keyboard.press("Control+s")
    sync_api.expect(page.locator("#message")).to_have_text(re.compile("^saved as yolo: 3 images, 4 boxes"))
    settled(page)

    dataset, skipped = load("yolo", folder)
    assert skipped == []
    drawn = dataset.annotations[str(folder / "images" / "c.jpg")]
    assert [dataset.classes[class_id] for class_id in drawn.class_id] == ["person"]
    assert np.allclose(drawn.xyxy[0], [40, 30, 200, 150], atol=2)  # within a couple of pixels of the drag
    entry = index(folder)["images"]["c.jpg"]
    assert entry["state"] == "reviewed"
    assert [(box["label"], box["origin"], box["status"]) for box in entry["boxes"]] == [("person", "human", "accepted")]
    assert backups(folder) == 3  # drawn, relabelled, saved: each write backed up the index first

    # a fresh visit opens at the image reviewed last
    page.goto(url)
    page.wait_for_selector("#canvas[data-image='c.jpg']")
    assert page.problems == []  # type: ignore[attr-defined]
