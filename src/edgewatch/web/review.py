"""The label review page: step through a dataset folder's images, accept, reject, relabel, draw and
delete boxes, and save them in a dataset format. Served on its own (`edgewatch review DIR`) or inside
the dashboard (`create_app(..., review=...)`, for the retraining-capture folders).

API (every `{folder}` is a name from `/api/review/folders`, every `{name}` an image's file name):

| method and path | does |
| --- | --- |
| `GET /review` | the page |
| `GET /api/review/folders` | the folders to choose from, and whether each holds a dataset yet |
| `GET /api/review/{folder}/images` | images with their state, classes, formats, the last reviewed image |
| `GET /api/review/{folder}/images/{name}` | one image's boxes |
| `PUT /api/review/{folder}/images/{name}` | its boxes and state as the page has them (`ImageEdit`) |
| `GET /api/review/{folder}/image/{name}` | the picture itself |
| `POST /api/review/{folder}/save?format=` | export the boxes not rejected in that format (default: `--to`) |

The PUT and the POST need the browser session's CSRF token (`GET /api/csrf`, sent back in
`X-CSRF-Token`) and refuse other origins; edgewatch.web.security and docs/security.md say why.

The review itself (index file, backups, timestamps) is `edgewatch.data.review_index`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from edgewatch.data.datasets import FORMATS
from edgewatch.data.review_index import ImageEdit, ReviewImage, ReviewIndex
from edgewatch.errors import EdgewatchError
from edgewatch.web.security import FiniteJSONRoute, Hosts, guarded_app
from edgewatch.web.server import WebServer

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = ("review.js", "review.css", "style.css")  # the page borrows the dashboard's look


class ReviewFolders:
    """The folders a page may review, by name; each is opened on first use, so a capture folder that
    has no frames yet (or none at all) becomes reviewable once the camera has saved some.

    Args:
        folders: name → dataset folder, or an index already open.
        format: the folders' annotation format (default: guessed per folder).
        target_format: the format a save writes by default (default: each folder's own).

    Example:
        >>> folders = ReviewFolders({"door": Path("data/capture/door")})  # doctest: +SKIP
        >>> folders.open("door").names()[:1]  # doctest: +SKIP
        ['door_00000012.jpg']
    """

    def __init__(
        self,
        folders: Mapping[str, str | Path | ReviewIndex],
        format: str | None = None,
        target_format: str | None = None,
    ) -> None:
        self.format, self.target_format = format, target_format
        self._paths = {name: folder.folder if isinstance(folder, ReviewIndex) else Path(folder)
                       for name, folder in folders.items()}  # fmt: skip
        self._open = {name: folder for name, folder in folders.items() if isinstance(folder, ReviewIndex)}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._paths)

    def open(self, name: str) -> ReviewIndex:
        """The index of folder `name`, opened now if it was not.

        Raises:
            KeyError: no folder of that name.
            EdgewatchError: the folder is no dataset (yet).
        """
        path = self._paths[name]
        with self._lock:
            if name not in self._open:
                self._open[name] = ReviewIndex(path, self.format, self.target_format)
            return self._open[name]

    def describe(self, name: str) -> dict[str, Any]:
        """What the folder chooser shows: the path, and the images so far or why there are none."""
        about: dict[str, Any] = {"name": name, "path": str(self._paths[name])}
        try:
            index = self.open(name)
            index.refresh()
        except EdgewatchError as error:
            return {**about, "ready": False, "problem": str(error)}
        rows = index.overview()
        reviewed = sum(row["state"] == "reviewed" for row in rows)
        return {**about, "ready": True, "format": index.format, "images": len(rows), "reviewed": reviewed}


def review_router(folders: ReviewFolders, dashboard: bool = False) -> APIRouter:
    """The page at `/review` and its API under `/api/review/` for `folders`; `dashboard` adds a link
    back to the dashboard's page.

    Example:
        >>> app.include_router(review_router(ReviewFolders({"door": "data/capture/door"})))  # doctest: +SKIP
    """
    router = APIRouter(tags=["review"], route_class=FiniteJSONRoute)

    def opened(folder: str) -> ReviewIndex:
        try:
            return folders.open(folder)
        except KeyError:
            raise HTTPException(404, f"no review folder {folder}") from None
        except EdgewatchError as error:
            raise HTTPException(409, str(error)) from None

    def known(index: ReviewIndex, name: str) -> None:
        try:
            index.image(name)
        except KeyError:
            raise HTTPException(404, f"no image {name} in {index.folder}") from None

    @router.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "review.html").read_text(encoding="utf-8"))

    @router.get("/api/review/folders", summary="Folders to review")
    def list_folders() -> dict[str, Any]:
        return {"dashboard": dashboard, "folders": [folders.describe(name) for name in folders.names()]}

    @router.get("/api/review/{folder}/images", summary="A folder's images, their review state, its classes")
    def images(folder: str) -> dict[str, Any]:
        index = opened(folder)
        try:
            index.refresh()  # a capture folder grows while its camera runs
        except EdgewatchError as error:
            raise HTTPException(409, str(error)) from None
        return {
            "folder": folder, "path": str(index.folder), "format": index.format,
            "target_format": index.target_format, "formats": list(FORMATS), "classes": index.classes,
            "last": index.last_reviewed(), "saved": index.saved, "skipped": index.skipped,
            "images": index.overview(),
        }  # fmt: skip

    @router.get("/api/review/{folder}/images/{name}", summary="One image's boxes and state")
    def image(folder: str, name: str) -> ReviewImage:
        index = opened(folder)
        known(index, name)
        return index.image(name)

    @router.put("/api/review/{folder}/images/{name}", summary="Record an image's boxes and state")
    def update(folder: str, name: str, edit: ImageEdit) -> ReviewImage:
        index = opened(folder)
        known(index, name)
        try:
            return index.update(name, edit)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None

    @router.get("/api/review/{folder}/image/{name}", summary="The picture")
    def picture(folder: str, name: str) -> FileResponse:
        index = opened(folder)
        try:
            return FileResponse(index.image_path(name))  # looked up by name: no path from the request is joined
        except KeyError:
            raise HTTPException(404, "not found") from None

    @router.post("/api/review/{folder}/save", summary="Export the boxes not rejected in a dataset format")
    def save(folder: str, format: str | None = None) -> dict[str, Any]:
        index = opened(folder)
        try:
            report = index.save(format)
        except EdgewatchError as error:
            raise HTTPException(409, str(error)) from None
        return {"format": format or index.target_format, "summary": report.summary(), "saved": index.saved}

    return router


def review_app(folder: str | Path, format: str | None = None, target_format: str | None = None) -> FastAPI:
    """The standalone review app for one dataset folder: the page at `/` and `/review`.

    Raises:
        EdgewatchError: `folder` is no dataset, or its review index cannot be read.

    Example:
        >>> app = review_app("sampled/", target_format="yolo")  # doctest: +SKIP
    """
    index = ReviewIndex(folder, format, target_format)
    # only ever served on loopback (serve_review)
    app = guarded_app("edgewatch review", "Review and correct a dataset's labels.", Hosts.bound_to("127.0.0.1"))
    app.state.stop = threading.Event()  # WebServer.close sets it
    app.include_router(review_router(ReviewFolders({index.folder.name or "dataset": index})))

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/review")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        if name not in ASSETS:  # the dashboard's script is not served here
            raise HTTPException(404, "not found")
        return FileResponse(STATIC / name)

    return app


def serve_review(folder: Path, format: str | None = None, target_format: str | None = None, port: int = 8081) -> int:
    """Serve the review page for `folder` on 127.0.0.1:`port` (0: any free port) until Ctrl-C.

    Prints `edgewatch review: open http://127.0.0.1:PORT/ — Ctrl-C stops` once it answers.

    Returns:
        The exit code: 0.

    Raises:
        EdgewatchError: `folder` is no dataset, or the port cannot be had (taken, out of range).

    Example:
        >>> serve_review(Path("sampled"), target_format="yolo", port=0)  # doctest: +SKIP
        edgewatch review: open http://127.0.0.1:40123/ — Ctrl-C stops
        0
    """
    app = review_app(folder, format, target_format)
    server = WebServer(app, "127.0.0.1", port, flag="--serve").start()
    print(f"edgewatch review: open {server.url} — Ctrl-C stops", flush=True)
    try:
        while not app.state.stop.wait(0.5):  # a timed wait lets Ctrl-C through
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
