"""The public contract, through the `edgewatch` command itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import httpx
import pytest

from media import edgewatch_command, run_in_terminal, square_position, video_frame_count

CONTRACT_KEYS = ["camera", "frame", "time", "wall_time", "width", "height", "detections"]
DETECTION_KEYS = ["label", "class_id", "score", "box", "track_id"]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr.decode()
    message = done.stderr.decode().strip()
    assert len(message.splitlines()) == 1, message
    assert "Traceback" not in message
    assert message.startswith("edgewatch: error: ")
    return message


def test_version(run_cli):
    done = run_cli("--version")
    assert done.returncode == 0
    assert done.stdout.decode().startswith("edgewatch 0.")


def test_video_in_annotated_video_and_json_lines_out(square_video: Path, run_cli, tmp_path: Path):
    done = run_cli(
        "run", "--source", str(square_video), "--detector", "motion", "--out", "out.mp4", "--json", "out.jsonl"
    )
    assert done.returncode == 0, done.stderr.decode()
    assert video_frame_count(tmp_path / "out.mp4") == 30
    lines = read_lines(tmp_path / "out.jsonl")
    assert len(lines) == 30
    assert [line["frame"] for line in lines] == list(range(30))
    assert list(lines[0]) == CONTRACT_KEYS
    assert lines[10]["time"] == pytest.approx(0.4)
    assert lines[10]["wall_time"].endswith("Z")
    assert (lines[0]["width"], lines[0]["height"]) == (320, 240)
    # the moving square is found where it really is, in original-frame pixels
    moving = [line for line in lines if line["detections"]]
    assert len(moving) >= 25
    line = moving[-1]
    x, y = square_position(line["frame"], 320, 240)
    box = line["detections"][0]["box"]
    assert list(line["detections"][0]) == DETECTION_KEYS
    assert box[0] <= x + 20 <= box[2] and box[1] <= y + 20 <= box[3]


def test_stride_fps_and_max_frames_choose_the_frames(square_video: Path, run_cli, tmp_path: Path):
    for args, expected in [
        (["--stride", "4"], list(range(0, 30, 4))),
        (["--fps", "5"], list(range(0, 30, 5))),
        (["--max-frames", "7"], list(range(7))),
    ]:
        done = run_cli(
            "run", "--source", str(square_video), "--detector", "motion", "--json", "f.jsonl", "--out", "f.mp4", *args
        )
        assert done.returncode == 0, done.stderr.decode()
        assert [line["frame"] for line in read_lines(tmp_path / "f.jsonl")] == expected
        assert video_frame_count(tmp_path / "f.mp4") == len(expected)


def test_image_in_annotated_image_out(image_folder: Path, run_cli, tmp_path: Path):
    done = run_cli("run", "--source", str(image_folder / "a.jpg"), "--detector", "motion", "--out", "a-boxes.png")
    assert done.returncode == 0, done.stderr.decode()
    assert cv2.imread(str(tmp_path / "a-boxes.png")).shape == (120, 176, 3)


def test_folder_of_images_keeps_file_names(image_folder: Path, run_cli, tmp_path: Path):
    done = run_cli(
        "run", "--source", str(image_folder), "--detector", "hog", "--json", "i.jsonl", "--out", "annotated/"
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = read_lines(tmp_path / "i.jsonl")
    assert [line["file"] for line in lines] == ["a.jpg", "b.jpeg", "c.png"]
    assert [line["width"] for line in lines] == [176, 192, 160]
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == ["a.jpg", "b.jpeg", "c.png"]


def test_pipe_feeds_raw_frames_to_ffmpeg(square_video: Path, tmp_path: Path):
    edgewatch = subprocess.Popen(
        edgewatch_command("run", "--source", str(square_video), "--detector", "motion", "--pipe", "--quiet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    encoded = tmp_path / "piped.mp4"
    ffmpeg = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pixel_format", "bgr24", "-video_size", "320x240",
         "-framerate", "25", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(encoded)],
        stdin=edgewatch.stdout,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    edgewatch.stdout.close()
    assert edgewatch.wait(60) == 0, edgewatch.stderr.read().decode()
    assert ffmpeg.returncode == 0, ffmpeg.stderr.decode()
    assert video_frame_count(encoded) == 30


def test_pipe_reader_that_leaves_early_ends_the_run_quietly(square_video: Path):
    done = subprocess.run(
        " ".join(edgewatch_command("run", "--source", str(square_video), "--detector", "motion", "--pipe", "--quiet"))
        + " | head -c 230400 > /dev/null; exit ${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr


def test_config_runs_several_cameras_side_by_side(square_video: Path, image_folder: Path, run_cli, tmp_path: Path):
    (tmp_path / "two.yaml").write_text(
        f"""
