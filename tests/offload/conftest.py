"""The offload tests' fixtures: `edgewatch serve` for a module or a test, frames of the street scene."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgewatch.sources import open_source
from offload_servers import Served, edgewatch_serve, jpeg


@pytest.fixture(scope="module")
def street_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One `edgewatch serve --detector street --port 0` for a module's tests."""
    with edgewatch_serve(tmp_path_factory.mktemp("server")) as served:
        yield served


@pytest.fixture(scope="session")
def street_jpegs() -> list[bytes]:
    """20 frames of the synthetic street scene (640x360), as JPEG."""
    with open_source("synthetic:street?seconds=3") as source:
        frames = [source.read().image for _ in range(70)][50:]  # people and cars are in by then
    return [jpeg(frame) for frame in frames]


@pytest.fixture
def serve_here(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[Served]]:
    """`serve_here(*args, name=..., stop=...)`: `edgewatch_serve` in the test's folder."""

    def start(*args: str, **kwargs: Any) -> contextlib.AbstractContextManager[Served]:
        return edgewatch_serve(tmp_path, *args, **kwargs)

    return start
