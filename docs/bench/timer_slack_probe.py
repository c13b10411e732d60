"""Cassandra's CPU per request by request rate and timer slack (docs/benchmarks.md, 2026-12-06): single-row reads of
the journal's lease heads, one at a time at a fixed rate, against the running local Cassandra, whose threads are
given each timer slack in turn (writing /proc/<tid>/timerslack_ns needs root); Cassandra's CPU read from /proc before
and after each point. It leaves Cassandra with the slack `cart services up` gives it
(Settings.cassandra_timer_slack_ns).

    .venv/bin/python docs/bench/timer_slack_probe.py [READS_PER_POINT] [PNG]

Why: Cassandra's request pools (SEPWorker) keep idle workers polling for work, parked 10 us to 1 ms at a time; with
the kernel's default slack of 50 us those wake-ups cost far more than the requests themselves at a few hundred
requests/s. One line of JSON per point; with PNG, a plot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.settings import get_settings
from app.stores.cassandra import connect_async, execute
from app.tools.bench.cpu import CLOCK_TICKS, read_stat
from app.tools.services import Cassandra, read_pid

SLACKS_NS = [50_000, 200_000, 1_000_000]
RATES = [20.0, 100.0, 500.0, 0.0]  # 0: back to back


def cpu_ticks(pid: int) -> int:
    stat = read_stat(pid)
    if stat is None:
        sys.exit(f"Cassandra (pid {pid}) is gone")
    return stat.own_ticks


def set_slack(pid: int, ns: int) -> None:
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            Path(f"/proc/{tid}/timerslack_ns").write_text(str(ns))


async def main(reads: int, png: str | None) -> None:
    settings = get_settings()
    pid = read_pid(Cassandra(settings).pid_file)
    if pid is None:
        sys.exit("no local Cassandra started by this checkout (`make migrate`)")
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    read = session.prepare(f"SELECT segment FROM {settings.cassandra_keyspace}.journal_lease_heads WHERE lease = ?")
    lease, points = uuid.uuid4(), []
    try:
        for slack in SLACKS_NS:
            set_slack(pid, slack)
            for rate in RATES:
                started, ticks = time.monotonic(), cpu_ticks(pid)
                for n in range(reads):
                    await execute(session, read, (lease,), 10)
                    if rate:
                        await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.monotonic()))
                seconds, used = time.monotonic() - started, (cpu_ticks(pid) - ticks) / CLOCK_TICKS
                point = {
                    "slack_us": slack // 1000,
                    "offered_per_s": rate or None,
                    "reads_per_s": round(reads / seconds),
                    "cassandra_us_per_read": round(used / reads * 1e6),
                    "cassandra_pct_of_core": round(100 * used / seconds),
                }
                print(json.dumps(point), flush=True)
                points.append(point)
    finally:
        set_slack(pid, settings.cassandra_timer_slack_ns or 50_000)
        cluster.shutdown()
    if png:
        plot(points, png)


def plot(points: list[dict[str, object]], png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for slack in SLACKS_NS:
        mine = [p for p in points if p["slack_us"] == slack // 1000]
        ax.plot(
            [p["reads_per_s"] for p in mine],
            [p["cassandra_us_per_read"] for p in mine],
            marker="o",
            label=f"timer slack {slack // 1000} us",
        )
    ax.set_xscale("log")
    ax.set_xlabel("single-row reads/s, one at a time")
    ax.set_ylabel("Cassandra CPU per read (us)")
    ax.set_title("Cassandra's CPU per request by rate and timer slack (2 cores)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, sys.argv[2] if len(sys.argv) > 2 else None))