cameras:
  street:
    source: {square_video}
    detector: moving
    stride: 2
  stills:
    source: {image_folder}
    detector: hog
    min_score: 0.9
detectors:
  moving: {{type: motion, min_area: 200}}
"""
    )
    done = run_cli("run", "two.yaml", "--json", "both.jsonl", "--out", "out.mp4")
    assert done.returncode == 0, done.stderr.decode()
    lines = read_lines(tmp_path / "both.jsonl")
    assert sum(line["camera"] == "street" for line in lines) == 15
    assert sum(line["camera"] == "stills" for line in lines) == 3
    assert video_frame_count(tmp_path / "out-street.mp4") == 15
    assert video_frame_count(tmp_path / "out-stills.mp4") == 3


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_and_keeps_what_was_written(make_video, tmp_path: Path, signum: int, code: int):
    video = make_video("long.mp4", frames=250)
    process = subprocess.Popen(
        edgewatch_command("run", "--source", str(video), "--detector", "motion", "--realtime",
                          "--out", "cut.mp4", "--json", "cut.jsonl", "--quiet"),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    growing = tmp_path / "cut.jsonl.part"  # where the lines go while the run lasts
    deadline = time.monotonic() + 30
    while (not growing.exists() or len(growing.read_text().splitlines()) < 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    assert process.wait(30) == code, process.stderr.read().decode()
    assert not growing.exists()
    lines = read_lines(tmp_path / "cut.jsonl")
    assert 20 <= len(lines) < 250
    # the video was finished properly: it plays, with every frame that was delivered
    assert video_frame_count(tmp_path / "cut.mp4") == len(lines)


def test_show_without_a_display_says_so(square_video: Path, run_cli):
    message = one_line_error(run_cli("run", "--source", str(square_video), "--show"))
    assert "--show needs a display" in message


def test_show_opens_a_window_on_a_display(square_video: Path, tmp_path: Path):
    xvfb = subprocess.Popen(["/usr/bin/Xvfb", ":77", "-screen", "0", "800x600x24"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        done = subprocess.run(
            edgewatch_command("run", "--source", str(square_video), "--detector", "motion", "--show", "--quiet"),
            env={**os.environ, "DISPLAY": ":77", "QT_QPA_PLATFORM": "xcb"},
            capture_output=True,
            timeout=60,
        )
    finally:
        xvfb.terminate()
    assert done.returncode == 0, done.stderr.decode()


def write(tmp_path: Path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (lambda t: ["run", "--source", "nope.mp4"], "no such file or folder: nope.mp4"),
        (lambda t: ["run", "--source", write(t, "bad.mp4", os.urandom(20_000))], "damaged or not a video"),
        (lambda t: ["run", "--source", str((t / "empty").mkdir() or t / "empty")], "no images in folder"),
        (lambda t: ["run", "--source", write(t, "x.jpg", b"jpeg?"), "--detector", "yolo9"], "unknown detector 'yolo9'"),
        (lambda t: ["run", write(t, "c.yaml", "cameras:\n  a: [1, 2\n")], "c.yaml:3: malformed YAML"),
        (lambda t: ["run", write(t, "k.yaml", "cameras:\n  a:\n    source: x.mp4\n    detecter: hog\n")],
         "k.yaml:4: unknown key 'detecter' in cameras.a"),
        (lambda t: ["run", write(t, "v.yaml", "cameras:\n  a:\n    source: x.mp4\n    fps: fast\n")], "v.yaml:4: cameras.a.fps"),
        (lambda t: ["run", "missing.yaml"], "no such config file: missing.yaml"),
        (lambda t: ["run"], "nothing to run"),
        (lambda t: ["run", "--source", "x.mp4", "--stride", "0"], "--stride: must be 1 or more"),
        (lambda t: ["run", "--bogus"], "unrecognized arguments: --bogus"),
        (lambda t: ["run", "--source", write(t, "v.mp4", b""), "--out", "o.webm"], ""),
    ],
    ids=["missing-file", "corrupt-video", "empty-folder", "unknown-detector", "malformed-yaml", "wrong-key",
         "wrong-value", "missing-config", "no-source", "bad-stride", "bad-flag", "empty-video"],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path: Path, args, expected: str):
    message = one_line_error(run_cli(*args(tmp_path)))
    assert expected in message
    assert message.endswith(")"), "every error carries a hint in parentheses"


def test_unknown_video_suffix_is_refused_before_anything_runs(square_video: Path, run_cli, tmp_path: Path):
    message = one_line_error(run_cli("run", "--source", str(square_video), "--detector", "motion", "--out", "o.webm"))
    assert "unknown kind '.webm'" in message


def test_debug_shows_the_traceback(run_cli):
    done = run_cli("--debug", "run", "--source", "nope.mp4")
    assert done.returncode == 2
    assert "Traceback" in done.stderr.decode()


def test_demo_counts_people_in_the_real_street_video_and_serves_its_page(tmp_path: Path):
    demo = subprocess.Popen(
        edgewatch_command("demo", "--max-frames", "100", "--serve", "0"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = None
        for line in demo.stderr:  # the log names the page's address, then says when the video has ended
            if "serving the page at " in line:
                url = line.split("serving the page at ")[1].strip()
                assert "edgewatch" in httpx.get(url, timeout=10).text
                assert httpx.get(f"{url}api/cameras", timeout=10).json()[0]["name"] == "demo"
            if "still serving" in line:
                break
        assert url is not None
        demo.send_signal(signal.SIGINT)
        stdout, _ = demo.communicate(timeout=60)
    finally:
        demo.kill()
    assert demo.returncode == 0
    out = tmp_path / "edgewatch-demo"
    assert "edgewatch-demo/annotated.mp4" in stdout
    assert video_frame_count(out / "annotated.mp4") == 100
    lines = read_lines(out / "detections.jsonl")
    assert len(lines) == 100
    assert sum(bool(line["detections"]) for line in lines) >= 8
    assert (out / "data" / "events.sqlite").exists()


def test_python_api_is_what_the_cli_uses(square_video: Path):
    script = f"""
