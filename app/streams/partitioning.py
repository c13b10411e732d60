"""Which partition a key goes to: Kafka's default partitioner (murmur2 of the key's bytes, as the Java client and
aiokafka's `DefaultPartitioner` compute it), so a reader can tell which partition's owner holds a row, and the
API's commands reach the owner of their member's partition.

aiokafka's murmur2 is pure Python, byte by byte (about 30 us a key here, 3% of the query worker's samples in a
catch-up, docs/benchmarks.md); this one reads the key's 4-byte blocks at once and gives the same hashes
(tests/unit/test_partitioning.py), and what it gives is cached: keys repeat (members, vendors' months, products).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from functools import lru_cache

_M = 0x5BD1E995  # murmur2's mixing constant
_SEED = 0x9747B28C  # the seed of Kafka's Utils.murmur2


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of `data`, as an unsigned 32-bit number (as aiokafka.partitioner.murmur2 returns it)."""
    length = len(data)
    h = _SEED ^ length
    blocks = length >> 2
    for k in struct.unpack_from(f"<{blocks}I", data):
        k = (k * _M) & 0xFFFFFFFF
        k ^= k >> 24
        h = ((h * _M) & 0xFFFFFFFF) ^ ((k * _M) & 0xFFFFFFFF)
    tail = length & 3
    if tail:
        base = blocks << 2
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


@lru_cache(maxsize=65536)
def _index(key: bytes, count: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % count


class KeyPartitioner:
    """A producer's partitioner (aiokafka's `partitioner=`, Faust's `producer_partitioner`): the partition
    aiokafka's DefaultPartitioner gives, a random available one for a message without a key."""

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[_index(key, len(all_partitions))]


def partition_of(key: str, partitions: int) -> int:
    """The partition, of a topic with `partitions` partitions, that a message keyed `key` goes to."""
    return _index(key.encode(), partitions)
