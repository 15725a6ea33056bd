"""JSON lines, one object a line, flushed as they come: per frame (`--json`) or per event (`--events`)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.result import FrameResult


class JsonLinesWriter:
    """Appends one JSON line per processed frame; several cameras may share one writer.

    Each line is flushed when written, so a run that is killed leaves only whole lines behind.
    """

    what = "--json"  # the option that named the file, for messages

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = self.path.open("w", encoding="utf-8")
        except OSError as error:
            raise EdgewatchError(
                f"cannot write {self.path}: {error.strerror}", f"choose a writable place for {self.what}"
            ) from None
        self._lock = threading.Lock()
        self.lines_written = 0

    def write(self, result: FrameResult) -> None:
        self.append(result.to_json())

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(", ", ": ")) + "\n"
        with self._lock:
            try:
                self._file.write(line)
                self._file.flush()
            except OSError as error:
                raise EdgewatchError(f"cannot write {self.path}: {error.strerror}", "free some disk space") from None
            self.lines_written += 1

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            try:
                self._file.close()
            except OSError as error:
                raise EdgewatchError(f"cannot write {self.path}: {error.strerror}", "free some disk space") from None

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventLogWriter(JsonLinesWriter):
    """`--events`: one JSON line per event (object, line crossing, zone, incident, state), as raised."""

    what = "--events"

    def write(self, result: FrameResult) -> None:
        pass  # frames are --json's; this file holds events only

    def event(self, event: dict[str, Any]) -> None:
        self.append(event)