import edgewatch as ew
seen = []
with ew.open_source({str(square_video)!r}) as source:
    stats = ew.Pipeline(source, ew.load_detector("motion"), selection=ew.FrameSelection(stride=3),
                        on_result=lambda r: seen.append((r.frame.index, len(r.detections)))).run()
print(stats.frames, seen[0][0], seen[-1][0], sum(n for _, n in seen) > 0)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.stdout.decode().split() == ["10", "0", "27", "True"], done.stderr.decode()


def test_disk_full_mid_run_is_one_line_and_exit_2(square_video: Path, run_cli):
    done = run_cli("run", "--source", str(square_video), "--detector", "motion", "--json", "/dev/full", "--quiet")
    message = one_line_error(done)
    assert "cannot write /dev/full: No space left on device" in message


@pytest.mark.parametrize(
    ("args", "config", "expected"),
    [
        (["--only", "persn"], None, "'persn' is no label of detector hog (its labels: person)"),
        (["--detector", "street", "--only", "person,cars"], None, "'cars' is no label of detector street"),
        ([], "lines:\n      l: {points: [[0.5, 0], [0.5, 1]], labels: [cars]}", "lines.l.labels: 'cars'"),
        ([], "zones:\n      z: {polygon: [[0, 0], [1, 0], [1, 1]], labels: [bus]}", "zones.z.labels: 'bus'"),
        ([], "rules:\n      - {name: r, all_present: [person, dog]}", "rules.r.all_present: 'dog'"),
    ],
    ids=["only", "only-one-of-two", "line", "zone", "rule"],
)
def test_a_label_the_detector_never_reports_is_refused_listing_its_labels(
    args: list[str], config: str | None, expected: str, square_video: Path, run_cli, tmp_path: Path
):
    if config is None:
        done = run_cli("run", "--source", str(square_video), *args, "--quiet")
    else:
        (tmp_path / "site.yaml").write_text(
            f"cameras:\n  a:\n    source: {square_video}\n    detector: street\n    {config}\n"
        )
        done = run_cli("run", "site.yaml", "--quiet")
    assert expected in one_line_error(done)


def test_a_record_whose_events_never_happen_is_said_at_start(square_video: Path, run_cli, tmp_path: Path):
    (tmp_path / "site.yaml").write_text(
        f"cameras:\n  a:\n    source: {square_video}\n    detector: motion\n    record: {{}}\n"
    )
    done = run_cli("run", "site.yaml", "--max-frames", "3")
    assert done.returncode == 0
    assert (
        "record records incident events, and the camera has no rules: nothing will be recorded" in done.stderr.decode()
    )
    assert "add rules:" in done.stderr.decode()


