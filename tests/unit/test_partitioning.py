"""Our murmur2 and partitioner give what Kafka's clients give (aiokafka's pure-Python DefaultPartitioner, a port of
the Java client's): otherwise a command would reach a partition whose owner does not hold its member, and a reader
would look for a row's marks at the wrong owner."""

from __future__ import annotations

import random
import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from app.streams.partitioning import KeyPartitioner, murmur2, partition_of


def test_murmur2_is_kafkas_for_every_length_and_byte() -> None:
    rng = random.Random(7)
    for length in range(0, 130):
        for _ in range(25):
            data = bytes(rng.randrange(256) for _ in range(length))
            assert murmur2(data) == aiokafka_murmur2(data), data
    assert murmur2(b"\xff" * 11) == aiokafka_murmur2(b"\xff" * 11)


def test_the_partitioner_agrees_with_aiokafkas_on_keys_and_partition_lists() -> None:
    ours, theirs = KeyPartitioner(), DefaultPartitioner()
    for partitions in (1, 3, 12, 64):
        every = list(range(partitions))
        for _ in range(300):
            key = str(uuid.uuid4()).encode()
            assert ours(key, every, every) == theirs(key, every, every)
            assert partition_of(key.decode(), partitions) == theirs(key, every, every)


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    partitioner = KeyPartitioner()
    assert {partitioner(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert partitioner(None, [0, 1, 2, 3], []) in {0, 1, 2, 3}
