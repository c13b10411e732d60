"""Progress for long work: `ProgressLine`, one counting line (verify, rebuild, the bulk loader), and `Progress`, the
bench's phases and status lines.

On a terminal the line is redrawn in place (`\\r`), at most every `redraw_s`; anywhere else (a pipe, a log file,
CI) a plain line is printed at most every `interval_s`, so a piped run of an hour prints hundreds of lines, not
one per member. `close()` always prints the final state once, so the last line says what was done.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 30


class ProgressLine:
    def __init__(
        self,
        label: str,
        unit: str,
        stream: TextIO | None = None,
        interval_s: float = 5.0,
        redraw_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        # A terminal shows one line that changes; a log gets a line only now and then.
        self.every_s = redraw_s if self.tty else interval_s
        self.clock = clock
        self.started = clock()
        self.last_shown: float | None = None if self.tty else self.started
        self.done = 0
        self.total: int | None = None
        self.detail = ""
        self.width = 0  # of the last line drawn, so a shorter one can cover it
        self.updated = False
        self.closed = False

    def update(self, done: int, total: int | None = None, detail: str = "") -> None:
        """Record how far the work has got; draws the line when it is due."""
        self.done, self.total, self.detail, self.updated = done, total, detail, True
        now = self.clock()
        if self.last_shown is None or now - self.last_shown >= self.every_s:
            self.last_shown = now
            self._show(now, final=False)

    def close(self) -> None:
        """Show the final state (once) and end the line; nothing if there never was any progress."""
        if not self.closed and self.updated:
            self._show(self.clock(), final=True)
        self.closed = True

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def line(self, now: float) -> str:
        count = f"{self.done:,}/{self.total:,}" if self.total is not None else f"{self.done:,}"
        parts = [self.label]
        if self.total is not None:
            filled = BAR_WIDTH * min(self.done, self.total) // self.total if self.total else BAR_WIDTH
            parts.append(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}]")
        parts.append(f"{count} {self.unit}" + (f", {self.detail}" if self.detail else ""))
        parts.append(f"{now - self.started:.0f} s")
        return " ".join(parts)

    def _show(self, now: float, final: bool) -> None:
        text = self.line(now)
        if self.tty:
            padding = " " * max(0, self.width - len(text))
            self.width = len(text)
            self.stream.write(f"\r{text}{padding}" + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


class Progress:
    """The bench's progress: phases and results that stay, a status updated in place on a terminal and printed
    every few seconds otherwise (a log file, CI), so a long run is never silent and never floods its log."""

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
