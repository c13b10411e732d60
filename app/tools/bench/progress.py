"""Progress while the bench runs: a line updated in place on a terminal, one line every few seconds otherwise
(a log file, CI), so a long run is never silent and never floods its log."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, every_s: float | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.every_s = every_s if every_s is not None else (0.5 if self.tty else 5.0)
        self._last = 0.0
        self._open_line = False

    def phase(self, title: str) -> None:
        self.note(f"== {title}")

    def note(self, line: str) -> None:
        """A line that stays (a phase's start, a result, a warning)."""
        self._end_line()
        print(line, file=self.stream, flush=True)

    def update(self, line: str, force: bool = False) -> None:
        """A status that replaces the previous one on a terminal and is printed at most every `every_s` otherwise."""
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            print("\r" + line[:width].ljust(width), end="", file=self.stream, flush=True)
            self._open_line = True
        else:
            print("  " + line, file=self.stream, flush=True)

    def _end_line(self) -> None:
        if self._open_line:
            print(file=self.stream, flush=True)
            self._open_line = False

    @contextlib.asynccontextmanager
    async def ticking(self, describe: Callable[[], str]) -> AsyncIterator[None]:
        """Show `describe()` every `every_s` while the block runs, and once more at its end."""

        async def tick() -> None:
            while True:
                await asyncio.sleep(self.every_s)
                self.update(describe(), force=True)

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.update(describe(), force=True)
            self._end_line()
