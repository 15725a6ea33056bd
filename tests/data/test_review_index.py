"""The review index as the review page uses it (its HTTP API on a folder of labelled images): a save in
one format leaves every other format's files as they were, the backups stay bounded in size as well as
count, and an edit the index cannot hold is refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from edgewatch.data import review_index
from edgewatch.data.datasets import FORMATS, load, save
from edgewatch.data.review_index import ImageEdit, ReviewIndex
from edgewatch.web.review import review_app
from labelled import plain_dataset

CLASSES = ["car", "person"]
DRAFTS = {
    "a.jpg": [("car", 10, 20, 60, 70), ("person", 90, 10, 120, 100)],
    "b.jpg": [("person", 5, 5, 40, 110)],
    "c.jpg": [],
}


def labelled(tmp_path: Path, format: str) -> Path:
    """A folder labelled in `format`, as a labelling tool or `edgewatch data convert` leaves it."""
    save(plain_dataset(tmp_path / "drawn", DRAFTS, CLASSES, (160, 120)), format, tmp_path / format)
    return tmp_path / format


def page_client(folder: Path) -> TestClient:
    """The review app of `folder`, talked to as its own page does: at 127.0.0.1, with the session's
    CSRF token where the server hands one out."""
    client = TestClient(review_app(folder), base_url="http://127.0.0.1")
    answer = client.get("/api/csrf")
    if answer.status_code == 200:
        client.headers["X-CSRF-Token"] = answer.json()["token"]
    return client


def files(folder: Path) -> dict[str, bytes]:
    """Every file of the folder but the review's own, by path relative to it."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).parts[0] != ".review"
    }


def written_by(format: str) -> set[str]:
    """The files a save in `format` writes for DRAFTS (the layout of docs/datasets.md)."""
    stems = [Path(name).stem for name in DRAFTS]
    return {
        "voc": {f"annotations/{stem}.xml" for stem in stems},
        "sagemaker": {f"annotations/{stem}.json" for stem in stems},
        "yolo": {f"labels/{stem}.txt" for stem in stems} | {"data.yaml", "classes.txt"},
        "csv": {"annotations.csv"},
        "coco": {"annotations.json"},
    }[format]


def boxes(format: str, folder: Path) -> dict[str, list[tuple[str, list[int]]]]:
    dataset, skipped = load(format, folder, images=folder / "images")
    assert skipped == [], (format, skipped)
    return {
        Path(image).name: sorted(
            (dataset.classes[class_id], [round(value) for value in xyxy.tolist()])
            for xyxy, class_id in zip(detections.xyxy, detections.class_id, strict=True)
        )
        for image, detections in dataset.annotations.items()
    }


@pytest.mark.parametrize("own", FORMATS)
@pytest.mark.parametrize("other", FORMATS)
def test_a_save_in_any_format_leaves_the_folders_own_labels_as_they_were(tmp_path, own, other):
    folder = labelled(tmp_path, own)
    before, own_boxes = files(folder), boxes(own, folder)
    client = page_client(folder)
    rejected = {"state": "reviewed", "boxes": [
        {"id": 0, "label": "car", "xyxy": [10, 20, 60, 70], "status": "accepted"},
        {"id": 1, "label": "person", "xyxy": [90, 10, 120, 100], "status": "rejected"},
    ]}  # fmt: skip
    assert client.put(f"/api/review/{own}/images/a.jpg", json=rejected).status_code == 200
    answer = client.post(f"/api/review/{own}/save?format={other}")
    assert answer.status_code == 200, answer.text

    after = files(folder)
    assert set(before) <= set(after)  # a save removes nothing
    unchanged = {path: data for path, data in before.items() if path not in written_by(other)}
    assert {path: after[path] for path in unchanged} == unchanged  # byte for byte
    saved = boxes(other, folder)
    assert saved["a.jpg"] == [("car", [10, 20, 60, 70])]  # the save holds the review
    if other != own:
        assert boxes(own, folder) == own_boxes  # and the folder still opens as it was labelled
        assert ReviewIndex(folder, format=own).image("a.jpg").boxes[1].status == "rejected"
    assert not [path for path in folder.iterdir() if path.name.endswith(".writing")]


