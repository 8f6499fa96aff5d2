"""A dependency-free progress bar for the CLI: redraws in place on a terminal, prints
occasional plain lines when stderr is a file or a CI log."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from core.insight.format import fmt_duration


class ProgressBar:
    def __init__(
        self, total: float, stream: TextIO | None = None, width: int = 28, plain_every_s: float = 10.0
    ) -> None:
        self.total, self.width = max(total, 1e-9), width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0, self.last_plain, self.plain_every_s = time.time(), 0.0, plain_every_s
        self.drawn = False

    def eta(self, done: float) -> float | None:
        if done <= 0:
            return None
        return (time.time() - self.t0) * (self.total - done) / done

    def update(self, done: float, text: str = "", force: bool = False) -> None:
        frac = min(max(done / self.total, 0.0), 1.0)
        filled = int(frac * self.width)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% "
            f"{text} | {fmt_duration(time.time() - self.t0)} elapsed, ETA {fmt_duration(self.eta(done))}"
        )
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.drawn = True
        elif force or time.time() - self.last_plain >= self.plain_every_s:
            self.stream.write(line + "\n")
            self.last_plain = time.time()
        self.stream.flush()

    def message(self, text: str) -> None:
        """Print a log line without breaking the bar."""
        if self.tty and self.drawn:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
