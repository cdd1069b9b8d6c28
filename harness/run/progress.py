"""Progress of a long run on stderr: done/total, rate, ETA and problems so far."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from harness.storage.terminal import write_control


class Progress:
    def __init__(self, total: int, *, already_done: int = 0, stream: TextIO | None = None, interval_s: float = 0.5) -> None:
        self.total, self.done = total, already_done
        self._start_done = already_done
        self.errors = self.unparsed = self.declined = 0
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        # On a terminal, redraw often; in a log file, a line every few seconds.
        self._interval = interval_s if self._interactive else 5.0
        self._started = self._last = time.monotonic()

    def update(self, *, error: bool, answered: bool, declined: bool = False) -> None:
        self.done += 1
        self.errors += error
        self.declined += declined
        self.unparsed += not answered and not error and not declined
        now = time.monotonic()
        if now - self._last >= self._interval or self.done == self.total:
            self._last = now
            self._emit(now)

    def line(self, now: float | None = None) -> str:
        now = now or time.monotonic()
        elapsed = max(now - self._started, 1e-9)
        rate = (self.done - self._start_done) / elapsed
        remaining = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = "--:--" if remaining == float("inf") else time.strftime("%H:%M:%S", time.gmtime(remaining))
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"[iadbench] {self.done}/{self.total} ({percent:5.1f}%)  {rate:7.1f} q/s  ETA {eta}  "
            f"errors {self.errors}  unparsed {self.unparsed}" + (f"  declined {self.declined}" if self.declined else "")
        )

    def _emit(self, now: float) -> None:
        # a terminal's line is redrawn in place: the carriage return is ours, past the output guard
        print(self.line(now), end="", file=self._stream)
        write_control(self._stream, "\r" if self._interactive and self.done < self.total else "\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._interactive and self.done < self.total:
            print(file=self._stream)
