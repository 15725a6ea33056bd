"""The live parts of the page: each camera's annotated video (MJPEG) and live stats and events (SSE).

Both are async all the way: a viewer or a page waiting for the next picture or message waits on the
event loop (the hub wakes it), never in a thread of the loop's default pool, which has only CPUs + 4
threads; a wait held there by each idle page starved every other viewer (issue 13).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from edgewatch.web.hub import LiveHub

BOUNDARY = "frame"
WAKE_EVERY = 1.0  # s: how often an idle stream looks at the server's stop, and an idle page gets a heartbeat


def live_router(hub: LiveHub, stop: threading.Event) -> APIRouter:
    """`/api/cameras/{camera}/stream.mjpeg` and `/api/live`, fed by `hub` until `stop` is set."""
    router = APIRouter(tags=["live"])

    @router.get("/api/cameras/{camera}/stream.mjpeg", summary="Live annotated video (MJPEG)")
    async def stream(camera: str) -> StreamingResponse:
        if camera not in hub.feeds:
            raise HTTPException(404, f"no camera {camera}")

        async def parts() -> AsyncIterator[bytes]:
            # An async generator: a viewer who leaves cancels it at its `await`, so the `with` ends at
            # once (a sync generator in Starlette's thread pool lingered until garbage collection).
            with hub.viewer(camera) as viewer:
                while not stop.is_set():
                    picture = await viewer.next_picture(WAKE_EVERY)
                    if picture is None:
                        continue
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(picture)}\r\n\r\n"
                    yield head.encode() + picture + b"\r\n"

        return StreamingResponse(parts(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}")

    @router.get("/api/live", summary="Live stats and events (server-sent events)")
    async def live(request: Request) -> StreamingResponse:
        async def messages() -> AsyncIterator[str]:
            with hub.subscriber() as subscriber:
                while not stop.is_set() and not await request.is_disconnected():
                    text = await subscriber.next_message(WAKE_EVERY)
                    if text is None:  # a heartbeat keeps proxies from closing the stream
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {text}\n\n"

        return StreamingResponse(messages(), media_type="text/event-stream")

    return router
