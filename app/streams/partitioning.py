"""Which partition a key goes to: the Kafka client's own default partitioner (murmur2 of the key's bytes), which is
what Faust's producer uses for a keyed message, so a reader can tell which partition's owner holds a row."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

_partitioner = DefaultPartitioner()


def partition_of(key: str, partitions: int) -> int:
    every = list(range(partitions))
    partition: int = _partitioner(key.encode(), every, every)
    return partition
