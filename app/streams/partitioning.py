"""Which partition a key goes to: the Kafka client's own default partitioner (murmur2 of the key's bytes), which is
what Faust's producer uses for a keyed message, so a reader can tell which partition's owner holds a row."""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import DefaultPartitioner

_partitioner = DefaultPartitioner()


# Cached: the keys are read-model rows (vendor, product, day), few and repeated, and aiokafka's murmur2 is pure
# Python (3% of the query worker's samples in a catch-up, docs/benchmarks.md, 2026-12-03, afternoon, "bytes through
# Faust").
@lru_cache(maxsize=65536)
def partition_of(key: str, partitions: int) -> int:
    every = list(range(partitions))
    partition: int = _partitioner(key.encode(), every, every)
    return partition
