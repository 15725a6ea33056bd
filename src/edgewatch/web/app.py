"""The web app: the page, its API, the live streams, media and metrics (FastAPI)."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from edgewatch.sinks.store import EventStore
from edgewatch.web.hub import LiveHub
from edgewatch.web.live import live_router
from edgewatch.web.metrics import render_metrics
from edgewatch.web.review import ReviewFolders, review_router

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_COOKIE = "edgewatch_token"


def create_app(
    hub: LiveHub,
    store: EventStore | None = None,
    media_root: Path | None = None,
    token: str | None = None,
    review: Mapping[str, Path] | None = None,
) -> FastAPI:
    """The app for a run: `hub` feeds the live parts, `store` the event list, `media_root` the clips
    and snapshots, `review` (name → dataset folder, such as the cameras' capture folders) the review
    page at `/review`. With `token`, every request needs it (bearer header, cookie, or `?token=` once,
    which sets the cookie)."""
    app = FastAPI(title="edgewatch", description="Live video analytics: cameras, stats, events, media.")
    stop = threading.Event()
    app.state.stop = stop

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        if token is None:
            return await call_next(request)
        offered = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            offered = header[7:]
        if offered is None or not hmac.compare_digest(offered.encode(), token.encode()):
            return PlainTextResponse("a token is needed: Authorization: Bearer <token>, or ?token=", 401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

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
        since: str | None = None,
        until: str | None = None,
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
        since: str | None = None,
        until: str | None = None,
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
    path = (base / relative).resolve()
    if not path.is_relative_to(base) or not path.is_file():
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
