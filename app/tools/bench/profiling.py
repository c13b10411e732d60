"""Where the time goes in the worker and the API: py-spy samples each process while the bench saturates the
system, and the stacks are summed into the top functions by self time (the function itself was running) and
inclusive time (it was on the stack).

py-spy leaves out threads it sees idle; a sample whose innermost frame is a wait all the same (`select`,
`Condition.wait`, a queue's `get`) is dropped too, so the percentages are of the time the process was working.
A sample whose innermost Python frame is the entry to an event loop written in C (uvloop's, which uvicorn picks
when it is installed; the Cassandra driver's libev loop) is in C code that py-spy cannot see into without
`--native`: waiting or doing I/O, it cannot tell which. Those are counted apart (`in_c_event_loop_pct`) and left
out of the percentages too. The inclusive list leaves out the entry points and the event loop's own frames,
which are on nearly every stack and say nothing about where the time goes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# (function, file) of innermost frames that are a thread waiting, not working.
IDLE_FRAMES = {
    ("select", "selectors.py"),
    ("poll", "selectors.py"),
    ("wait", "threading.py"),
    ("_wait_for_tstate_lock", "threading.py"),
    ("get", "queue.py"),
    ("wait", "selectors.py"),
}
# (function, file) of innermost frames that are a C event loop running: waiting or doing I/O.
C_EVENT_LOOP_FRAMES = {("Runner.run", "runners.py"), ("LibevLoop._run_loop", "libevreactor.py")}
# Frames on (nearly) every stack: entry points, the event loop's dispatch. Not worth a line in "inclusive".
PLUMBING = re.compile(
    "|".join(
        (
            r"^process \d+:",  # the root py-spy adds per process with --subprocesses
            r"^<module> \(",
            r"\(<frozen runpy>\)",
            r"\((click|faust/cli|mode)/",
            r"\(uvicorn/(main|server|_compat|__main__)\.py\)",
            r"\(asyncio/(base_events|events|runners)\.py\)",
            r"\(threading\.py\)",
        )
    )
)
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")


def py_spy_binary() -> str | None:
    return shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")


def parse_collapsed(text: str) -> Counter[tuple[str, ...]]:
    """py-spy's raw output (one `frame;frame;...;frame count` line per distinct stack, outermost first)."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def frame_parts(frame: str) -> tuple[str, str]:
    """("Class.function", "file.py") of a frame written as `Class.function (path/file.py:line)`."""
    match = FRAME.match(frame)
    if not match:
        return frame, ""
    return match["function"], os.path.basename(match["file"])


def is_idle(frame: str) -> bool:
    function, file = frame_parts(frame)
    return (function.rsplit(".", 1)[-1], file) in IDLE_FRAMES


def in_c_event_loop(frame: str) -> bool:
    return frame_parts(frame) in C_EVENT_LOOP_FRAMES


def label(frame: str) -> str:
    """A frame without its line number: functions are summed over their lines."""
    match = FRAME.match(frame)
    return f"{match['function']} ({match['file']})" if match else frame


def top_functions(stacks: Mapping[tuple[str, ...], int], limit: int = 15) -> dict[str, Any]:
    sampled = {stack: n for stack, n in stacks.items() if stack and not is_idle(stack[-1])}
    in_c_loop = sum(n for stack, n in sampled.items() if in_c_event_loop(stack[-1]))
    working = {stack: n for stack, n in sampled.items() if not in_c_event_loop(stack[-1])}
    total = sum(working.values())
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for stack, n in working.items():
        own[label(stack[-1])] += n
        for function in {label(frame) for frame in stack}:
            if not PLUMBING.search(function):
                inclusive[function] += n

    def ranked(counts: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": f, "pct": round(100 * n / total, 1)} for f, n in counts.most_common(limit)]

    return {
        "samples": sum(stacks.values()),
        "working_samples": total,
        "in_c_event_loop_pct": round(100 * in_c_loop / sum(sampled.values()), 1) if sampled else None,
        "self": ranked(own) if total else [],
        "inclusive": ranked(inclusive) if total else [],
    }


async def record(binary: str, pid: int, seconds: float, output: Path) -> str | None:
    """Sample a process for `seconds` (without pausing it, to disturb it less); None, or why it failed."""
    process = await asyncio.create_subprocess_exec(
        binary,
        "record",
        "--pid", str(pid),
        "--duration", str(max(1, round(seconds))),
        "--rate", "100",
        "--format", "raw",
        "--nolineno",
        "--nonblocking",
        "--subprocesses",
        "--output", str(output),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode == 0:
        return None
    said = out.decode(errors="replace").strip().splitlines()
    return said[-1] if said else f"py-spy exited with {process.returncode}"


async def profile(targets: Iterable[tuple[str, int]], seconds: float, folder: Path) -> dict[str, Any]:
    """Record every target at once (name, pid) and summarise each; a target that cannot be sampled says why."""
    binary = py_spy_binary()
    if binary is None:
        return {"error": "py-spy is not installed (pip install -e '.[bench]')"}
    os.makedirs(folder, exist_ok=True)
    named = list(targets)
    outputs = {name: folder / f"profile-{name}.txt" for name, _ in named}
    failures = await asyncio.gather(*(record(binary, pid, seconds, outputs[name]) for name, pid in named))
    found: dict[str, Any] = {}
    for (name, pid), failure in zip(named, failures, strict=True):
        if failure is not None:
            found[name] = {"pid": pid, "error": failure}
        else:
            found[name] = {"pid": pid, **top_functions(parse_collapsed(outputs[name].read_text()))}
    return found
