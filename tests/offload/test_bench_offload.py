"""`edgewatch bench offload`: the device's model against the server's over emulated links, run as a user
would. A real server, real relays on loopback, the synthetic street scene."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgewatch.bench.offload import Answer, shown
from edgewatch.offload.link import PROFILES
from offload_servers import one_line_error

SOURCE = "synthetic:street?seconds=6&seed=2"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, Path]:
    """One bench of `street` against itself on a server, over no link and LTE, with and without send-less."""
    import subprocess

    from media import edgewatch_command

    folder = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        edgewatch_command("bench", "offload", "--local", "street", "--remote", "street", "--source", SOURCE,
                          "--seconds", "3", "--profiles", "none,lte", "--send-less", "2", "--results", "bench.json",
                          "--plot", "bench.png"),
        cwd=folder, capture_output=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode(), json.loads((folder / "bench.json").read_text()), folder


def _rows(results: dict) -> dict[tuple[str, str, str], dict]:
    return {(row["where"], row["link"], row["send_less"]): row for row in results["results"]}


def test_the_table_has_the_device_and_each_link_with_and_without_sending_less(bench):
    printed, results, folder = bench
    rows = _rows(results)
    assert set(rows) == {("device", "-", "off"), ("server", "none", "off"), ("server", "none", "2"),
                         ("server", "lte", "off"), ("server", "lte", "2")}  # fmt: skip
    assert "F1 live" in printed and "lte" in printed
    assert (folder / "bench.png").stat().st_size > 10_000
    assert set(results["verdicts"]) == {"none", "lte"} and set(results["verdicts"].values()) <= {"server", "device"}
    for row in rows.values():
        assert row["frames"] == 75 and 0 < row["answered"] <= row["frames"]


def test_every_frame_sent_over_no_link_is_answered_as_the_reference_was(bench):
    every = _rows(bench[1])[("server", "none", "off")]
    # the same frames, the same JPEG, the same model: the answers are the reference's own
    assert every["f1_answered"] == pytest.approx(1.0)
    assert every["sent"] == every["answered"]


def test_lte_answers_no_sooner_than_its_round_trip_and_costs_the_uplink_what_it_sent(bench):
    rows = _rows(bench[1])
    lte, direct = rows[("server", "lte", "off")], rows[("server", "none", "off")]
    assert lte["p50_ms"] >= 2 * PROFILES["lte"].delay_ms
    assert lte["p50_ms"] > direct["p50_ms"]
    # a frame of the street scene is a JPEG of some 20-60 kB; the relay counts it with its framing
    per_sent = lte["up_bytes_per_frame"] * lte["frames"] / lte["sent"]
    assert 10_000 < per_sent < 200_000
    assert lte["up_mb_per_min"] == pytest.approx(lte["up_bytes_per_frame"] * 25 * 60 / 1e6, rel=0.01)


def test_sending_less_sends_fewer_bytes_over_the_same_link(bench):
    rows = _rows(bench[1])
    every, fewer = rows[("server", "lte", "off")], rows[("server", "lte", "2")]
    assert fewer["up_bytes_per_frame"] < 0.8 * every["up_bytes_per_frame"]
    assert fewer["sent"] < fewer["answered"]  # the skipped frames were answered on the edge


def test_a_frame_shows_the_last_answer_ready_by_its_end():
    # 10 fps: frame i is taken at i / 10 s and shown at the end of its interval, (i + 1) / 10 s
    answers = [Answer(0, 0.05, 50.0, "a"), Answer(2, 0.25, 50.0, "b")]
    assert shown(answers, 4, 10.0) == ["a", "a", "b", "b"]
    assert shown([Answer(0, 0.25, 250.0, "late")], 4, 10.0) == [None, None, "late", "late"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--profiles", "lte,dialup"), "dialup"),
        (("--profiles", "up=0,down=1"), "up"),
        (("--send-less", "lots"), "--send-less lots"),
        (("--results", "bench.txt"), "--results bench.txt"),
        (("--plot", "bench.jpg"), "--plot bench.jpg"),
        (("--seconds", "0"), "--seconds"),
        (("--remote", "nosuch.onnx"), "nosuch.onnx"),
        (("--remote", "remote://127.0.0.1:9"), "127.0.0.1:9"),
    ],
)
def test_bad_bench_input_is_one_line_and_exit_code_2(args: tuple[str, ...], expected: str, run_cli):
    base = {"--local": "street", "--remote": "street", "--seconds": "1", "--profiles": "none"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    done = run_cli("bench", "offload", "--quiet", *[item for pair in {**base, **given}.items() for item in pair])
    assert done.returncode == 2, done.stderr.decode()
    assert expected in one_line_error(done)


def test_results_over_the_source_are_refused_and_it_is_kept(run_cli, tmp_path: Path):
    source = tmp_path / "clip.json"
    source.write_text("{}")
    done = run_cli("bench", "offload", "--local", "street", "--remote", "street", "--source", str(source),
                   "--results", str(source))  # fmt: skip
    assert done.returncode == 2 and "overwrite" in one_line_error(done)
    assert source.read_text() == "{}"
