"""`cart run`'s supervisor: starts the system's processes, restarts any that dies, stops them all cleanly.

A process that exits (a crash, a SIGKILL, an out-of-memory kill) is started again after a pause that doubles with
each quick death (0.5 s up to 30 s) and goes back to the start once it has run for a minute; every start and exit
is logged with the exit status. The others keep serving meanwhile: a dead worker's partitions move to the live
workers of its group, and the API answers 503 with `Retry-After` while no worker owns a cart's partition.

SIGTERM or SIGINT to the supervisor (Ctrl-C, a service manager) stops every process with SIGTERM, waits for them
to finish what they are doing (a worker answers the batch it holds and leaves its group), and exits; a process
that does not stop within `stop_timeout_s` is killed. Each child asks the kernel for SIGTERM should the
supervisor itself die (PR_SET_PDEATHSIG), so a SIGKILLed supervisor leaves no orphans holding the ports. A child
may be started at a lower CPU priority (`Child.nice`): `cart run`'s query-side workers are (Settings.query_worker_nice).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Run in the child between fork and exec: SIGTERM when the supervisor goes away."""
    with contextlib.suppress(OSError):  # not Linux: the supervisor's own stop still stops the children
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _in_child(nice: int) -> Callable[[], None]:
    """What runs in the child between fork and exec: dies with the supervisor, and is `nice` nicer than it."""

    def prepare() -> None:
        _die_with_parent()
        if nice:
            os.nice(nice)  # the process's threads, started later, inherit it

    return prepare


@dataclass
class Child:
    name: str
    command: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    nice: int = 0  # added to the supervisor's niceness: a lower CPU priority
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    backoff_s: float = 0.5


@dataclass
class Supervisor:
    children: list[Child]
    stop_timeout_s: float = 60.0
    healthy_after_s: float = 60.0
    max_backoff_s: float = 30.0
    _stopping: bool = False

    def say(self, line: str) -> None:
        print(f"cart run: {line}", file=sys.stderr, flush=True)

    def start(self, child: Child) -> None:
        child.popen = subprocess.Popen(
            list(child.command), env={**os.environ, **child.env}, preexec_fn=_in_child(child.nice)
        )
        child.started_at = time.monotonic()
        self.say(f"{child.name} started (pid {child.popen.pid})")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for child in self.children:
            self.start(child)
        try:
            while not self._stopping:
                self._watch()
                time.sleep(0.2)
        finally:
            self.stop()
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stopping:
            self.say(f"{signal.Signals(signum).name}: stopping every process")
        self._stopping = True

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.popen is None:
                if now >= child.next_start and not self._stopping:
                    self.start(child)
                continue
            code = child.popen.poll()
            if code is None:
                if now - child.started_at > self.healthy_after_s:
                    child.backoff_s = 0.5  # it has run for a while: the next death starts the backoff afresh
                continue
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
            child.popen = None
            child.restarts += 1
            child.next_start = now + child.backoff_s
            self.say(f"{child.name} {how}; starting it again in {child.backoff_s:.1f}s (restart {child.restarts})")
            child.backoff_s = min(child.backoff_s * 2, self.max_backoff_s)

    def stop(self) -> None:
        running = [c for c in self.children if c.popen is not None and c.popen.poll() is None]
        for child in running:
            assert child.popen is not None
            child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for child in running:
            assert child.popen is not None
            try:
                child.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop within {self.stop_timeout_s:.0f}s; killing it")
                child.popen.kill()
                child.popen.wait()
        self.say("stopped")
