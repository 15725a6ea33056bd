"""What `edgewatch run` writes, and what it never touches: outputs that already exist survive a bad
input, no output may be an input, a full or read-only disk is one line and keeps what fitted."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import av
import pytest

from disks import make_read_only, tmpfs
from media import edgewatch_command

OLD = b"1\n2\n3\n"


def one_line_error(done: subprocess.CompletedProcess) -> str:
    message = done.stderr.decode().strip()
    assert done.returncode == 2, message
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    return message


def digest(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(b"".join(digest(item).encode() for item in sorted(path.iterdir()))).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def whole_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.mark.parametrize(
    "bad",
    [
        ["--source", "missing.mp4"],
        ["--source", "{video}", "--model", "nomodel.onnx"],
        ["--source", "{video}", "--model", "{not_a_model}"],
        ["--source", "{video}", "--detector", "motion", "--serve", "0.0.0.0:{port}"],
        ["--source", "{video}", "--detector", "yolo9"],
    ],
    ids=["missing-source", "missing-model", "not-a-model", "refused-serve", "unknown-detector"],
)
def test_a_bad_input_leaves_the_outputs_that_exist_as_they_were(bad, square_video: Path, run_cli, tmp_path: Path):
    (tmp_path / "f.jsonl").write_bytes(OLD)
    (tmp_path / "e.jsonl").write_bytes(OLD)
    (tmp_path / "v.mp4").write_bytes(OLD)
    (tmp_path / "junk.onnx").write_bytes(os.urandom(2000))
    names = {"video": str(square_video), "not_a_model": "junk.onnx", "port": "8097"}
    args = [part.format(**names) for part in bad]
    done = run_cli("run", *args, "--json", "f.jsonl", "--events", "e.jsonl", "--out", "v.mp4", "--quiet")
    one_line_error(done)
    for name in ("f.jsonl", "e.jsonl", "v.mp4"):
        assert (tmp_path / name).read_bytes() == OLD, name
    assert not list(tmp_path.glob("*.part"))


def test_a_taken_page_port_is_said_before_the_storage_folder_is_made(square_video: Path, run_cli, tmp_path: Path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        message = one_line_error(run_cli("run", "--source", str(square_video), "--serve", port, "--json", "f.jsonl"))
    assert "the port is taken" in message
    assert not (tmp_path / "edgewatch-data").exists() and not list(tmp_path.glob("f.jsonl*"))


def _images(folder: Path) -> Path:
    import cv2
    import numpy as np

    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index}.jpg"), np.full((90, 120, 3), 60 * index, np.uint8))
    return folder


@pytest.mark.parametrize(
    ("source", "outputs"),
    [
        ("v.mp4", ["--out", "v.mp4"]),
        ("v.mp4", ["--json", "v.mp4"]),
        ("v.mp4", ["--events", "./sub/../v.mp4"]),
        ("v.mp4", ["--out", "link.mp4"]),  # a symlink to the input
        ("v.mp4", ["--json", "hard.mp4"]),  # a hard link to the input
        ("images", ["--out", "images/"]),
        ("images", ["--out", "images"]),
        ("images", ["--out", "images/extra.jpg"]),
        ("images/0.jpg", ["--out", "images/0.jpg"]),
        ("v.mp4", ["--json", "same.jsonl", "--events", "same.jsonl"]),
    ],
    ids=["out", "json", "events-dotted", "symlink", "hardlink", "folder", "folder-no-slash", "into-folder",
         "image", "json-is-events"],
)  # fmt: skip
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    source: str, outputs: list[str], square_video: Path, run_cli, tmp_path: Path
):
    video = tmp_path / "v.mp4"
    video.write_bytes(square_video.read_bytes())
    (tmp_path / "link.mp4").symlink_to(video)
    os.link(video, tmp_path / "hard.mp4")
    (tmp_path / "sub").mkdir()
    _images(tmp_path / "images")
    before = {name: digest(tmp_path / name) for name in ("v.mp4", "images")}
    message = one_line_error(run_cli("run", "--source", source, "--detector", "motion", *outputs, "--quiet"))
    assert "would overwrite the input" in message or "both name" in message
    assert {name: digest(tmp_path / name) for name in before} == before


def test_a_config_file_named_as_an_output_is_refused(square_video: Path, run_cli, tmp_path: Path):
    config = tmp_path / "site.yaml"
    config.write_text(f"cameras:\n  a:\n    source: {square_video}\n    detector: motion\n")
    before = config.read_bytes()
    message = one_line_error(run_cli("run", "site.yaml", "--json", "site.yaml"))
    assert "would overwrite the input" in message
    assert config.read_bytes() == before


@pytest.mark.parametrize("kilobytes", [12, 24, 40])
def test_json_lines_on_a_full_disk_are_whole_and_kept(kilobytes: int, make_video, run_cli, tmp_path: Path):
    video = make_video("long.mp4", frames=400)
    with tmpfs(tmp_path / "disk", kilobytes) as disk:
        done = run_cli("run", "--source", str(video), "--detector", "motion", "--json", str(disk / "f.jsonl"),
                       "--events", str(disk / "e.jsonl"), "--quiet")  # fmt: skip
        message = one_line_error(done)
        assert "No space left on device" in message and "free some disk space" in message
        lines = whole_lines(disk / "f.jsonl")  # every line parses: none was torn
        assert 0 < len(lines) < 400
        assert [line["frame"] for line in lines] == list(range(len(lines)))
        whole_lines(disk / "e.jsonl")
        assert not list(disk.glob("*.part"))


@pytest.mark.parametrize("kilobytes", [120, 250, 500])
def test_a_video_on_a_full_disk_plays_up_to_what_fitted(kilobytes: int, bikes: Path, run_cli, tmp_path: Path):
    with tmpfs(tmp_path / "disk", kilobytes) as disk:
        done = run_cli("run", "--source", str(bikes), "--detector", "motion", "--out", str(disk / "v.mp4"),
                       "--max-frames", "200", "--quiet")  # fmt: skip
        message = one_line_error(done)
        assert "No space left on device" in message
        assert 0 < decoded_frames(disk / "v.mp4") < 200  # it opens and decodes to its end without an error
        assert not list(disk.glob("*.part"))


@pytest.mark.parametrize(
    "output", [["--out", "v.mp4"], ["--out", "frames/"], ["--out", "a.jpg"], ["--json", "f.jsonl"],
               ["--out", "sub/v.mp4"]],
    ids=["video", "folder", "image", "json", "new-folder"],
)  # fmt: skip
def test_a_read_only_place_is_one_line_naming_it(output: list[str], square_video: Path, run_cli, tmp_path: Path):
    with tmpfs(tmp_path / "disk", 200) as disk:
        (disk / "v.mp4").write_bytes(OLD)
        make_read_only(disk)
        target = [output[0], f"{disk}/{output[1]}"]  # a trailing / names a folder
        message = one_line_error(run_cli("run", "--source", str(square_video), "--detector", "motion", *target))
        assert "Read-only file system" in message or "cannot be written" in message
        assert "choose a writable place" in message
        assert (disk / "v.mp4").read_bytes() == OLD


@pytest.mark.parametrize(
    ("flag", "value"), [("--mqtt", "127.0.0.1:99999"), ("--serve", "99999"), ("--serve", "127.0.0.1:70000")]
)
def test_a_port_out_of_range_is_refused_as_the_config_refuses_it(flag: str, value: str, square_video, run_cli):
    message = one_line_error(run_cli("run", "--source", str(square_video), flag, value))
    assert "65535" in message and "taken" not in message


def _wait_for_lines(growing: Path, process: subprocess.Popen, count: int = 5) -> None:
    deadline = time.monotonic() + 60
    while not growing.exists() or len(growing.read_bytes().splitlines()) < count:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the run wrote no lines"
        time.sleep(0.05)


def test_two_signals_close_together_stop_the_run_once(tmp_path: Path):
    """As `timeout` sends them, to the child and to its group: the run stops, once, with 143; it used to
    deadlock now and then, the second signal's handler waiting on a lock the first one held."""
    for attempt in range(3):
        process = subprocess.Popen(
            edgewatch_command("run", "--source", "synthetic:street?seconds=120", "--realtime", "--mqtt", "embedded",
                              "--json", f"run{attempt}.jsonl", "--quiet"),
            cwd=tmp_path, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            _wait_for_lines(tmp_path / f"run{attempt}.jsonl.part", process)
            process.send_signal(signal.SIGTERM)
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 143, process.stderr.read().decode()
        finally:
            process.kill()
        whole_lines(tmp_path / f"run{attempt}.jsonl")


def test_a_third_signal_ends_a_slow_shutdown_at_once(tmp_path: Path):
    # an MQTT broker that never answers makes the shutdown wait for it
    process = subprocess.Popen(
        edgewatch_command("run", "--source", "synthetic:street?seconds=120", "--realtime", "--mqtt", "127.0.0.1:9",
                          "--json", "run.jsonl", "--quiet"),
        cwd=tmp_path, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for_lines(tmp_path / "run.jsonl.part", process)
        for _ in range(3):
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
        assert process.wait(10) == 130
    finally:
        process.kill()
    assert "Traceback" not in process.stderr.read().decode()


@pytest.mark.parametrize("after", [0.1, 0.6, 1.3, 2.5])
def test_ctrl_c_while_starting_ends_quietly(after: float, tmp_path: Path):
    (tmp_path / "f.jsonl").write_bytes(OLD)
    process = subprocess.Popen(
        edgewatch_command("run", "--source", "synthetic:street?seconds=60", "--mqtt", "embedded", "--serve", "0",
                          "--json", "f.jsonl"),
        cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(15)
    finally:
        process.kill()
    stderr = process.stderr.read().decode()
    assert code == 130, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
