"""The worker is a plain `faust -A app.worker worker` process: it starts, joins its consumer group, stops cleanly."""

from __future__ import annotations

import asyncio
import io
import random
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.settings import Settings
from app.tools.bench.projections import plan_backlog, produce_backlog
from app.tools.progress import Progress
from tests.e2e.system import Process, delete_topics, isolated_env, start_worker, wait_worker_ready


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

        assert worker.stop(timeout=60) == 0, worker.tail()  # SIGTERM: a clean stop
        assert asyncio.run(group_members(settings, group))[1] == 0
    finally:
        if worker.alive():
            worker.kill()
        asyncio.run(delete_topics(env))


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


def test_a_running_query_worker_switches_its_consumers_fetcher_to_eager_on_a_backlog_and_back(
    settings: Settings,
) -> None:
    # Pacing writes private attributes of aiokafka's fetcher in a running worker (app/streams/fetch_pacing.py): this
    # is the test that it still reaches them, not only that a consumer is built with them.
    env = isolated_env("fetch-pacing", 19098)
    worker = start_worker(
        **env,
        CART_AGENTS="purchases",
        CART_PROJECTION_BATCH_MAX="100",  # so a backlog of 2,000 events comes in full batches
        CART_PROJECTION_FETCH_MIN_BYTES="200000",
        CART_PROJECTION_FETCH_WAIT_S="0.04",
    )
    try:
        wait_worker_ready(worker)
        backlog = plan_backlog(2000, random.Random(10))
        own = Settings(topic_events=env["CART_TOPIC_EVENTS"])
        asyncio.run(produce_backlog(own, backlog, Progress(io.StringIO())))
        wait_for_lines(
            worker,
            [
                "fetch pacing reached the consumer's fetcher: fetches held for 200000 bytes or 40 ms",
                "fetching eagerly (min 1 bytes): purchases behind",
                "holding fetches again (min 200000 bytes): every agent has caught up",
            ],
            never="fetch pacing is off",
        )
    finally:
        worker.kill()
        asyncio.run(delete_topics(env))
