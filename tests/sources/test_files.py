import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgewatch import EdgewatchError, open_source
from edgewatch.sources import ImageSource, VideoFileSource
from media import cut_short, draw_square_frame, faststart_copy


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
        (lambda tmp: _write(_mkdir(tmp / "broken") / "a.png", b"not a png").parent, "no readable image in folder"),
    ],
    ids=["missing", "corrupt-video", "empty-folder", "broken-image", "unreadable-folder"],
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


def test_video_cut_short_warns_once_and_keeps_the_frames_it_has(make_video, run_cli, tmp_path: Path):
    whole = faststart_copy(make_video("whole.mp4", frames=150), tmp_path / "faststart.mp4")
    cut_short(whole, tmp_path / "cut.mp4")
    done = run_cli("run", "--source", "cut.mp4", "--detector", "motion", "--json", "out.jsonl")
    assert done.returncode == 0, done.stderr.decode()
    warnings = [line for line in done.stderr.decode().splitlines() if "WARNING" in line]
    assert len(warnings) == 1, warnings
    frames = [json.loads(line)["frame"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert 0 < len(frames) < 150
    assert frames == list(range(len(frames)))
    assert f"cut.mp4 ended at frame {len(frames)} of 150 (the file is cut short or damaged)" in warnings[0]


@pytest.mark.parametrize("how", ["whole", "edit-list"])
def test_a_whole_video_gives_no_warning(how: str, make_video, run_cli, tmp_path: Path):
    video = make_video("whole.mp4", frames=150)
    if how == "edit-list":
        # Copying from 1.3 s in keeps the frames from the keyframe before, and an edit list that hides
        # them: the header counts 150 frames, fewer are shown, and the file is whole.
        subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", "1.3", "-i", str(video), "-c", "copy", "edited.mp4"],
            cwd=tmp_path,
            check=True,
        )
        video = tmp_path / "edited.mp4"
    done = run_cli("run", "--source", video.name, "--detector", "motion", "--json", "out.jsonl")
    assert done.returncode == 0, done.stderr.decode()
    assert "WARNING" not in done.stderr.decode()
    assert (tmp_path / "out.jsonl").read_text().count("\n") >= 100


def test_jpeg_cut_short_in_a_folder_is_named_in_a_warning_and_kept(tmp_path: Path, run_cli):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    photo = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    whole = cv2.imencode(".jpg", photo)[1].tobytes()
    thumbnail = cv2.imencode(".jpg", cv2.resize(photo, (80, 60)))[1].tobytes()
    # a phone's motion photo: a whole JPEG with a video appended after its end marker
    (folder / "a_motion.jpg").write_bytes(whole + b"\x00\x00\x00\x18ftypmp42" + rng.bytes(5000))
    # an EXIF thumbnail (a whole JPEG, end marker included) ahead of a main picture cut in half
    exif = b"Exif\x00\x00" + thumbnail
    with_thumbnail = whole[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + whole[2:]
    (folder / "b_cut.jpg").write_bytes(with_thumbnail[: len(with_thumbnail) - len(whole) // 2])
    cv2.imwrite(str(folder / "c.png"), draw_square_frame(0, 320, 240))
    done = run_cli("run", "--source", "photos", "--detector", "motion", "--json", "out.jsonl")
    assert done.returncode == 0, done.stderr.decode()
    warnings = [line for line in done.stderr.decode().splitlines() if "WARNING" in line]
    assert len(warnings) == 1, warnings
    assert "b_cut.jpg is cut short or damaged" in warnings[0]
    files = [json.loads(line)["file"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert files == ["a_motion.jpg", "b_cut.jpg", "c.png"]


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
