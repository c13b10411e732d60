"""An outbox hands its messages over a record batch per topic partition, each partition's in the order added, and
keeps what the producer refused, ahead of anything added later (app/streams/outbox.py)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaTimeoutError

from app.streams.outbox import Outbox
from tests.unit.kafka_stand_in import Producer


async def test_a_batch_per_topic_partition_each_in_the_order_added() -> None:
    outbox, producer = Outbox(), Producer()
    for n, (topic, partition) in enumerate([("t", 1), ("t", 0), ("u", 1), ("t", 1), ("t", 0), ("t", 1)]):
        outbox.add(topic, partition, f"k{n}".encode(), f"v{n}".encode())

    deliveries = await outbox.send(producer)

    assert [(d.topic, d.partition, d.count) for d in deliveries] == [("t", 1, 3), ("t", 0, 2), ("u", 1, 1)]
    assert [(s.topic, s.partition, [v for _, v in s.messages]) for s in producer.sent] == [
        ("t", 1, [b"v0", b"v3", b"v5"]),
        ("t", 0, [b"v1", b"v4"]),
        ("u", 1, [b"v2"]),
    ]
    assert not outbox and await outbox.send(producer) == []  # nothing twice


async def test_a_partition_that_outgrows_a_batch_goes_in_several_in_order_and_its_offsets_follow() -> None:
    outbox, producer = Outbox(), Producer(capacity=2)
    for n in range(5):
        outbox.add("t", 3, None, b"%d" % n)

    deliveries = await outbox.send(producer)

    assert [[v for _, v in s.messages] for s in producer.sent] == [[b"0", b"1"], [b"2", b"3"], [b"4"]]
    for first, sent in zip((40, 42, 44), producer.sent, strict=True):
        sent.acknowledge(first)
    assert [list(d.offsets()) for d in deliveries] == [[40, 41], [42, 43], [44]]


async def test_what_the_producer_refused_goes_first_next_time_with_everything_after_it() -> None:
    outbox, refusing = Outbox(), Producer(capacity=2, refuse_after=1)
    for n in range(3):
        outbox.add("t", 0, None, b"a%d" % n)  # two batches: the first taken, the second refused
    outbox.add("t", 1, None, b"b0")  # never reached

    with pytest.raises(KafkaTimeoutError):
        await outbox.send(refusing)
    outbox.add("t", 1, None, b"b1")  # added after the refusal
    outbox.add("t", 0, None, b"a3")
    producer = Producer()
    await outbox.send(producer)

    assert [v for *_, v in refusing.messages()] == [b"a0", b"a1"]
    assert [(p, v) for _, p, _, v in producer.messages()] == [(0, b"a2"), (0, b"a3"), (1, b"b0"), (1, b"b1")]


async def test_each_batch_is_announced_as_it_is_handed_over_those_before_a_refusal_too() -> None:
    outbox, refusing = Outbox(), Producer(refuse_after=2)
    for partition in range(3):
        outbox.add("t", partition, None, b"%d" % partition)
    announced = []

    with pytest.raises(KafkaTimeoutError):
        await outbox.send(refusing, announced.append)

    assert [(d.partition, d.count) for d in announced] == [(0, 1), (1, 1)]
    assert [d.acknowledged for d in announced] == [s.acknowledged for s in refusing.sent]
