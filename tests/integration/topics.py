"""Topics of their own for integration tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.settings import Settings
from app.streams.kafka_clients import kafka_options


@asynccontextmanager
async def throwaway_topic(settings: Settings, prefix: str, partitions: int) -> AsyncIterator[str]:
    """A topic of its own for one test, deleted after it."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()
