"""Post-mortem of a kept test system (run a slow test with CART_TEST_KEEP=1; it prints the settings it kept).

    python -m tests.tools.postmortem '<the JSON of the kept settings>'

Prints every difference between the read models and the journal and, for each member involved, that member's
messages on cart-events, the absorbed_events changelog and the row updates, with partitions, offsets and times:
enough to tell which stage lost a purchase.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any


async def messages(topic: str) -> list[tuple[int, int, int, Any]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from app.settings import get_settings

    consumer = AIOKafkaConsumer(bootstrap_servers=get_settings().kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[int, int, int, Any]] = []
    try:
        metadata = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions_for_topic(topic) or ())]
        if not partitions:
            return found
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for m in batch.get(tp, []):
                    found.append((m.partition, m.offset, m.timestamp, json.loads(m.value) if m.value else None))
    finally:
        await consumer.stop()
    return found


async def main() -> None:
    from app.query_side.rebuild import READ_MODELS, verify
    from app.runtime import Runtime
    from app.settings import get_settings

    settings = get_settings()
    runtime = Runtime(settings, migrate_first=False)
    differences = await verify(runtime, list(READ_MODELS))
    await runtime.aclose()
    for difference in differences:
        print("DIFFERENCE", difference)
    vendors = {d.row[0] for d in differences}
    events = await messages(settings.topic_events)
    members = {
        v["member_id"]
        for _, _, _, v in events
        if v["type"] == "ItemPurchased" and v["payload"]["item"]["vendor_id"] in vendors
    }
    absorbed = await messages(f"{settings.consumer_group}-absorbed_events-changelog")
    updates = {
        t: await messages(t) for t in (settings.topic_popular_items_updates, settings.topic_vendor_billing_updates)
    }
    for member in sorted(members):
        print("MEMBER", member)
        for p, o, t, v in events:
            if v["member_id"] == member:
                print("  cart-events", p, o, t, v["seq_nr"], v["type"])
        print("  absorbed", [(p, o, t, v) for p, o, t, v in absorbed])
        for topic, found in updates.items():
            for p, o, t, message in found:
                for v in message.get("updates", [message]):
                    if v["member_id"] == member:
                        position = (v["source_partition"], v["source_offset"], v.get("source_index"))
                        print("  ", topic, p, o, t, "seq", v["seq_nr"], "from", position)


if __name__ == "__main__":
    os.environ.update(json.loads(sys.argv[1]))
    asyncio.run(main())
