"""Live video under load (issue 13, item 12): pages that hold the live numbers open (SSE) and wait for
news never starve the video of another viewer, against `edgewatch run --serve` on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable

import httpx

from brokers import free_port
from media import edgewatch_command, wait_until_serving

SITE = """
cameras:
  street:
    source: synthetic:street?seed=2&seconds=30
    realtime: true
    detector: motion  # cheap, so that the pipeline keeps pace on a busy machine instead of catching up in bursts
    stats_interval: 1
"""
# Twice the threads of asyncio's default pool (min(32, CPUs + 4)): where each idle page's wait holds one
# of those threads, the video's next picture queues behind them.
PAGES = 2 * min(32, (os.cpu_count() or 1) + 4)
PICTURES = 60  # at 25 fps, under 3 s of video
WATCH_AT_MOST = 10.0  # s: where the video is starved, stop counting after this long


def test_idle_live_pages_do_not_starve_the_video(tmp_path):
    (tmp_path / "site.yaml").write_text(SITE)
    port = free_port()
    run = subprocess.Popen(
        edgewatch_command("run", "site.yaml", "--serve", str(port), "--quiet"), cwd=tmp_path, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, run, lambda: run.stderr.read().decode() if run.poll() is not None else "")
        pictures, frames, pages = asyncio.run(_watch_among_idle_pages(url))
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(20)
    # with one viewer the hub encodes a picture per frame processed while it watches: it gets nearly all
    assert pictures >= 0.8 * frames, f"the viewer got {pictures} of {frames} pictures"
    # and every page got every stats message sent while they all listened, in order
    assert len(pages[0]) >= 2 and pages[0] == sorted(pages[0])
    assert all(page == pages[0] for page in pages), pages


async def _watch_among_idle_pages(url: str) -> tuple[int, int, list[list[float]]]:
    """Hold PAGES live pages open, watch the video for PICTURES pictures, then let the pages catch up
    with the latest stats; (pictures the viewer got, frames processed meanwhile, each page's stats
    times after they had all connected)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30.0), limits=limits) as client:
        connected = [asyncio.Event() for _ in range(PAGES)]
        times: list[list[float]] = [[] for _ in range(PAGES)]
        listening = [asyncio.create_task(_listen(client, times[i], connected[i])) for i in range(PAGES)]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in connected)), 30)
        # by the first stats (a second of video) the detector's slow first calls, and the burst of
        # queued frames after them, are over: frames delivered faster than a viewer can take them
        await _until(lambda: all(times), 15)
        since = (await client.get("/api/stats")).json()["street"]["time"]

        before = (await client.get("/api/cameras")).json()[0]["frames"]
        pictures = await _watch(client, PICTURES, WATCH_AT_MOST)
        deadline = time.monotonic() + 5
        while (await client.get("/api/cameras")).json()[0]["viewers"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        after = (await client.get("/api/cameras")).json()[0]["frames"]

        await _until(lambda: all(page[-1] >= since + 2 for page in times), 15)  # two more stats at least
        latest = (await client.get("/api/stats")).json()["street"]["time"]
        await _until(lambda: all(page[-1] >= latest for page in times), 10)
        for task in listening:
            task.cancel()
        await asyncio.gather(*listening, return_exceptions=True)
    return pictures, after - before, [[at for at in page if since < at <= latest] for page in times]


async def _until(condition: Callable[[], bool], at_most: float) -> None:
    deadline = time.monotonic() + at_most
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _listen(client: httpx.AsyncClient, times: list[float], connected: asyncio.Event) -> None:
    async with client.stream("GET", "/api/live") as response:
        assert response.status_code == 200
        connected.set()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                message = json.loads(line[6:])
                if message["kind"] == "stats":
                    times.append(message["stats"]["time"])


async def _watch(client: httpx.AsyncClient, wanted: int, at_most: float) -> int:
    """Pictures of the MJPEG stream read until `wanted` came or `at_most` seconds passed."""
    pictures, buffer = 0, b""
    with contextlib.suppress(TimeoutError):  # starved: what came in time is the count
        async with asyncio.timeout(at_most), client.stream("GET", "/api/cameras/street/stream.mjpeg") as response:
            async for chunk in response.aiter_bytes():
                buffer += chunk
                while (start := buffer.find(b"\xff\xd8")) >= 0 and (end := buffer.find(b"\xff\xd9", start)) >= 0:
                    pictures += 1
                    buffer = buffer[end + 2 :]
                if pictures >= wanted:
                    break
    return pictures
