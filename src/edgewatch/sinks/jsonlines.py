"""JSON lines, one object a line, flushed as they come: per frame (`--json`) or per event (`--events`)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from edgewatch.pipeline.result import FrameResult
from edgewatch.sinks.files import StagedFile


class JsonLinesWriter:
    """Writes one JSON line per processed frame; several cameras may share one writer.

    While the run lasts the lines go to `FILE.part` (each written whole as it comes, so `tail -f` it),
    which replaces `FILE` when the run ends, errors included; a run that is killed leaves `FILE` as it was.
    """

    what = "--json"  # the option that named the file, for messages

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = StagedFile(self.path, self.what)
        self._lock = threading.Lock()
        self.lines_written = 0

    def write(self, result: FrameResult) -> None:
        self.append(result.to_json())

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(", ", ": ")) + "\n").encode()
        with self._lock:
            self._file.write(line)  # whole, or not at all: a full disk leaves no torn last line
            self.lines_written += 1

    def close(self) -> None:
        with self._lock:
            self._file.commit()

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventLogWriter(JsonLinesWriter):
    """`--events`: one JSON line per event (object, line crossing, zone, incident, state, detector), as raised."""

    what = "--events"

    def write(self, result: FrameResult) -> None:
        pass  # frames are --json's; this file holds events only

    def event(self, event: dict[str, Any]) -> None:
        self.append(event)
