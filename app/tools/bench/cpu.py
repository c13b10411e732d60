"""CPU used over a phase: the whole machine (/proc/stat) and each process of the system (/proc/<pid>/stat).

A process's CPU is counted with its whole process tree (PostgreSQL's backends are children of the postmaster):
utime + stime + cutime + cstime of every process in the tree. A child that exits during the phase moves its time
into its parent's cutime/cstime when it is reaped, so the sum over the tree stays continuous across the exit.

Processes are found by command line, and only those of the system under test: the API listening on the bench's
port, the workers whose CART_APP_ID is the bench's, the PostgreSQL postmaster on the configured port (a shared
machine may run test systems and other PostgreSQL clusters beside it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.settings import Settings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")
DEFAULT_APP_ID = "shopping-cart"


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    own_ticks: int  # utime + stime
    children_ticks: int  # cutime + cstime: reaped children


def parse_proc_stat(text: str) -> ProcStat:
    """A /proc/<pid>/stat line; the command name in parentheses may contain spaces, so split after the last ')'."""
    pid = int(text.split(" ", 1)[0])
    rest = text.rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return ProcStat(pid, int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14]))


def parse_machine_ticks(line: str) -> tuple[int, int]:
    """(busy, total) ticks of the `cpu` line of /proc/stat, over all cores. Busy is user, nice, system, irq and
    softirq; guest time is already inside user; steal (the hypervisor running someone else) is not our work."""
    values = [int(v) for v in line.split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = values[:7]
    steal = values[7] if len(values) > 7 else 0
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


def machine_ticks() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        return parse_machine_ticks(stat.readline())


def read_stat(pid: int) -> ProcStat | None:
    try:
        return parse_proc_stat((PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None  # gone, or not ours to read


def all_stats() -> dict[int, ProcStat]:
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats[stat.pid] = stat
    return stats


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def environment(pid: int) -> dict[str, str]:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (part.decode(errors="replace").partition("=") for part in raw.split(b"\0") if part)
    return {key: value for key, _, value in pairs}


def option(args: Sequence[str], name: str) -> str | None:
    """The value after `name` in a command line (`--port 9001`, `-p 5432`), or None."""
    for i, arg in enumerate(args[:-1]):
        if arg == name:
            return args[i + 1]
    return None


def is_worker(args: Sequence[str]) -> bool:
    return any("faust" in a for a in args[:2]) and option(args, "-A") == "app.worker" and "worker" in args


def is_api(args: Sequence[str]) -> bool:
    return any("uvicorn" in a for a in args[:3]) and any(a.startswith("app.api.main") for a in args)


def is_postmaster(args: Sequence[str]) -> bool:
    return bool(args) and args[0].endswith("postgres") and "-D" in args


@dataclass(frozen=True)
class Watched:
    """A process of the system (the root of the tree whose CPU is counted) and what it is."""

    name: str
    pid: int


def classify(pid: int, args: Sequence[str], settings: Settings, api_port: int) -> str | None:
    """What this process is to the system under test, or None when it is not part of it."""
    if is_api(args):
        return "api" if option(args, "--port") == str(api_port) else None
    if is_worker(args):
        env = environment(pid)
        if env.get("CART_APP_ID", DEFAULT_APP_ID) != settings.app_id:
            return None
        agents = env.get("CART_AGENTS", "all")
        return {"cart_commands": "command-worker"}.get(agents, "worker" if agents == "all" else "query-worker")
    if "kafka.Kafka" in args:
        return "kafka"
    if any(a.endswith("CassandraDaemon") for a in args):
        return "cassandra"
    if is_postmaster(args):
        return "postgres" if (option(args, "-p") or "5432") == str(settings.postgres_port) else None
    return None


def find_system(settings: Settings, api_port: int, extra: Mapping[int, str] | None = None) -> list[Watched]:
    """The running processes of the system: api, worker(s), kafka, cassandra, postgres; several workers are named
    worker-1, worker-2 (in pid order). `extra` names processes the bench started itself (pid -> name)."""
    extra = extra or {}
    found: list[Watched] = []
    for entry in sorted(PROC.iterdir(), key=lambda e: int(e.name) if e.name.isdigit() else -1):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        kind = extra.get(pid) or classify(pid, cmdline(pid), settings, api_port)
        if kind is not None:
            found.append(Watched(kind, pid))
    for kind in ("worker", "command-worker", "query-worker"):
        workers = [w for w in found if w.name == kind]
        if len(workers) > 1:
            numbered = {w.pid: f"{kind}-{n}" for n, w in enumerate(workers, start=1)}
            found = [Watched(numbered.get(w.pid, w.name), w.pid) for w in found]
    return found


def tree_ticks(root: int, stats: dict[int, ProcStat]) -> int | None:
    """CPU ticks of a process and all its descendants (None when the root is gone)."""
    if root not in stats:
        return None
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += stats[pid].own_ticks + stats[pid].children_ticks
        todo.extend(children.get(pid, []))
    return total


def own_ticks() -> int:
    """The bench process itself, all its threads, without its children (py-spy, a worker it started)."""
    stat = read_stat(os.getpid())
    return stat.own_ticks if stat else 0


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    busy: int
    total: int
    processes: dict[str, int]
    bench: int


def snapshot(watched: Sequence[Watched]) -> CpuSnapshot:
    stats = all_stats()
    busy, total = machine_ticks()
    processes = {w.name: ticks for w in watched if (ticks := tree_ticks(w.pid, stats)) is not None}
    return CpuSnapshot(time.monotonic(), busy, total, processes, own_ticks())


def ticks_ms(ticks: float) -> float:
    return ticks * 1000 / CLOCK_TICKS


@dataclass
class CpuUsage:
    """What was used between two snapshots."""

    seconds: float
    busy_pct: float  # of the whole machine (all cores)
    machine_ms: float
    processes_ms: dict[str, float] = field(default_factory=dict)
    bench_ms: float = 0.0

    def to_json(self, operations: int | None = None, per: str = "command") -> dict[str, Any]:
        """The figures, with ms per operation when `operations` is given (commands answered, events applied)."""
        wall_ms = self.seconds * 1000 or 1.0

        def share(ms: float) -> dict[str, Any]:
            figures: dict[str, Any] = {"cpu_ms": round(ms, 1), "pct_of_a_core": round(100 * ms / wall_ms, 1)}
            if operations:
                figures[f"ms_per_{per}"] = round(ms / operations, 3)
            return figures

        attributed = sum(self.processes_ms.values()) + self.bench_ms
        per_operation = {f"cpu_ms_per_{per}": round(self.machine_ms / operations, 3)} if operations else {}
        return {
            "seconds": round(self.seconds, 2),
            "cores": os.cpu_count(),
            "machine_busy_pct": round(self.busy_pct, 1),
            **per_operation,
            "machine": share(self.machine_ms),
            "processes": {name: share(ms) for name, ms in sorted(self.processes_ms.items())},
            "bench_generator": share(self.bench_ms),
            "rest_of_machine": share(max(0.0, self.machine_ms - attributed)),
        }


def usage(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    """The difference; a process seen only in one of the snapshots (started or ended in between) is left out."""
    busy = after.busy - before.busy
    total = after.total - before.total
    processes = {
        name: ticks_ms(after.processes[name] - ticks)
        for name, ticks in before.processes.items()
        if name in after.processes
    }
    return CpuUsage(
        seconds=after.at - before.at,
        busy_pct=100 * busy / total if total else 0.0,
        machine_ms=ticks_ms(busy),
        processes_ms=processes,
        bench_ms=ticks_ms(after.bench - before.bench),
    )


class CpuMeter:
    """Snapshots around a phase: `start()`, then `stop()` for the usage in between."""

    def __init__(self, watched: Sequence[Watched]) -> None:
        self.watched = list(watched)
        self._before: CpuSnapshot | None = None

    def start(self) -> None:
        self._before = snapshot(self.watched)

    def stop(self) -> CpuUsage:
        assert self._before is not None, "start() first"
        return usage(self._before, snapshot(self.watched))
