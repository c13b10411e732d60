"""What an operator asks of a running system: how far each consumer has got (lag per topic and partition)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.settings import Settings


@dataclass(frozen=True)
class Lag:
    topic: str
    agents: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


def consumed_topics(settings: Settings) -> dict[str, str]:
    """Topic -> the agents that read it (one consumer group, `app_id`, for all of them)."""
    return {
        settings.topic_commands: "cart_commands",
        settings.topic_events: "purchases, item_purchased",
        settings.topic_popular_items_updates: "popular_items",
        settings.topic_vendor_billing_updates: "vendor_billing, vendor_billing_sql",
    }


async def consumer_lag(settings: Settings) -> list[Lag]:
    """Committed offset and end offset of every partition of the topics the workers consume."""
    topics = consumed_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10000)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        await admin.start()
        await consumer.start()
        committed = await admin.list_consumer_group_offsets(settings.consumer_group)
        metadata = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in sorted(metadata.partitions_for_topic(topic) or ())
        ]
        ends = await consumer.end_offsets(partitions)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await admin.close()
    return [
        Lag(tp.topic, topics[tp.topic], tp.partition, committed[tp].offset if tp in committed else None, ends[tp])
        for tp in partitions
    ]


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    host: str
    partitions: dict[str, list[int]]  # the consumed topics' partitions this worker owns


async def group_members(settings: Settings) -> tuple[str, list[GroupMember]]:
    """The worker group's state and, per worker, the partitions it owns (its carts and its read-model rows)."""
    from aiokafka.protocol.group import MemberAssignment

    topics = consumed_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10000)
    try:
        await admin.start()
        described = await admin.describe_consumer_groups([settings.consumer_group])
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    group = described[0].groups[0]
    members = []
    for member_id, _client_id, host, _metadata, assignment in group[5]:
        owned = MemberAssignment.decode(assignment).assignment if assignment else []
        members.append(GroupMember(member_id, host, {t: sorted(ps) for t, ps in owned if t in topics}))
    return group[2] or "unknown", members


async def drained(settings: Settings, topics: list[str]) -> bool:
    """True when every partition of these topics has been consumed to its end."""
    return all(row.lag == 0 for row in await consumer_lag(settings) if row.topic in topics)


async def read_model_freshness(settings: Settings) -> dict[str, str]:
    """Per read model, the time of the newest event it has applied (or why it is unknown)."""
    from app.runtime import Runtime

    runtime = Runtime(settings, migrate_first=False)
    found: dict[str, str] = {}
    try:
        newest = await (await runtime.read_models()).newest_event_at()
        newest["vendor_billing_sql"] = await (await runtime.vendor_billing_sql()).newest_event_at()
        found = {name: at.isoformat() if at else "no event yet" for name, at in newest.items()}
    except Exception as error:  # an operator's view: say what is unknown and why
        found.setdefault("error", str(error))
    finally:
        await runtime.aclose()
    return found
