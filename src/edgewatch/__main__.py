"""`python -m edgewatch` and the `edgewatch` command (pyproject's entry point)."""

import os
import signal
import sys


def _quit_while_loading(_signum: int, _frame: object) -> None:
    os._exit(130)  # nothing is open yet: no traceback from whichever import Ctrl-C fell in


def entry_point() -> None:
    # The libraries take a second or two to load; after that, the command handles Ctrl-C itself.
    previous = signal.signal(signal.SIGINT, _quit_while_loading)
    from edgewatch.cli import main

    signal.signal(signal.SIGINT, previous)
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
