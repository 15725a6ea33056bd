import json
from pathlib import Path

import numpy as np
import pytest

from edgewatch import EdgewatchError
from edgewatch.data.datasets import load
from edgewatch.sources.door import STATES, DoorScene
from edgewatch.sources.pets import LABELS as PET_LABELS
from edgewatch.sources.pets import PetsScene
from edgewatch.sources.synthetic import LABELS, StreetScene
from edgewatch.sources.synthetic_dataset import asked, spread, write_dataset

SMALL = ("--scenes", "2", "--frames", "3")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def by_name(dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {Path(image).name: (d.xyxy, d.class_id) for image, d in dataset.annotations.items()}


def assert_same_boxes(got: tuple[np.ndarray, np.ndarray], kept: list, labels) -> None:
    """The boxes read back are the truth boxes `kept` (within a pixel), with their classes, in any order."""
    xyxy = np.array([item.box for item in kept], np.float32).reshape(-1, 4)
    class_id = np.array([labels.index(item.label) for item in kept], int)
    got_xyxy, got_class = got
    order, want = np.lexsort(got_xyxy.T[::-1]), np.lexsort(xyxy.T[::-1])  # formats may reorder an image's boxes
    assert np.array_equal(got_class[order], class_id[want])
    assert np.allclose(got_xyxy[order], xyxy[want], atol=1.0)


@pytest.mark.parametrize("format", ["yolo", "coco"])
def test_street_frames_read_back_with_their_truth_and_without_hidden_boxes(run_cli, tmp_path, format):
    done = run_cli("synth", "street", "--dataset", "data", *SMALL, "--seed", "8", "--to", format)
    assert done.returncode == 0, done.stderr.decode()
    assert "6 images" in done.stdout.decode() and "person" in done.stdout.decode()
    dataset, skipped = load(format, tmp_path / "data")
    assert skipped == [] and dataset.classes == list(LABELS)
    found, hidden = by_name(dataset), 0
    picks = spread(StreetScene().frame_count, 3)
    assert set(found) == {f"street_s{seed}_f{frame:05d}.jpg" for seed in (8, 9) for frame in picks}
    for seed in (8, 9):
        scene = StreetScene(seed=seed)
        for frame in picks:
            _, truth = scene.render(frame)
            kept = [item for item in truth if not item.hidden]
            assert_same_boxes(found[f"street_s{seed}_f{frame:05d}.jpg"], kept, LABELS)
            hidden += len(truth) - len(kept)
    assert hidden >= 1  # seed 8's last pick has a person behind the post


def test_a_pet_mostly_behind_the_animals_in_front_is_left_out():
    scene = PetsScene(seed=0)
    assert asked("pets", scene.truth(500)) == scene.truth(500)  # animals apart: every one is asked for
    truth = next(  # a frame where one animal stands (mostly) in front of another
        truth for frame in range(scene.frame_count) if len(truth := scene.truth(frame)) > len(asked("pets", truth))
    )
    kept = {item.track_id for item in asked("pets", truth)}
    behind = next(item for item in truth if item.track_id not in kept)
    x1, y1, x2, y2 = behind.box
    in_front = truth[truth.index(behind) + 1 :]  # truth is in drawing order
    covered = sum(
        max(0.0, min(x2, f.box[2]) - max(x1, f.box[0])) * max(0.0, min(y2, f.box[3]) - max(y1, f.box[1]))
        for f in in_front
    )
    assert covered >= 0.5 * (x2 - x1) * (y2 - y1)


def test_pets_dataset_names_the_animals_in_order_with_the_boxes_asked_for(run_cli, tmp_path):
    done = run_cli("synth", "pets", "--dataset", "pets", *SMALL, "--to", "yolo")
    assert done.returncode == 0, done.stderr.decode()
    dataset, skipped = load("yolo", tmp_path / "pets")
    assert skipped == [] and dataset.classes == list(PET_LABELS)
    found = by_name(dataset)
    for seed in (0, 1):
        scene = PetsScene(seed=seed)
        for frame in spread(scene.frame_count, 3):
            assert_same_boxes(found[f"pets_s{seed}_f{frame:05d}.jpg"], asked("pets", scene.truth(frame)), PET_LABELS)


def test_door_frames_go_to_the_folder_of_their_state(run_cli, tmp_path):
    done = run_cli("synth", "door", "--dataset", "door", "--scenes", "2", "--frames", "6", "--seed", "3")
    assert done.returncode == 0, done.stderr.decode()
    found = {path.name: path.parent.name for path in (tmp_path / "door").rglob("*.jpg")}
    picks = spread(DoorScene().frame_count, 6)
    expected = {
        f"door_s{seed}_f{frame:05d}.jpg": DoorScene(seed=seed).state(frame) for seed in (3, 4) for frame in picks
    }
    assert found == expected
    counts = {state: list(expected.values()).count(state) for state in STATES}
    assert f"closed {counts['closed']}, open {counts['open']}" in done.stdout.decode()
    assert [p.name for p in tmp_path.iterdir()] == ["door"]  # no staging folder left beside it


def test_the_same_seed_gives_the_same_files(run_cli, tmp_path):
    done = run_cli("synth", "street", "--dataset", "a", *SMALL, "--seed", "9", "--to", "coco")
    assert done.returncode == 0, done.stderr.decode()
    write_dataset("street", tmp_path / "b", seed=9, scenes=2, frames=3, format="coco")  # later, elsewhere
    assert files_of(tmp_path / "a") == files_of(tmp_path / "b")
    assert len(files_of(tmp_path / "a")) == 7  # six frames and annotations.json


def test_a_folder_that_is_not_empty_is_refused_and_left_as_it_was(run_cli, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    done = run_cli("synth", "street", "--dataset", "mine", *SMALL)
    assert done.returncode == 2
    assert len(done.stderr.decode().strip().splitlines()) == 1 and "--force" in done.stderr.decode()
    with pytest.raises(EdgewatchError, match="not empty"):
        write_dataset("door", tmp_path / "mine", scenes=2, frames=3)
    assert files_of(tmp_path / "mine") == {"notes.txt": b"keep me"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_force_replaces_the_state_folders_and_leaves_the_rest(tmp_path):
    (tmp_path / "door" / "open").mkdir(parents=True)
    (tmp_path / "door" / "open" / "stale.jpg").write_bytes(b"old")
    (tmp_path / "door" / "notes.txt").write_text("keep me")
    write_dataset("door", tmp_path / "door", scenes=2, frames=3, force=True)
    assert not (tmp_path / "door" / "open" / "stale.jpg").exists()
    assert (tmp_path / "door" / "notes.txt").read_text() == "keep me"
    assert len(list((tmp_path / "door").rglob("*.jpg"))) == 6


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgewatchError, match="unknown synthetic scene"):
        write_dataset("garden", tmp_path / "out")
    with pytest.raises(EdgewatchError, match="is a file"):
        write_dataset("street", tmp_path / "file")
    with pytest.raises(EdgewatchError, match="unknown dataset format"):
        write_dataset("street", tmp_path / "out", format="xml")
    with pytest.raises(EdgewatchError, match="no frame"):
        write_dataset("door", tmp_path / "out", seconds=0.01)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_more_frames_than_a_scene_has_takes_each_once(tmp_path):
    report = write_dataset("door", tmp_path / "door", scenes=1, frames=100, seconds=0.4)
    assert report.images == 10 and sum(report.per_class.values()) == 10
    assert len(list((tmp_path / "door").rglob("*.jpg"))) == 10


def test_the_door_classifier_scores_unseen_synthetic_frames(run_cli, tmp_path):
    write_dataset("door", tmp_path / "door", seed=100_000, scenes=3, frames=8)  # seeds the model never saw
    done = run_cli("eval", "--truth", "door", "--model", "door", "--results", "r.json")
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["images"] == 24 and result["accuracy"] >= 0.9


def test_the_street_detector_scores_unseen_synthetic_frames(run_cli, tmp_path):
    write_dataset("street", tmp_path / "street", seed=100_000, scenes=2, frames=6)  # seeds the model never saw
    done = run_cli("eval", "--truth", "street", "--model", "street", "--results", "r.json")
    assert done.returncode == 0, done.stderr.decode()
    assert "| all" in done.stdout.decode()
    overall = json.loads((tmp_path / "r.json").read_text())["overall"]
    assert overall["expected"] > 20 and overall["ap50"] >= 0.8
