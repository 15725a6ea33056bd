"""The review page's API on small generated datasets: drafts come in pending from the model, each
decision is kept with who made it and when, the index is backed up before every write, a save writes
what was not rejected in the chosen format (read back by the dataset readers), nothing outside the
folder is served, and a folder that is no dataset is one line and exit code 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from fastapi.testclient import TestClient

from edgewatch.data import review_index
from edgewatch.data.datasets import FORMATS, load, save, write_annotations
from edgewatch.data.review_index import ReviewIndex
from edgewatch.errors import EdgewatchError
from edgewatch.web.app import create_app
from edgewatch.web.hub import LiveHub
from edgewatch.web.review import review_app
from labelled import plain_dataset

CLASSES = ["car", "person"]
# name: [(class, x1, y1, x2, y2), ...]; every image 160x120
DRAFTS = {
    "a.jpg": [("car", 10, 20, 60, 70), ("person", 90, 10, 120, 100)],
    "b.jpg": [("person", 5, 5, 40, 110)],
    "c.jpg": [],
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def drafts(folder: Path, scores: dict[str, list[float]] | None = None) -> sv.DetectionDataset:
    """The JPEGs of DRAFTS in `folder/images/` and the dataset of their boxes (with `scores`, if given)."""
    return plain_dataset(folder / "images", DRAFTS, CLASSES, (160, 120), scores)


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    """A Pascal VOC folder as labelImg or `edgewatch data sample` leaves it."""
    source = drafts(tmp_path / "drawn")
    save(source, "voc", tmp_path / "voc")
    return tmp_path / "voc"


@pytest.fixture
def client(voc: Path, api_client) -> TestClient:
    return api_client(review_app(voc))


def backups(folder: Path) -> list[Path]:
    return sorted((folder / ".review" / "backups").glob("review-*.json"))


def boxes_of(dataset: sv.DetectionDataset) -> dict[str, list[tuple[str, list[float]]]]:
    return {
        Path(image).name: sorted(
            (dataset.classes[class_id], xyxy.tolist()) for xyxy, class_id in zip(d.xyxy, d.class_id, strict=True)
        )
        for image, d in dataset.annotations.items()
    }


def assert_boxes(found: dict, expected: dict, tolerance: float = 1.0) -> None:
    """Same images, labels and corners within `tolerance` pixels (VOC stores whole pixels, YOLO fractions)."""
    assert sorted(found) == sorted(expected)
    for name, boxes in expected.items():
        assert [label for label, _ in found[name]] == [label for label, _ in boxes], name
        for (_, got), (_, want) in zip(found[name], boxes, strict=True):
            assert np.allclose(got, want, atol=tolerance), (name, got, want)


def test_drafts_come_in_pending_from_the_model_with_a_time(client):
    listing = client.get("/api/review/voc/images").json()
    assert [row["name"] for row in listing["images"]] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [(row["state"], row["boxes"], row["pending"]) for row in listing["images"]] == [
        ("unreviewed", 2, 2), ("unreviewed", 1, 1), ("unreviewed", 0, 0)
    ]  # fmt: skip
    assert listing["format"] == listing["target_format"] == "voc"
    assert listing["classes"] == CLASSES
    assert listing["last"] is None
    image = client.get("/api/review/voc/images/a.jpg").json()
    assert (image["width"], image["height"], image["state"]) == (160, 120, "unreviewed")
    assert [(box["label"], box["xyxy"], box["status"], box["origin"]) for box in image["boxes"]] == [
        ("car", [10, 20, 60, 70], "pending", "model"), ("person", [90, 10, 120, 100], "pending", "model")
    ]  # fmt: skip
    assert all(ISO_UTC.match(box["time"]) for box in image["boxes"])
    picture = client.get("/api/review/voc/image/a.jpg")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(picture.content, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)


def test_an_edit_records_who_and_when_per_box(client, monkeypatch):
    monkeypatch.setattr(review_index, "utc_now", lambda: "2030-01-02T03:04:05.678Z")
    edit = {
        "state": "reviewed",
        "boxes": [
            {"id": 0, "label": "car", "xyxy": [10, 20, 60, 70], "status": "accepted"},  # accepted as drawn
            {"id": 1, "label": "dog", "xyxy": [90, 10, 120, 100], "status": "accepted"},  # relabelled
            {"id": None, "label": "person", "xyxy": [30, 80, 70, 119.5], "status": "accepted"},  # drawn
        ],
    }
    answer = client.put("/api/review/voc/images/a.jpg", json=edit)
    assert answer.status_code == 200, answer.text
    boxes = answer.json()["boxes"]
    assert [(box["id"], box["label"], box["status"], box["origin"]) for box in boxes] == [
        (0, "car", "accepted", "model"), (1, "dog", "accepted", "human"), (2, "person", "accepted", "human")
    ]  # fmt: skip
    assert [box["time"] for box in boxes] == ["2030-01-02T03:04:05.678Z"] * 3  # each was just decided on
    assert answer.json()["reviewed_at"] == "2030-01-02T03:04:05.678Z"
    listing = client.get("/api/review/voc/images").json()
    assert listing["classes"] == [*CLASSES, "dog"]  # a typed class joins the list, after the dataset's
    assert listing["last"] == "a.jpg"
    assert listing["images"][0] == {**listing["images"][0], "state": "reviewed", "boxes": 3, "pending": 0}

    # the same boxes sent again change nothing: no new time, no new origin
    monkeypatch.setattr(review_index, "utc_now", lambda: "2030-01-02T03:04:09.000Z")
    again = client.put(
        "/api/review/voc/images/a.jpg", json={**edit, "boxes": [{**b, "id": i} for i, b in enumerate(edit["boxes"])]}
    )
    assert [box["time"] for box in again.json()["boxes"]] == [box["time"] for box in boxes]


@pytest.mark.parametrize("format", FORMATS)
def test_save_writes_what_was_not_rejected_in_the_chosen_format(client, voc, format):
    client.put("/api/review/voc/images/a.jpg", json={"state": "reviewed", "boxes": [
        {"id": 0, "label": "car", "xyxy": [12, 22, 62, 72], "status": "accepted"},  # moved by 2 px
        {"id": 1, "label": "person", "xyxy": [90, 10, 120, 100], "status": "rejected"},
        {"label": "dog", "xyxy": [100, 60, 150, 110], "status": "accepted"},
    ]})  # fmt: skip
    client.put("/api/review/voc/images/c.jpg", json={"state": "reviewed", "boxes": [
        {"label": "car", "xyxy": [0, 0, 30, 30]},
    ]})  # fmt: skip
    answer = client.post(f"/api/review/voc/save?format={format}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"] == "3 images, 4 boxes (car 2, person 1, dog 1)"

    dataset, skipped = load(format, voc)
    assert skipped == []
    assert_boxes(boxes_of(dataset), {
        "a.jpg": [("car", [12, 22, 62, 72]), ("dog", [100, 60, 150, 110])],  # the rejected person is gone
        "b.jpg": [("person", [5, 5, 40, 110])],  # untouched drafts are kept: not rejected
        "c.jpg": [("car", [0, 0, 30, 30])],
    })  # fmt: skip
    index = json.loads((voc / ".review" / "review.json").read_text())
    assert index["saved"]["format"] == format and ISO_UTC.match(index["saved"]["time"])


def test_every_write_backs_the_index_up_first_and_keeps_the_last_ones(client, voc, monkeypatch):
    index_file = voc / ".review" / "review.json"
    assert index_file.is_file() and backups(voc) == []  # opening wrote the drafts: nothing to back up yet
    seen = []
    for round in range(4):
        previous = index_file.read_bytes()
        status = "accepted" if round % 2 else "rejected"
        edit = {"state": "reviewed", "boxes": [{"id": 0, "label": "person", "xyxy": [5, 5, 40, 110], "status": status}]}
        assert client.put("/api/review/voc/images/b.jpg", json=edit).status_code == 200
        seen.append(backups(voc))
        assert len(seen[-1]) == round + 1
        assert seen[-1][-1].read_bytes() == previous  # the backup is the index as it was
    assert client.post("/api/review/voc/save").status_code == 200
    assert len(backups(voc)) == 5  # a save notes itself in the index: one more write
    assert not list((voc / ".review").glob(".*.tmp"))  # written whole, then renamed

    monkeypatch.setattr(review_index, "KEEP_BACKUPS", 3)
    newest = backups(voc)[-1]
    client.put("/api/review/voc/images/c.jpg", json={"state": "reviewed", "boxes": []})
    kept = backups(voc)
    assert len(kept) == 3 and newest in kept and kept[-1] > newest


def test_a_restart_keeps_the_review_and_opens_at_the_last_reviewed_image(voc, api_client):
    first = api_client(review_app(voc))
    first.put("/api/review/voc/images/c.jpg", json={"state": "reviewed", "boxes": []})
    first.put("/api/review/voc/images/a.jpg", json={"state": "reviewed", "boxes": [
        {"id": 0, "label": "car", "xyxy": [10, 20, 60, 70], "status": "rejected"},
    ]})  # fmt: skip
    again = api_client(review_app(voc)).get("/api/review/voc/images").json()
    assert again["last"] == "a.jpg"
    assert [(row["name"], row["state"], row["boxes"]) for row in again["images"]] == [
        ("a.jpg", "reviewed", 0), ("b.jpg", "unreviewed", 1), ("c.jpg", "reviewed", 0)
    ]  # fmt: skip


def test_nothing_outside_the_folder_is_served(client, voc, tmp_path):
    (tmp_path / "secret.jpg").write_bytes((voc / "images" / "a.jpg").read_bytes())
    for path in [
        "/api/review/voc/image/..%2F..%2Fsecret.jpg",
        "/api/review/voc/image/%2Fetc%2Fpasswd",
        "/api/review/voc/image/../../secret.jpg",
        "/api/review/voc/image/secret.jpg",
        "/api/review/voc/images/..%2F..%2Fsecret.jpg",
        "/api/review/other/image/a.jpg",
        "/api/review/..%2Fvoc/image/a.jpg",
        "/static/app.js",  # the dashboard's script is not part of the standalone page
        "/static/..%2Freview.py",
    ]:
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert b"secret" not in answer.content and b"root:" not in answer.content
    assert client.put("/api/review/voc/images/x.jpg", json={"state": "reviewed", "boxes": []}).status_code == 404


def test_bad_edits_are_refused_with_a_reason(client):
    def put(**change):
        box = {"id": 0, "label": "car", "xyxy": [10, 20, 60, 70], "status": "accepted", **change}
        return client.put("/api/review/voc/images/a.jpg", json={"state": "reviewed", "boxes": [box]})

    assert put(label="  ").status_code == 422
    assert put(label="two\nlines").status_code == 422
    assert put(status="maybe").status_code == 422
    assert put(colour="red").status_code == 422
    small = put(xyxy=[10, 20, 10.5, 70])
    assert small.status_code == 422 and "less than a pixel" in small.json()["detail"]
    outside = put(xyxy=[170, 20, 200, 70])  # kept inside the image, nothing is left of it
    assert outside.status_code == 422
    clipped = put(xyxy=[-5, 20, 60, 130])
    assert clipped.json()["boxes"][0]["xyxy"] == [0, 20, 60, 120]
    unknown = client.post("/api/review/voc/save?format=pdf")
    assert unknown.status_code == 409 and "unknown dataset format" in unknown.json()["detail"]


def test_a_capture_folder_keeps_its_drafts_and_scores_and_grows(tmp_path, api_client):
    # as RetrainingCapture leaves it: images/ and coco.json with the model's scores
    folder = tmp_path / "capture" / "door"
    dataset = drafts(folder, scores={"a.jpg": [0.9, 0.41], "b.jpg": [0.55], "c.jpg": []})
    write_annotations(dataset, "coco", folder)
    (folder / "annotations.json").rename(folder / "coco.json")
    client = api_client(review_app(folder, target_format="coco"))
    image = client.get("/api/review/door/images/a.jpg").json()
    assert [box["score"] for box in image["boxes"]] == [0.9, 0.41]
    edit = {"state": "reviewed", "boxes": [
        {"id": 0, "label": "car", "xyxy": [10, 20, 60, 70], "status": "accepted"},
        {"id": 1, "label": "car", "xyxy": [90, 10, 120, 100], "status": "accepted"},  # relabelled: no score now
    ]}  # fmt: skip
    assert [box["score"] for box in client.put("/api/review/door/images/a.jpg", json=edit).json()["boxes"]] == [
        0.9, None
    ]  # fmt: skip
    assert client.post("/api/review/door/save").status_code == 200
    saved = json.loads((folder / "annotations.json").read_text())
    assert sorted(round(a["score"], 2) for a in saved["annotations"]) == [0.55, 0.9, 1.0]  # a person's box: 1.0
    assert len(json.loads((folder / "coco.json").read_text())["annotations"]) == 3  # the model's file is left alone

    # the camera saves another frame: it shows up as drafts, from coco.json, not the saved annotations.json
    more = drafts(tmp_path / "more", scores={"a.jpg": [0.7, 0.6], "b.jpg": [0.3], "c.jpg": []})
    cv2.imwrite(str(folder / "images" / "d.jpg"), cv2.imread(str(tmp_path / "more" / "images" / "a.jpg")))
    annotations = {**dataset.annotations, str(folder / "images" / "d.jpg"): more.annotations[more.image_paths[0]]}
    grown = sv.DetectionDataset(classes=CLASSES, images=list(annotations), annotations=annotations)
    write_annotations(grown, "coco", folder)
    (folder / "annotations.json").replace(folder / "coco.json")
    listing = client.get("/api/review/door/images").json()
    assert [row["name"] for row in listing["images"]] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert [box["score"] for box in client.get("/api/review/door/images/d.jpg").json()["boxes"]] == [0.7, 0.6]
    assert listing["images"][0]["state"] == "reviewed"  # the review of the others stays


def test_the_dashboard_serves_the_review_page_behind_its_token(voc, tmp_path, api_client):
    token = "s3cret"
    app = create_app(LiveHub(), token=token, review={"door": voc, "street": tmp_path / "capture" / "street"})
    client = api_client(app)
    assert client.get("/api/review/folders").status_code == 401
    assert client.get("/api/review/door/image/a.jpg").status_code == 401
    assert client.get("/review").status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    folders = client.get("/api/review/folders", headers=headers).json()
    assert folders["dashboard"] is True
    door, street = folders["folders"]
    assert (door["name"], door["ready"], door["images"], door["reviewed"]) == ("door", True, 3, 0)
    assert (street["name"], street["ready"]) == ("street", False)  # no frame captured yet
    assert "no such dataset folder" in street["problem"]
    assert client.get("/api/review/street/images", headers=headers).status_code == 409
    page = client.get("/review", headers=headers)
    assert page.status_code == 200 and "/static/review.js" in page.text
    assert client.get("/static/review.js", headers=headers).status_code == 200
    assert client.get("/api/review/door/image/a.jpg", headers=headers).status_code == 200


def test_the_dashboard_without_review_folders_says_so(api_client):
    client = api_client(create_app(LiveHub()))
    assert client.get("/api/review/folders").json() == {"dashboard": True, "folders": []}
    assert client.get("/review").status_code == 200


def test_a_folder_that_is_no_dataset_is_one_error(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("nothing to label")
    with pytest.raises(EdgewatchError, match="is no dataset edgewatch knows"):
        review_app(tmp_path / "notes")
    with pytest.raises(EdgewatchError, match="no such dataset folder"):
        ReviewIndex(tmp_path / "missing")
    with pytest.raises(EdgewatchError, match="unknown dataset format"):
        ReviewIndex(tmp_path / "notes", format="pdf")


def test_a_broken_index_is_one_error_that_names_the_backups(voc):
    ReviewIndex(voc)
    (voc / ".review" / "review.json").write_text('{"version": 1, "format": "voc", "images": {"a.jpg": 3}}')
    with pytest.raises(EdgewatchError, match=r"cannot read the review index .*images\.a\.jpg.*backups"):
        ReviewIndex(voc)


def test_the_command_refuses_a_folder_that_is_no_dataset(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_cli("review", "empty", "--serve", "0", timeout=60)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgewatch: error: ") and "empty" in lines[0]
    assert done.stdout == b""
