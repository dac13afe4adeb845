"""A small progress bar for training epochs (stderr; redrawn in place on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def plural(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless n is 1: "1 epoch", "3 epochs", "2 classes"."""
    return f"{n} {noun}{'' if n == 1 else 'es' if noun.endswith(('s', 'x')) else 's'}"


class ProgressBar:
    """``epoch 3/10 [########------]  47/469  12,345 ex/s  loss 123.45`` on one line.

    On a terminal the line is redrawn at most every ``interval`` seconds; elsewhere only
    the finished line is written.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, stream: TextIO | None = None, width: int = 24):
        self.total, self.desc, self.enabled, self.width = total, desc, enabled, width
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()
        self.start = self.last = time.perf_counter()
        self.done = 0
        self.examples = 0

    def due(self, interval: float = 0.1) -> bool:
        """True when a redraw is due (the caller then fetches the numbers it shows)."""
        return self.live and time.perf_counter() - self.last >= interval

    def update(self, batches: int, examples: int) -> None:
        self.done += batches
        self.examples += examples

    def line(self, postfix: str) -> str:
        filled = int(self.width * self.done / max(self.total, 1))
        rate = self.examples / max(time.perf_counter() - self.start, 1e-9)
        bar = "#" * filled + "-" * (self.width - filled)
        count = f"{self.done:>{len(str(self.total))}}/{self.total}"
        return f"{self.desc} [{bar}] {count}  {rate:,.0f} ex/s  {postfix}"

    def draw(self, postfix: str) -> None:
        self.last = time.perf_counter()
        if self.live:
            self.stream.write("\r" + self.line(postfix))
            self.stream.flush()

    def close(self, postfix: str) -> None:
        if self.enabled:
            self.stream.write(("\r" if self.live else "") + self.line(postfix) + "\n")
            self.stream.flush()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
