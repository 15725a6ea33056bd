from pathlib import Path

import cv2
import numpy as np
import pytest

from edgewatch import EdgewatchError, open_source
from edgewatch.sources import ImageSource, VideoFileSource


def test_video_file_reports_its_properties_and_every_frame(square_video: Path):
    with open_source(square_video) as source:
        assert isinstance(source, VideoFileSource)
        info = source.info
        assert (info.width, info.height, info.fps, info.live) == (320, 240, 25.0, False)
        assert info.frame_count == 30
        frames = []
        while (picture := source.read()) is not None:
            frames.append(picture.image)
    assert len(frames) == 30
    # the white square sits where the generator put it in the first frame
    assert frames[0][120, 30].mean() > 200


def test_image_folder_reads_images_in_name_order_and_ignores_other_files(image_folder: Path):
    with open_source(image_folder) as source:
        assert isinstance(source, ImageSource)
        assert source.info.frame_count == 3
        assert source.info.fps is None
        names = []
        while (picture := source.read()) is not None:
            names.append(picture.name)
    assert names == ["a.jpg", "b.jpeg", "c.png"]


def test_a_single_image_is_a_one_frame_source(image_folder: Path):
    with open_source(image_folder / "b.jpeg") as source:
        assert source.info.frame_count == 1
        assert (source.info.width, source.info.height) == (192, 120)
        assert source.read() is not None
        assert source.read() is None


def test_unreadable_image_in_a_folder_is_skipped(image_folder: Path):
    (image_folder / "b2.jpg").write_bytes(b"garbage")
    with open_source(image_folder) as source:
        names = []
        while (picture := source.read()) is not None:
            names.append(picture.name)
    assert names == ["a.jpg", "b.jpeg", "c.png"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "missing.mp4", "no such file or folder"),
        (lambda tmp: _write(tmp / "corrupt.mp4", np.random.default_rng(1).bytes(50_000)), "damaged or not a video"),
        (lambda tmp: _mkdir(tmp / "empty"), "no images in folder"),
        (lambda tmp: _write(tmp / "broken.jpg", b"\xff\xd8 not really"), "cannot read image"),
    ],
    ids=["missing", "corrupt-video", "empty-folder", "broken-image"],
)
def test_bad_files_raise_one_clear_error(tmp_path: Path, make, expected: str):
    with pytest.raises(EdgewatchError, match=expected) as caught:
        open_source(make(tmp_path))
    assert caught.value.hint


def test_truncated_video_yields_the_frames_it_has(square_video: Path, tmp_path: Path):
    data = square_video.read_bytes()
    cut = _write(tmp_path / "cut.mp4", data[: len(data) // 2])
    try:
        source = open_source(cut)
    except EdgewatchError:
        return  # half a file without its index is also acceptable as 'cannot decode'
    with source:
        count = 0
        while source.read() is not None:
            count += 1
    assert count < 30


def test_gstreamer_pipeline_without_gstreamer_says_so():
    if "GStreamer:                   YES" in cv2.getBuildInformation():
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(EdgewatchError, match="GStreamer"):
        open_source("videotestsrc ! videoconvert ! appsink")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path
