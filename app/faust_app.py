"""The Faust app and its topics, declared once. Creating them connects to nothing; `faust worker` starts them.

`faust -A app.worker worker` loads `app.worker`, which imports this and the agents the worker should run.
"""

from __future__ import annotations

import faust

from app.settings import Settings, get_settings
from schemas.records import CartEventRecord, CommandEnvelope, CommandReply


def create_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        store="rocksdb://",
        datadir=str(settings.worker_data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        # At least once, made exactly once in effect by the journal's conditional append and the projections'
        # positions (docs/architecture.md says why not Kafka transactions).
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=False,
        web_port=settings.worker_web_port,
        stream_wait_empty=False,
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 5,
        broker_rebalance_timeout=settings.session_timeout_s * 3,
        autodiscover=False,
    )


settings = get_settings()
app = create_app(settings)

cart_commands_topic = app.topic(
    settings.topic_commands, key_type=str, value_type=CommandEnvelope, partitions=settings.partitions
)
cart_events_topic = app.topic(
    settings.topic_events, key_type=str, value_type=CartEventRecord, partitions=settings.partitions
)
cart_replies_topic = app.topic(
    settings.topic_replies, key_type=str, value_type=CommandReply, partitions=settings.reply_partitions
)
