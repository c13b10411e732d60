"""The worker is a plain `faust -A app.worker worker` process: it starts, joins its consumer group, stops cleanly."""

from __future__ import annotations

import asyncio
import io
import random
import re
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.settings import Settings
from app.streams.lag import consumer_lag
from app.tools.bench.projections import plan_backlog, produce_backlog
from app.tools.progress import Progress
from tests.e2e.system import (
    Process,
    delete_topics,
    existing_topics,
    isolated_env,
    start_worker,
    wait_worker_ready,
)


async def group_members(settings: Settings, group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    state, members = described[0].groups[0][2], described[0].groups[0][5]
    return state, len(members)


def test_the_worker_starts_under_faust_joins_its_group_and_stops_cleanly(settings: Settings, tmp_path: Path) -> None:
    env = isolated_env("worker-smoke", 19099)
    state_dir = tmp_path / "a" / "state" / "folder" / "that" / "does" / "not" / "exist" / "yet"
    worker = start_worker(**env, CART_AGENTS="cart_commands", CART_STATE_DIR=str(state_dir))
    # The command agent's own consumer (app/streams/driven.py) joins the command workers' group.
    group = Settings(app_id=env["CART_APP_ID"], agents="cart_commands").command_group
    try:
        deadline = time.monotonic() + 120
        state, members = "", 0
        while time.monotonic() < deadline and (state, members) != ("Stable", 1):
            assert worker.alive(), worker.tail()
            state, members = asyncio.run(group_members(settings, group))
            time.sleep(0.5)
        assert (state, members) == ("Stable", 1), worker.tail()
        assert (state_dir / "worker").is_dir()  # Faust itself creates only the last level
        # Once ready, what it built to start is out of the collector's way (app/runtime.py).
        while not (
            ready := re.search(r"worker ready: (\d+) objects left out of garbage collection", worker.log.read_text())
        ):
            assert worker.alive() and time.monotonic() < deadline, worker.tail()
            time.sleep(0.3)
        assert int(ready.group(1)) > 10_000, ready.group(0)

        assert worker.stop(timeout=60) == 0, worker.tail()  # SIGTERM: a clean stop
        assert asyncio.run(group_members(settings, group))[1] == 0
    finally:
        if worker.alive():
            worker.kill()
        asyncio.run(delete_topics(env))
    suffix = env["CART_TOPIC_EVENTS"].removeprefix("events-")  # worker-smoke-<pid>-<time>, in every topic's name
    assert [t for t in asyncio.run(existing_topics()) if suffix in t] == []  # none left, the owner topic included


def wait_for_lines(worker: Process, lines: list[str], never: str, timeout: float = 120) -> None:
    """Until the worker's log has each of `lines`, in this order; failing at once if it says `never`."""
    deadline = time.monotonic() + timeout
    while True:
        log, at = worker.log.read_text(errors="replace"), 0
        assert never not in log, worker.tail()
        for line in lines:
            found = log.find(line, at)
            if found < 0:
                break
            at = found + len(line)
        else:
            return
        assert worker.alive(), worker.tail()
        assert time.monotonic() < deadline, f"no {line!r} in the log:\n{worker.tail()}"
        time.sleep(0.3)


def reading(worker: Process) -> list[int] | None:
    """The partitions of its input the worker's `purchases` last said it reads (app/streams/following.py)."""
    lines = [line for line in worker.log.read_text(errors="replace").splitlines() if "purchases: reading" in line]
    if not lines:
        return None
    return [int(p) for p in lines[-1].split("partitions [", 1)[1].split("]", 1)[0].split(",") if p.strip()]


def test_two_workers_of_purchases_read_the_partitions_faust_gives_each_and_the_survivor_all(
    settings: Settings,
) -> None:
    """`purchases` reads cart-events with a consumer of its own at the partitions Faust assigns the worker (its
    table's): two workers read disjoint halves, the lag they commit goes to 0 over a backlog, and when one stops the
    other reads every partition."""
    env = isolated_env("following", 19097)
    own = Settings(app_id=env["CART_APP_ID"], agents="purchases", topic_events=env["CART_TOPIC_EVENTS"])
    first = start_worker(**env, CART_AGENTS="purchases")
    second = start_worker(**env, CART_AGENTS="purchases")
    try:
        wait_worker_ready(first)
        wait_worker_ready(second)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert first.alive() and second.alive(), first.tail() + second.tail()
            a, b = reading(first), reading(second)
            if a and b and sorted(a + b) == [0, 1, 2, 3]:
                break
            time.sleep(0.5)
        assert a and b and sorted(a + b) == [0, 1, 2, 3], (a, b)  # disjoint, and every partition read

        asyncio.run(produce_backlog(own, plan_backlog(400, random.Random(7)), Progress(io.StringIO())))
        while time.monotonic() < deadline + 60:
            lags = [row for row in asyncio.run(consumer_lag(own)) if row.topic == own.topic_events]
            if lags and all(row.lag == 0 for row in lags):
                break
            time.sleep(0.5)
        assert lags and all(row.lag == 0 for row in lags), lags

        assert second.stop(timeout=60) == 0, second.tail()
        while time.monotonic() < deadline + 120 and reading(first) != [0, 1, 2, 3]:
            time.sleep(0.5)
        assert reading(first) == [0, 1, 2, 3], first.tail()
    finally:
        for worker in (first, second):
            worker.kill()
        asyncio.run(delete_topics(env))
