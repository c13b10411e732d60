"""The Faust app and its topics, declared once. Creating them connects to nothing; `faust worker` starts them.

`faust -A app.worker worker` loads `app.worker`, which imports this and the agents the worker should run.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust

from app.runtime import process_runtime, settle_garbage_collection
from app.settings import Settings, get_settings
from app.stores.transient import TRANSIENT
from app.streams.changelog_flush import handed_over
from app.streams.driven import ConsumingAgent
from app.streams.kafka_clients import faust_credentials
from app.streams.partitioning import KeyPartitioner
from schemas.records import CommandReply

log = logging.getLogger(__name__)


async def process_reliably(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Process one message, or never let it count as processed.

    Faust acknowledges a message whose agent raised (its stream acks in a `finally`), and would commit past it: a
    lost message. So a store that is down is retried here until it answers (the partition waits, visible as lag),
    and anything else ends the process at once, without a commit, so the message is redelivered after a restart.
    """
    delay = 0.2
    while True:
        try:
            await step()
            return
        except TRANSIENT as error:
            log.warning("%s: %s; retrying in %.1fs", what, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        except Exception:
            log.exception("%s failed; exiting without acknowledging the message", what)
            logging.shutdown()
            os._exit(1)


class CartApp(faust.App):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Agents with a consumer of their own (app/streams/driven.py, app/streams/following.py).
        self.driven: list[ConsumingAgent[Any]] = []
        # The query side's tables, which queue their changelog writes themselves (tables/hydrators.py, `JsonTable`).
        self.json_tables: list[Any] = []

    async def on_stop(self) -> None:
        """Agents that drive their own consumer stop first: they finish what they hold (sending with the producer,
        which Faust stops after this) and leave their group, so their partitions move at once."""
        for agent in self.driven:
            try:
                await agent.stop()
            except Exception:  # the journal has every appended batch: the next owner's claim finishes it
                log.exception("stopping agent %s", agent.name)
        await super().on_stop()

    async def on_started(self) -> None:
        """Once the worker is ready (its tables restored), what it built to get there is out of the collector's way."""
        await super().on_started()
        log.info("worker ready: %d objects left out of garbage collection", settle_garbage_collection())

    async def on_first_start(self) -> None:
        """Before the worker joins its consumer group (children, the consumer among them, start after this): the
        stores, so that a worker the group counts as ready answers its first command without connecting first."""
        Path(self.conf.datadir).parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
        await super().on_first_start()
        await process_runtime().warm_up(timeout_s=30)


def faust_app_id(settings: Settings) -> str:
    """The Faust app's id (its consumer group): `consumer_group`, but one of its own per process in a worker that
    runs the command agent alone. Such an app consumes nothing (the command agent drives its own consumer), yet
    Faust joins its group all the same and starts the app's tasks, the command agent among them, only once the
    group has formed: a shared name made a restarted worker wait out the dead one's session first, before its
    command agent could even join its own group (twice the session timeout with no command answered, seen in the
    SIGKILL drill). A group of one with no offsets forms at once, and Kafka drops it when it is empty."""
    if settings.consumer_group != f"{settings.command_group}-faust":
        return settings.consumer_group
    return f"{settings.consumer_group}-{uuid.uuid4().hex[:8]}"


def create_app(settings: Settings) -> CartApp:
    app = CartApp(
        faust_app_id(settings),
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(settings),
        store="rocksdb://",
        # The table stores cache the group's changelogs, so they are the group's: a worker given another set of
        # agents (another group, other changelogs) restores into a folder of its own instead of finding offsets
        # of the old changelogs and crashing (Faust's ConsistencyError).
        datadir=str(settings.worker_data_dir / settings.consumer_group),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        # At least once, made exactly once in effect by the journal's conditional append and the projections'
        # positions (docs/architecture.md says why not Kafka transactions).
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A few milliseconds of linger put a batch's messages (events, answers, updates, changelogs) into a few
        # produce requests instead of one each: the Kafka client's per-request work was most of a worker's CPU.
        producer_linger=settings.worker_linger_s,
        producer_max_batch_size=settings.producer_batch_bytes,
        producer_partitioner=KeyPartitioner(),
        web_enabled=False,
        web_port=settings.worker_web_port,
        # On a clean stop, finish the messages in flight before committing (never commit past a half-done one).
        stream_wait_empty=True,
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 5,
        broker_rebalance_timeout=settings.session_timeout_s * 3,
        autodiscover=False,
    )
    return app


settings = get_settings()
app = create_app(settings)

# The topics the query side reads and writes carry bytes through Faust (`raw`): the agents decode and encode them
# with orjson (schemas/records.py, app/query_side/projections.py). Faust's json codec and Record building were an
# eighth of the query worker's samples in a catch-up, its topics' send path another (docs/benchmarks.md,
# 2026-12-03, afternoon, "bytes through Faust"). The bytes are the same JSON as before (a cart event keeps Faust's
# type tag), so either side can be upgraded first.
cart_events_topic = app.topic(
    settings.topic_events, key_type=str, value_serializer="raw", partitions=settings.partitions
)
# Nobody writes to it: Faust assigns its partitions to the workers that run query-side agents, which read the
# partitions of the same numbers of their inputs (all co-partitioned with cart-events) with consumers of their own
# (app/streams/following.py), and keep their tables' partitions of the same numbers.
cart_events_owners_topic = app.topic(
    settings.topic_events_owners, key_type=str, value_serializer="raw", partitions=settings.partitions
)
popular_items_updates_topic = app.topic(
    settings.topic_popular_items_updates, key_type=str, value_serializer="raw", partitions=settings.partitions
)
vendor_billing_updates_topic = app.topic(
    settings.topic_vendor_billing_updates, key_type=str, value_serializer="raw", partitions=settings.partitions
)
item_purchased_topic = app.topic(
    settings.topic_item_purchased, key_type=str, value_serializer="raw", partitions=settings.partitions
)
cart_replies_topic = app.topic(
    settings.topic_replies, key_type=str, value_type=CommandReply, partitions=settings.reply_partitions
)


async def flush_changelogs() -> None:
    """Wait until every message produced so far (table changelogs included) is acknowledged by Kafka.

    Called before an agent finishes with a message, so that a table's state is durable before the message's offset
    can be committed: faust's own pre-commit flush gives up on its buffer after 0.1 s without progress.
    """
    producer = app.producer
    await send_table_writes()
    # Not Faust's buffer.flush(): it waits for an empty queue (one message can still be on its way to the Kafka
    # client, app/streams/changelog_flush.py), and wraps each wait in asyncio.wait_for (a task and a timer per
    # message: 2% of the query worker's samples in a catch-up, docs/benchmarks.md, 2026-12-03, evening).
    await handed_over(producer.buffer)
    await producer.flush()
    for table in app.json_tables:
        table.persist_offsets()


def kafka_producer() -> Any:
    """The worker's Kafka producer, the aiokafka one inside Faust's (started with the worker): messages handed to
    it in batches (app/streams/outbox.py) share its connection, its idempotence and `flush_changelogs`' flush."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined]  # Faust's aiokafka transport


async def send_table_writes() -> None:
    """Hand the query side's table writes made so far to the producer (in order; not waiting for Kafka)."""
    for table in app.json_tables:
        await table.send_writes()
