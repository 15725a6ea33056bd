"""The web app: the page, its API, the live streams, media and metrics (FastAPI)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from edgewatch.sinks.store import EventStore
from edgewatch.web.hub import LiveHub
from edgewatch.web.live import live_router
from edgewatch.web.metrics import render_metrics
from edgewatch.web.review import ReviewFolders, review_router
from edgewatch.web.security import Hosts, guarded_app

STATIC = Path(__file__).resolve().parent / "static"


def _moment(value: Any) -> Any:
    """An ISO 8601 time as the store reads it (`datetime.fromisoformat`: a date, a time without
    seconds as the page's pickers send it, `Z` or an offset), checked here so that a bad one is a 422."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise PydanticCustomError("iso_time", "not an ISO 8601 time, e.g. 2026-11-23T13:08:00Z") from None


Moment = Annotated[datetime | None, BeforeValidator(_moment)]


def create_app(
    hub: LiveHub,
    store: EventStore | None = None,
    media_root: Path | None = None,
    token: str | None = None,
    review: Mapping[str, Path] | None = None,
    hosts: Hosts | None = None,
) -> FastAPI:
    """The app for a run: `hub` feeds the live parts, `store` the event list, `media_root` the clips
    and snapshots, `review` (name → dataset folder, such as the cameras' capture folders) the review
    page at `/review`. With `token`, every request needs it (bearer header, cookie, or `?token=` once,
    which sets the cookie). `hosts`: the names it answers to in the Host header (default: loopback's);
    edgewatch.web.security has what every request is checked for."""
    hosts = hosts or Hosts.bound_to("127.0.0.1")
    app = guarded_app("edgewatch", "Live video analytics: cameras, stats, events, media.", hosts, token)
    stop = threading.Event()
    app.state.stop = stop

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        return FileResponse(_inside(STATIC, name))

    @app.get("/api/cameras", summary="Cameras and their health")
    def cameras() -> list[dict[str, Any]]:
        return [hub.health(camera) for camera in hub.cameras()]

    @app.get("/api/stats", summary="The latest stats of every camera")
    def stats() -> dict[str, Any]:
        return hub.latest_stats

    @app.get("/api/events", summary="Stored events, newest first")
    def events(
        camera: str | None = None,
        label: str | None = None,
        type: str | None = None,
        since: Moment = None,
        until: Moment = None,
        limit: int = Query(100, ge=1, le=5000),
    ) -> list[dict[str, Any]]:
        if store is None:
            return []
        found = store.events(camera=camera, label=label, type=type, since=since, until=until, limit=limit)
        return [{**event, "media": _media_links(media_root, event)} for event in found]

    @app.get("/api/series", summary="Objects and crossings per hour or day, per camera and label")
    def series(
        camera: str | None = None,
        label: str | None = None,
        since: Moment = None,
        until: Moment = None,
        by: str = Query("hour", pattern="^(minute|hour|day)$"),
    ) -> list[dict[str, Any]]:
        if store is None:
            return []
        return _buckets(store.series(camera=camera, label=label, since=since, until=until), by)

    @app.get("/api/confidence", summary="How sure the detector was of the objects it reported")
    def confidence(camera: str | None = None, label: str | None = None, bins: int = Query(10, ge=2, le=50)) -> dict:
        scores = []
        if store is not None:
            for event in store.events(camera=camera, label=label, type="object", limit=None):
                if event.get("phase") == "end" and event.get("score") is not None:
                    scores.append(float(event["score"]))
        counts, edges = np.histogram(scores, bins=bins, range=(0.0, 1.0))
        return {"edges": [round(float(edge), 4) for edge in edges], "counts": counts.tolist(), "objects": len(scores)}

    app.include_router(live_router(hub, stop))

    @app.get("/media/{path:path}", summary="Snapshots, clips and records under the storage folder")
    def media(path: str) -> FileResponse:
        if media_root is None:
            raise HTTPException(404, "no media folder")
        return FileResponse(_inside(media_root, path))

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(render_metrics(hub), media_type="text/plain; version=0.0.4")

    # Mounted even without folders: the page then says how to get some, instead of the link failing.
    app.include_router(review_router(ReviewFolders(review or {}), dashboard=True))
    return app


def _inside(root: Path, relative: str) -> Path:
    """`root / relative` if that is a file inside `root` (no `..`, no symlink out), else 404."""
    base = root.resolve()
    try:
        path = (base / relative).resolve()
        inside = path.is_relative_to(base) and path.is_file()
    except (OSError, ValueError):  # a NUL byte, a name longer than the file system takes
        inside = False
    if not inside:
        raise HTTPException(404, "not found")
    return path


def _media_links(media_root: Path | None, event: dict[str, Any]) -> dict[str, str]:
    """URLs of the recorder's files for this event, where they exist."""
    if media_root is None or not event.get("id"):
        return {}
    folder = Path(event["camera"]) / event["wall_time"][:10]
    links = {}
    for kind, name in (("snapshot", f"{event['id']}.jpg"), ("clip", f"{event['id']}.mp4"),
                       ("record", f"{event['id']}.json")):  # fmt: skip
        if (media_root / folder / name).is_file():
            links[kind] = f"/media/{(folder / name).as_posix()}"
    return links


def _buckets(minutes: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """Per-minute series rows summed into hours or days (`bucket` is the ISO start of each)."""
    width = {"minute": 16, "hour": 13, "day": 10}[by]  # characters of "YYYY-MM-DDTHH:MM" that name the bucket
    totals: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in minutes:
        key = (row["camera"], row["label"], row["minute"][:width])
        total = totals.setdefault(key, {"camera": key[0], "label": key[1], "bucket": key[2], "started": 0,
                                        "in": 0, "out": 0, "max_current": 0})  # fmt: skip
        total["started"] += row["started"]
        total["in"] += row["in"]
        total["out"] += row["out"]
        total["max_current"] = max(total["max_current"], row["max_current"])
    return sorted(totals.values(), key=lambda total: (total["bucket"], total["camera"], total["label"]))
