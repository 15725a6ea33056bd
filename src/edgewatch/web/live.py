"""The live parts of the page: each camera's annotated video (MJPEG) and live stats and events (SSE)."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from edgewatch.web.hub import LiveHub

BOUNDARY = "frame"


def live_router(hub: LiveHub, stop: threading.Event) -> APIRouter:
    """`/api/cameras/{camera}/stream.mjpeg` and `/api/live`, fed by `hub` until `stop` is set."""
    router = APIRouter(tags=["live"])

    @router.get("/api/cameras/{camera}/stream.mjpeg", summary="Live annotated video (MJPEG)")
    def stream(camera: str) -> StreamingResponse:
        if camera not in hub.feeds:
            raise HTTPException(404, f"no camera {camera}")

        async def parts() -> AsyncIterator[bytes]:
            # An async generator: a viewer who leaves cancels it at its `await`, so the `with` ends at
            # once (a sync generator in Starlette's thread pool lingered until garbage collection).
            with hub.viewer(camera) as feed:
                seen = -1
                while not stop.is_set():
                    found = await asyncio.to_thread(hub.next_picture, feed, seen)
                    if found is None:
                        continue
                    seen, picture = found
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(picture)}\r\n\r\n"
                    yield head.encode() + picture + b"\r\n"

        return StreamingResponse(parts(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")

    @router.get("/api/live", summary="Live stats and events (server-sent events)")
    async def live(request: Request) -> StreamingResponse:
        subscriber = hub.subscribe()

        async def messages() -> AsyncIterator[str]:
            try:
                while not stop.is_set() and not await request.is_disconnected():
                    try:
                        text = await asyncio.to_thread(subscriber.get, True, 1.0)
                    except queue.Empty:  # a heartbeat keeps proxies from closing the stream
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {text}\n\n"
            finally:
                hub.unsubscribe(subscriber)

        return StreamingResponse(messages(), media_type="text/event-stream")

    return router