def test_the_backups_stay_within_their_size_as_well_as_their_count(tmp_path, monkeypatch):
    folder = labelled(tmp_path, "voc")
    client = page_client(folder)
    index_file = folder / ".review" / "review.json"
    many = [{"label": "car", "xyxy": [x, 20, x + 5, 70]} for x in range(0, 150, 2)]
    assert client.put("/api/review/voc/images/a.jpg", json={"state": "reviewed", "boxes": many}).status_code == 200
    size = index_file.stat().st_size
    # room for three such copies, well under the count: the size decides
    monkeypatch.setattr(review_index, "KEEP_BACKUPS", 50)
    monkeypatch.setattr(review_index, "BACKUP_BYTES", 3 * size + size // 2, raising=False)
    for round in range(8):
        previous = index_file.read_bytes()
        status = "accepted" if round % 2 else "rejected"
        edit = {"state": "reviewed", "boxes": [{"id": 0, "label": "person", "xyxy": [5, 5, 40, 110], "status": status}]}
        assert client.put("/api/review/voc/images/b.jpg", json=edit).status_code == 200
        kept = sorted((folder / ".review" / "backups").glob("review-*.json"))
        assert sum(path.stat().st_size for path in kept) <= 3 * size + size // 2
        assert kept[-1].read_bytes() == previous  # the newest is always kept
    assert len(kept) == 3


def test_the_newest_backup_is_kept_even_when_it_alone_is_over_the_size(tmp_path, monkeypatch):
    folder = labelled(tmp_path, "voc")
    client = page_client(folder)
    monkeypatch.setattr(review_index, "BACKUP_BYTES", 10, raising=False)
    for status in ("accepted", "rejected", "accepted"):
        edit = {"state": "reviewed", "boxes": [{"id": 0, "label": "person", "xyxy": [5, 5, 40, 110], "status": status}]}
        assert client.put("/api/review/voc/images/b.jpg", json=edit).status_code == 200
    assert len(list((folder / ".review" / "backups").glob("review-*.json"))) == 1


def body(**box: object) -> str:
    """A PUT body as the page (or anyone) sends it, with one box of the given fields, as raw JSON."""
    fields = {"id": 0, "label": '"car"', "xyxy": "[10, 20, 60, 70]", "status": '"accepted"', **box}
    return '{"state": "reviewed", "boxes": [{' + ", ".join(f'"{key}": {value}' for key, value in fields.items()) + "}]}"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("xyxy", "[1e309, 20, 60, 70]", "finite"),  # JSON's 1e309 is an infinity
        ("xyxy", "[-1e309, 20, 60, 70]", "finite"),
        ("xyxy", "[NaN, 20, 60, 70]", "finite"),
        ("xyxy", "[10, 20, 1e300, 70]", "less than or equal"),
        ("xyxy", "[-1e12, 20, 60, 70]", "greater than or equal"),
        ("xyxy", "[10, 20, 60]", r"xyxy\.3\n  Field required"),
        ("label", json.dumps("c" * 101), "at most 100"),
        ("id", "1e309", "finite"),
    ],
)
def test_an_edit_with_numbers_no_image_has_is_refused_with_a_reason(field, value, reason):
    # the body as the HTTP layer hands it over: refused before it reaches the index
    with pytest.raises(ValidationError, match=reason):
        ImageEdit.model_validate_json(body(**{field: value}))


def test_one_edit_cannot_hold_more_boxes_than_an_image_has_room_for():
    box = {"label": "car", "xyxy": [10, 20, 60, 70]}
    ImageEdit.model_validate({"state": "reviewed", "boxes": [box] * review_index.MAX_BOXES})
    with pytest.raises(ValidationError, match=f"at most {review_index.MAX_BOXES}"):
        ImageEdit.model_validate({"state": "reviewed", "boxes": [box] * (review_index.MAX_BOXES + 1)})
