import json
from pathlib import Path

import av
import numpy as np
import pytest

from edgewatch import EdgewatchError, Frame, FrameResult
from edgewatch.models import make_detections
from edgewatch.sinks import ImageWriter, JsonLinesWriter, VideoWriter, open_media_writer
from media import video_frame_count


def result(index: int, width: int = 101, height: int = 75, name: str | None = None) -> FrameResult:
    image = np.full((height, width, 3), index * 10 % 255, np.uint8)
    boxes = make_detections(np.array([[5.5, 6.25, 40, 50]]), np.array([0.876]), np.array([0]), ["person"])
    return FrameResult(Frame(image, "cam", index, index / 10, name=name), boxes, 1.0)


def test_video_writer_pads_odd_sizes_and_keeps_every_frame(tmp_path: Path):
    writer = VideoWriter(tmp_path / "odd.mp4", fps=10)
    for index in range(12):
        writer.write(result(index, width=101 if index < 6 else 60, height=75))
    writer.close()
    with av.open(str(tmp_path / "odd.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 102, 76)
        assert stream.average_rate == 10
    assert video_frame_count(tmp_path / "odd.mp4") == 12


def test_annotated_frames_have_the_box_drawn_and_the_original_is_untouched():
    item = result(0)
    before = item.frame.image.copy()
    drawn = item.annotated
    assert np.array_equal(item.frame.image, before)
    assert (drawn != before).any(axis=2)[6:50, 5].mean() > 0.8  # the box's left edge
    assert item.annotated is drawn  # computed once for every sink


def test_image_writer_names(tmp_path: Path):
    single = open_media_writer(tmp_path / "one.png", None, single_frame=True)
    single.write(result(3))
    numbered = open_media_writer(tmp_path / "many.jpg", None, single_frame=False)
    numbered.write(result(3))
    folder = open_media_writer(f"{tmp_path}/folder/", None, single_frame=False)
    assert isinstance(folder, ImageWriter)
    folder.write(result(4, name="door.jpg"))
    folder.write(result(5))
    assert (tmp_path / "one.png").exists()
    assert (tmp_path / "many_000003.jpg").exists()
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == ["cam_000005.jpg", "door.jpg"]


def test_json_lines_have_the_contract_shape(tmp_path: Path):
    writer = JsonLinesWriter(tmp_path / "out.jsonl")
    writer.write(result(7, name="a.jpg"))
    writer.close()
    line = json.loads((tmp_path / "out.jsonl").read_text())
    assert line["camera"] == "cam" and line["frame"] == 7 and line["time"] == 0.7 and line["file"] == "a.jpg"
    assert line["detections"] == [
        {"label": "person", "class_id": 0, "score": 0.876, "box": [5.5, 6.25, 40.0, 50.0], "track_id": None}
    ]


def test_writers_report_an_unwritable_place(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EdgewatchError, match="cannot"):
        JsonLinesWriter(blocker / "x.jsonl")
    with pytest.raises(EdgewatchError, match="cannot"):
        VideoWriter(blocker / "x.mp4", 10).write(result(0))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_is_a_clear_error():
    writer = JsonLinesWriter("/dev/full")
    with pytest.raises(EdgewatchError, match="No space left"):
        writer.write(result(0))