def test_the_demo_prints_the_address_it_has_and_a_taken_port_names_its_own_option(tmp_path: Path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(edgewatch_command("demo", "--serve", str(port), "--max-frames", "5"),
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""  # no "open http://..." for a page that never came
    assert done.stderr.strip().splitlines() == [
        f"edgewatch: error: cannot serve on 127.0.0.1:{port}: the port is taken "
        "(choose another with --serve, or stop what holds it)"
    ]


def test_log_lines_in_a_terminal_go_above_the_progress_bar_not_into_it(bikes: Path, tmp_path: Path):
    # HOG takes a while a frame, so the bar is drawn before the run logs that it stops, bar still showing
    screen = run_in_terminal(edgewatch_command("run", "--source", str(bikes), "--detector", "hog", "--max-frames", "40"),
                             tmp_path)  # fmt: skip
    assert any("%|" in line for line in screen), screen  # a bar was drawn
    logged = [line for line in screen if "INFO" in line or "WARNING" in line]
    assert any("stopping: 40 frames processed" in line for line in logged), screen
    assert all(line.lstrip("\x1b[A").startswith(("WARNING:", "INFO:")) for line in logged), logged


@pytest.mark.parametrize(
    ("verb", "name"),
    [(["data", "sample", "synthetic:door?seconds=40", "sampled", "--budget", "5", "--by", "time"], "sample"),
     (["eval", "--truth", "truth", "--model", "door"], "eval"),
     (["data", "convert", "--from", "voc", "--to", "yolo", "voc", "converted"], "writing yolo")],
    ids=["data-sample", "eval-model", "data-convert"],
)  # fmt: skip
def test_long_verbs_show_a_progress_bar(verb: list[str], name: str, tmp_path: Path):
    from edgewatch.sources.synthetic_export import write_scene

    for label in ("open", "closed"):  # a classifier's truth: a folder per class
        (tmp_path / "truth" / label).mkdir(parents=True)
    video, _ = write_scene("door", tmp_path, seed=1, seconds=8)
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            label = "open" if index % 2 else "closed"  # the score is not the point here
            cv2.imwrite(str(tmp_path / "truth" / label / f"{index:03d}.jpg"), frame.to_ndarray(format="bgr24"))
    from edgewatch.data.datasets import save
    from labelled import plain_dataset

    boxes = {f"{index}.jpg": [("door", 5, 5, 40, 40)] for index in range(5)}
    save(plain_dataset(tmp_path / "plain", boxes, ["door"], (64, 48)), "voc", tmp_path / "voc")
    quiet_copy = shutil.copytree(tmp_path, tmp_path.with_name(f"{tmp_path.name}-quiet"))  # the same inputs
    screen = run_in_terminal(edgewatch_command(*verb), tmp_path)
    assert any(line.startswith(f"{name}:") and "%|" in line for line in screen), screen
    quiet = run_in_terminal(edgewatch_command(*verb, "--quiet"), quiet_copy)
    assert not any("%|" in line for line in quiet), quiet


def test_each_camera_reports_its_own_time_and_no_internal_words(make_video, run_cli, tmp_path: Path):
    short, long = make_video("short.mp4", frames=10), make_video("long.mp4", frames=75)
    (tmp_path / "site.yaml").write_text(
        f"cameras:\n  short: {{source: {short}, detector: motion, realtime: true}}\n"
        f"  long: {{source: {long}, detector: motion, realtime: true}}\n"
    )
    done = run_cli("run", "site.yaml", "--max-frames", "60")
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    seconds = {line.split(":")[1].strip(): float(line.split(" in ")[1].split(" s ")[0])
               for line in stderr.splitlines() if " frames in " in line}  # fmt: skip
    assert seconds["short"] < seconds["long"] / 2  # 10 frames at 25 fps against 60
    assert "stage" not in stderr and ":deliver" not in stderr and "schema upgraded" not in stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [(["synth", "door", "--seconds", "1", "--out-dir", "scene"], "--out-dir is now --out"),
     (["review", "nowhere", "--port", "0", "--format", "voc"], "--port is now --serve"),
     (["eval", "--compare", "a.json", "--score", "0.5"], "--score is now --min-score")],
    ids=["synth-out-dir", "review-port", "eval-score"],
)  # fmt: skip
def test_old_spellings_still_work_say_their_new_name_and_are_hidden(old: list[str], new: str, run_cli, tmp_path: Path):
    (tmp_path / "a.json").write_text("{}")
    done = run_cli(*old)
    stderr = done.stderr.decode()
    assert new in stderr and "the old name still works" in stderr
    if old[0] == "synth":
        assert done.returncode == 0 and (tmp_path / "scene" / "door.mp4").exists()
    flag = new.split()[0]
    assert flag not in run_cli(old[0], "--help").stdout.decode()


def test_debug_and_quiet_work_after_the_verb(run_cli):
    done = run_cli("run", "--source", "nope.mp4", "--debug")
    assert done.returncode == 2 and "Traceback" in done.stderr.decode()
    quiet = run_cli("synth", "door", "--seconds", "1", "--quiet")
    assert quiet.returncode == 0 and "INFO" not in quiet.stderr.decode()
