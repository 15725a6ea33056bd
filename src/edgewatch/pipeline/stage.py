"""The one way edgewatch runs work in threads: stages joined by bounded channels.

Decoding, inference and encoding release the GIL inside OpenCV, ONNX Runtime and PyAV, so stages in
threads overlap for real. A bounded channel caps memory; a live source's channel keeps only the
newest frame so a slow detector never builds up lag.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

log = logging.getLogger(__name__)

_POLL_S = 0.1


class StopPipeline(Exception):
    """Raised by a sink or callback to end the run normally (a closed pipe, Esc in a window)."""


class Channel(Generic[In]):
    """A bounded FIFO between two stages.

    Args:
        capacity: items it holds at most.
        keep_latest: when full, drop the oldest item instead of making the producer wait.
        stop: when set, waiting producers and consumers give up.
    """

    def __init__(self, capacity: int, *, keep_latest: bool = False, stop: threading.Event | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._items: deque[In] = deque()
        self._capacity = capacity
        self._keep_latest = keep_latest
        self._stop = stop or threading.Event()
        self._closed = False
        self._condition = threading.Condition()
        #: items thrown away because the consumer was behind (keep_latest only)
        self.dropped = 0

    def put(self, item: In) -> bool:
        """Add an item; False when the channel was stopped first and the item is discarded."""
        with self._condition:
            while len(self._items) >= self._capacity:
                if self._keep_latest:
                    self._items.popleft()
                    self.dropped += 1
                    break
                if self._stop.is_set():
                    return False
                self._condition.wait(_POLL_S)
            self._items.append(item)
            self._condition.notify_all()
            return True

    def close(self) -> None:
        """No more items will come; consumers finish what is queued, then stop."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def __len__(self) -> int:
        return len(self._items)

    def batches(self, max_size: int) -> Iterator[list[In]]:
        """Like iterating, but each step also takes whatever else is already waiting, up to
        `max_size` items: a consumer that is behind catches up in batches, one that keeps up gets
        single items and never waits for a batch to fill."""
        while True:
            with self._condition:
                while not self._items and not self._closed and not self._stop.is_set():
                    self._condition.wait(_POLL_S)
                if self._stop.is_set() or not self._items:
                    return
                batch = [self._items.popleft() for _ in range(min(max_size, len(self._items)))]
                self._condition.notify_all()
            yield batch

    def __iter__(self) -> Iterator[In]:
        for (item,) in self.batches(1):
            yield item


class Stage(Generic[In, Out]):
    """A thread that takes items from `inputs`, applies `work`, and puts results on `output`.

    `work` may return None to pass nothing on. The stage ends when `inputs` is exhausted or `stop` is
    set; it then closes `output`. An exception in `work` is kept in `error` and sets `stop`, so the
    whole pipeline winds down and its owner can re-raise it.

    Example:
        >>> stop = threading.Event()
        >>> out = Channel(4, stop=stop)
        >>> stage = Stage("double", [1, 2, 3], lambda x: 2 * x, out, stop)
        >>> stage.start(); stage.join()
        >>> list(out)
        [2, 4, 6]
    """

    def __init__(
        self,
        name: str,
        inputs: Iterable[In],
        work: Callable[[In], Out | None],
        output: Channel[Out] | None,
        stop: threading.Event,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.error: BaseException | None = None
        self._inputs = inputs
        self._work = work
        self._output = output
        self._stop = stop
        self._on_exit = on_exit
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            for item in self._inputs:
                if self._stop.is_set():
                    break
                result = self._work(item)
                if result is not None and self._output is not None and not self._output.put(result):
                    break
        except StopPipeline as reason:
            # the reason is the user's news ("100 frames processed, as asked"); the stage is ours
            log.info("%s: stopping: %s", self.name.partition(":")[0], reason)
            self._stop.set()
        except BaseException as error:
            log.debug("stage %s failed", self.name, exc_info=True)
            self.error = error
            self._stop.set()
        finally:
            if self._output is not None:
                self._output.close()
            if self._on_exit is not None:
                self._on_exit()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()
