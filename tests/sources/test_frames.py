"""Which frames get processed: stride, target fps, max frames, loop and realtime pacing."""

import math
import time
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgewatch import EdgewatchError, FrameSelection, open_source
from edgewatch.sources.base import Picture, Source, SourceInfo
from edgewatch.sources.frames import read_frames


class CountingSource(Source):
    """A file-like source of `count` tiny frames that only counts; enough to test selection."""

    def __init__(self, count: int, fps: float | None) -> None:
        self.info = SourceInfo("memory", fps, 2, 2, count, live=False)
        self._left = count
        self._count = count

    def read(self) -> Picture | None:
        if self._left == 0:
            return None
        self._left -= 1
        import numpy as np

        return Picture(np.zeros((2, 2, 3), np.uint8))

    def rewind(self) -> bool:
        self._left = self._count
        return True


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, 300),
    source_fps=st.sampled_from([5.0, 12.5, 24.0, 25.0, 29.97, 30.0, 60.0]),
    stride=st.integers(1, 7),
    target_fps=st.one_of(st.none(), st.floats(0.5, 70.0)),
)
def test_selection_count_matches_the_promise_and_indices_are_spread(count, source_fps, stride, target_fps):
    selection = FrameSelection(stride=1 if target_fps else stride, fps=target_fps)
    indices = [frame.index for frame in read_frames(CountingSource(count, source_fps), "cam", selection)]
    assert len(indices) == selection.expected_count(count, source_fps)
    assert indices[0] == 0
    assert indices == sorted(set(indices))
    if target_fps is None:
        assert all(b - a == stride for a, b in pairwise(indices))
    elif target_fps < source_fps:
        # no two kept frames closer than one source frame less than the target period
        assert all(b - a >= math.floor(source_fps / target_fps) for a, b in pairwise(indices))


def test_video_time_is_index_over_fps(square_video: Path):
    with open_source(square_video) as source:
        frames = list(read_frames(source, "cam", FrameSelection(stride=5)))
    assert [frame.index for frame in frames] == [0, 5, 10, 15, 20, 25]
    assert [frame.time for frame in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert all(frame.camera == "cam" for frame in frames)


def test_loop_replays_with_growing_indices_until_max_frames():
    frames = list(read_frames(CountingSource(4, 10.0), "cam", FrameSelection(loop=True, max_frames=10)))
    assert [frame.index for frame in frames] == list(range(10))


def test_realtime_paces_a_file_at_its_frame_rate():
    started = time.monotonic()
    frames = list(read_frames(CountingSource(11, 20.0), "cam", FrameSelection(realtime=True)))
    assert len(frames) == 11
    assert time.monotonic() - started >= 0.45  # 10 intervals of 50 ms


@pytest.mark.parametrize("kwargs", [{"stride": 0}, {"fps": 0}, {"fps": -2}, {"stride": 2, "fps": 5}, {"max_frames": 0}])
def test_impossible_selections_are_refused(kwargs):
    with pytest.raises(EdgewatchError):
        FrameSelection(**kwargs)
