"""What every agent's batches are made of, and how long an agent waits for one to fill.

Every agent is a short function over a batch of one partition's messages, `(offset, value)` in offset order
(`Delivered`), read by a consumer the agent drives: the command agent's in a group of its own
(app/streams/driven.py), the query side's at the partitions Faust assigns the worker (app/streams/following.py).
A query-side agent keeps, per partition of its input, the last offset it has processed (`Positions`), durable with
its effects, and reads each partition from the offset after it.

Under load a short wait for company makes fewer, larger batches (on the command side, fewer conditional writes per
command; on the query side, fewer table and read-model writes per event), but only after a batch that had company:
at a light load, where a batch is one message and waiting would add nothing to it, a message is taken at once
(with the command agent's 3 ms wait always on, a command at 20/s was answered 6-7 ms later, p50,
docs/benchmarks.md, 2026-12-03). Working through a backlog (the batch's newest message more than `BEHIND_S` old),
nobody waits on a message that is old already, and larger batches cost less per message: a query-side agent then
waits longer (`within_behind`; a catch-up 899 -> 1,024 events/s, docs/benchmarks.md, 2026-12-03).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from faust.streams import _current_event

T = TypeVar("T")

Delivered = Sequence[tuple[int, T | None]]
"""A partition's messages as (offset, value), in offset order; value None for a malformed one (nothing could ever
process it, so it is skipped, not retried)."""

BEHIND_S = 1.0  # a batch whose newest message is older than this is part of a backlog


def wait_for_company(last: int, behind: bool, within: float, within_behind: float = 0.0) -> float:
    """How long to wait for a batch to fill, from the batch before: `within` if it had company (more than one
    message), the longer of `within` and `within_behind` if it was of a backlog, else nothing."""
    if behind:
        return max(within, within_behind)
    if last > 1:
        return within
    return 0.0


def is_behind(count: int, max_batch: int, newest_timestamp_ms: int | None, now: float | None = None) -> bool:
    """A batch is of a backlog when it is full, or its newest message was produced more than BEHIND_S ago."""
    if count >= max_batch:
        return True
    if newest_timestamp_ms is None:
        return False
    return (time.time() if now is None else now) - newest_timestamp_ms / 1000 > BEHIND_S


class Positions(Protocol):
    """Where an agent keeps, per partition of its input topic, the last offset it has processed."""

    async def last(self, partition: int) -> int | None: ...


class TablePositions:
    """Positions kept in the agent's own changelog-backed table, under `@offset/<partition>`.

    Faust keeps a table's keys per partition (the partition of the event being processed: `attributed_to`), so the
    key is read and written while processing a message of that partition, and its changelog entry goes to that
    partition: it moves with the partition to whichever worker owns it next, and is restored with the rest of the
    table. `record` is made durable by the batch's changelog flush; a crash before that makes the agent process
    the message again, which its bookkeeping absorbs (seq_nr per member, marks per row)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    @staticmethod
    def key(partition: int) -> str:
        return f"@offset/{partition}"

    async def last(self, partition: int) -> int | None:
        value = self.table.get(self.key(partition))
        return None if value is None else int(value)

    def record(self, partition: int, offset: int) -> None:
        self.table[self.key(partition)] = offset


@contextmanager
def attributed_to(event: Any) -> Any:
    """Table reads and writes in this block go to the partition of `event` (Faust reads `event.message.partition`
    from a context variable, which asyncio copies into each task, so concurrent partitions do not see each
    other's)."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)
