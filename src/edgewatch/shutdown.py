"""Ctrl-C and SIGTERM as a request to stop, and the exit code a shell expects after them.

`edgewatch run` and `edgewatch serve` both end this way: the signal is noted, the main thread sees it,
closes what it opened, and exits 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import os
import signal
import threading

EXIT_OK = 0
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Interrupted(Exception):
    """A signal came while something was starting (see `Shutdown.check`)."""


class Shutdown:
    """Turns SIGINT / SIGTERM into a stop request and remembers the exit code.

    The handler only counts the signal: anything more (a lock, a log line, an `Event.set`) could meet
    the same lock held by the code the signal interrupted, and hang. The main thread polls `requested`.
    A second signal while stopping changes nothing; a third ends the process at once, as uvicorn does.

    Example:
        >>> with Shutdown() as shutdown:
        ...     shutdown.requested
        False
    """

    def __init__(self) -> None:
        self.exit_code = EXIT_OK
        self.signals = 0
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signals > 0

    def _handle(self, signum: int, _frame: object) -> None:
        self.signals += 1
        if self.signals == 1:
            self.exit_code = EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_TERMINATED
        elif self.signals >= 3:
            os._exit(self.exit_code)

    def check(self) -> None:
        """Between the steps of starting: give up now if a signal came.

        Raises:
            Interrupted: a signal came.
        """
        if self.requested:
            raise Interrupted

    def __enter__(self) -> Shutdown:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
