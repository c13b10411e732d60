"""A query-side table's writes reach its changelog (which the next owner of a partition restores from) whole and in
the order they were made, and its RocksDB store knows how far the changelog is in it (`JsonTable` queues the writes
and sends them itself, tables/hydrators.py): a real worker of `purchases`, a real backlog, the real topic."""

from __future__ import annotations

import asyncio
import io
import random
import time

import orjson
import rocksdict

from app.settings import Settings
from app.streams.lag import consumer_lag
from app.tools.bench.projections import plan_backlog, produce_backlog
from app.tools.progress import Progress
from tests.e2e.system import RUN_DIR, delete_topics, isolated_env, read_records, start_worker, wait_worker_ready

OFFSET_KEY = b"__faust\0offset__"  # where Faust's RocksDB store keeps how far the changelog is in it


def test_purchases_table_reaches_its_changelog_whole_in_order_and_its_store_knows_how_far() -> None:
    env = isolated_env("changelog", 19095)
    own = Settings(app_id=env["CART_APP_ID"], agents="purchases", topic_events=env["CART_TOPIC_EVENTS"])
    # Bookkeeping written with every batch: many writes of the same keys, whose order the changelog must keep.
    worker = start_worker(**env, CART_AGENTS="purchases", CART_PROJECTION_CHECKPOINT_S="0")
    try:
        wait_worker_ready(worker)
        members = plan_backlog(1200, random.Random(11), max_members=60)
        asyncio.run(produce_backlog(own, members, Progress(io.StringIO())))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lags = [row for row in asyncio.run(consumer_lag(own)) if row.topic == own.topic_events]
            if lags and all(row.lag == 0 for row in lags):
                break
            assert worker.alive(), worker.tail()
            time.sleep(0.5)
        assert lags and all(row.lag == 0 for row in lags), lags
        assert worker.stop(timeout=60) == 0, worker.tail()  # a clean stop: what it holds is written and flushed

        changelog = {
            p: [(m.offset, m.key, m.value) for m in records]
            for p, records in read_records(f"{own.consumer_group}-absorbed_events-changelog").items()
        }
        events = read_records(own.topic_events)
    finally:
        if worker.alive():
            worker.kill()
        asyncio.run(delete_topics(env))

    last_seq_nr = {str(m.state.member_id): m.sessions[-1][-1].seq_nr for m in members}
    restored: dict[str, int] = {}
    for partition, messages in changelog.items():
        for _, key, value in messages:
            name, number = orjson.loads(key), orjson.loads(value)
            # In the order written: a member's seq_nr and the partition's offset only ever go up.
            assert number >= restored.get(name, -1), (partition, name, number, restored.get(name))
            restored[name] = number
    assert {k: v for k, v in restored.items() if not k.startswith("@")} == last_seq_nr
    assert {k: v for k, v in restored.items() if k.startswith("@")} == {
        f"@offset/{p}": records[-1].offset for p, records in events.items() if records
    }

    # The store's record of how far the changelog is in it: its last message, in every partition that has any.
    stores = {p.name: p for p in (RUN_DIR / worker.name).rglob("absorbed_events-*.db")}
    for partition, messages in changelog.items():
        if not messages:
            continue
        db = rocksdict.Rdict(str(stores[f"absorbed_events-{partition}.db"]), rocksdict.Options(raw_mode=True))
        try:
            assert int(db[OFFSET_KEY]) == messages[-1][0], partition
        finally:
            db.close()
