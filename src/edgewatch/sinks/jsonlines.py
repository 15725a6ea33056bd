"""Per-frame JSON lines (`--json`), one object a line, flushed as they come."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO

from edgewatch.errors import EdgewatchError
from edgewatch.pipeline.result import FrameResult


class JsonLinesWriter:
    """Appends one JSON line per processed frame; several cameras may share one writer.

    Each line is flushed when written, so a run that is killed leaves only whole lines behind.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = self.path.open("w", encoding="utf-8")
        except OSError as error:
            raise EdgewatchError(
                f"cannot write {self.path}: {error.strerror}", "choose a writable place for --json"
            ) from None
        self._lock = threading.Lock()
        self.lines_written = 0

    def write(self, result: FrameResult) -> None:
        line = json.dumps(result.to_json(), separators=(", ", ": ")) + "\n"
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
