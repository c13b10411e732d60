"""How fast the host is right now: a fixed pure-Python loop, timed.

On the shared development machine such a loop (of 3,000,000 iterations) took 250 to 725 ms within minutes
(2026-12-07), and /proc/stat shows no steal time to explain it: the host's speed swings more than most changes move
a latency. A figure is only comparable with another taken at a similar probe, so the bench records the probe
before and after every part and every open-loop level. Lower is faster; the numbers mean nothing across machines."""

from __future__ import annotations

import time
from typing import Any

ITERATIONS = 1_000_000
TRIES = 3


def spin(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def probe_ms(iterations: int = ITERATIONS, tries: int = TRIES) -> float:
    """The best of a few timings of the same loop: the best, so that one preemption of the bench's own process
    does not pass for a slow host. Blocks the caller's event loop for a few hundred ms: call it between loads."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        spin(iterations)
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def around(before: float, after: float) -> dict[str, Any]:
    return {"before": before, "after": after, "loop": f"{ITERATIONS:,} iterations, best of {TRIES}"}
