"""Repeated log lines, once per window: a broker that is gone must not fill the disk.

aiokafka and Faust log every failed reconnect, several per millisecond across
their clients (a worker wrote 200 MB in three minutes when its broker stopped).
The first of a kind still goes out at once; its repeats within `window` seconds
are counted and said with the next one that goes out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RepeatThrottle", "throttled_console"]


class RepeatThrottle(logging.Filter):
    """Lets one record of each (logger, level, text) through per `window` seconds."""

    MAX_KINDS = 1000  # distinct texts remembered; forgetting them only lets a repeat through

    def __init__(self, window: float = 30.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window = window
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # -> (let out at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, record.getMessage())
        now = self.clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self.window:
            self._seen[kind] = (seen[0], seen[1] + 1)
            return False
        if len(self._seen) >= self.MAX_KINDS:
            self._seen.clear()
        held = seen[1] if seen else 0
        self._seen[kind] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} (and {held} more like it in {self.window:g}s)"
            record.args = ()
        return True


def throttled_console(window: float = 30.0) -> logging.Handler:
    """A stderr handler that lets each repeated line out once per `window` seconds."""
    handler = logging.StreamHandler()
    handler.addFilter(RepeatThrottle(window))
    return handler
