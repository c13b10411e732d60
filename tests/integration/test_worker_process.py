"""The worker is a plain `faust -A app.worker worker` process: it starts, joins its consumer group, stops cleanly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.settings import Settings
from tests.e2e.system import delete_topics, isolated_env, start_worker


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
    group = Settings(app_id=env["CART_APP_ID"], agents="cart_commands").consumer_group  # a group of its own
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
