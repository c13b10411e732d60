"""CPU per command by kind of command, per process (docs/benchmarks.md, 2026-12-06, evening). Needs `make run` up.

    .venv/bin/python docs/bench/cost_by_kind.py [members] [rounds]

New members, 32 closed-loop clients; every member goes through the same step at once: add x3, then adjust and remove,
then checkout (the bench's session), `rounds` times. For each step: commands/s and ms of CPU per command of each
process (from /proc/<pid>/stat; the load generator not counted).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from pathlib import Path

from app.tools.bench.workload import CartClient, Member, Tally, http_session, new_members

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def processes() -> dict[str, str]:
    """pid -> api | command-worker | query-worker | kafka | cassandra | postgres"""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if "CassandraDaemon" in command:
            found[pid] = "cassandra"
        elif "kafka.Kafka" in command:
            found[pid] = "kafka"
        elif "app.api.main" in command:
            found[pid] = "api"
        elif "faust" in command and " worker" in command:
            found[pid] = "command-worker" if b"CART_AGENTS=cart_commands\0" in environ else "query-worker"
        elif command.startswith("postgres") or "/bin/postgres" in command:
            found[pid] = "postgres"
    return found


def cpu_ms(pids: dict[str, str]) -> dict[str, float]:
    total: dict[str, float] = {}
    for pid, name in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total[name] = total.get(name, 0.0) + (int(fields[11]) + int(fields[12])) * TICK_MS
    return total


async def shopper(
    client: CartClient, waiting: asyncio.Queue[Member], steps: int, tally: Tally, answered: list[int]
) -> None:
    while not waiting.empty():
        member = waiting.get_nowait()
        for _ in range(steps):
            now = time.monotonic()
            await client.send(member, now, now + 30, tally)
            answered[0] += 1


async def main(count: int, rounds: int) -> None:
    pids = processes()
    members = new_members(count, random.Random(2), uuid.uuid4().hex[:8])
    async with http_session("http://127.0.0.1:9001", 64) as http:
        client = CartClient(http, 10.0)
        for kind, steps in (("add x3", 3), ("adjust, remove", 2), ("checkout", 1)) * rounds:
            waiting: asyncio.Queue[Member] = asyncio.Queue()
            for member in members:
                waiting.put_nowait(member)
            tally, answered = Tally(), [0]
            before, started = cpu_ms(pids), time.monotonic()
            await asyncio.gather(*(shopper(client, waiting, steps, tally, answered) for _ in range(32)))
            done = answered[0]
            seconds, after = time.monotonic() - started, cpu_ms(pids)
            each = {name: (after[name] - before.get(name, 0.0)) / done for name in sorted(after)}
            print(
                f"{kind:15s} {done / seconds:6.0f}/s  machine {sum(each.values()):.2f} ms/command: "
                + " ".join(f"{name} {ms:.2f}" for name, ms in each.items())
            )
            await asyncio.sleep(3)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000, int(sys.argv[2]) if len(sys.argv) > 2 else 1))
