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

import math
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
    table. `record` is durable once the changelog has it, after the batch's other writes to that partition; a crash
    before that makes the agent process the message again, which its bookkeeping absorbs (seq_nr per member, marks
    per row)."""

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


class Checkpointed:
    """An agent's bookkeeping in its table (`JsonTable`: entries such as member -> highest seq_nr absorbed, and the
    last offset processed per partition), written to the table once per partition every `every_s`, not every batch:
    between two checkpoints it is kept here, read from here first, and the agent's outputs go out as usual.

    Why: `purchases` wrote the entry of every member in each batch, and at saturation a member's events fall into
    different batches: 1.2 changelog messages per command, more than the events themselves (docs/benchmarks.md,
    2026-12-06, midday). Every few seconds (`Settings.projection_checkpoint_s`), a member active throughout costs
    one per interval.

    Why it is enough: a checkpoint writes the partition's entries, then its offset, to the same changelog partition,
    in that order (and only after the outputs of what they record were delivered), so whatever durable offset a
    worker resumes from, the entries are at least as of that offset. A crash replays what came after the
    last checkpoint (one interval at most), from the state as it was at that checkpoint, so the replay decides exactly
    what the first pass did (the same journal ranges, the same source indexes), and what it sends again the
    outputs' consumers absorb (the row owners' marks; `eventId` on the public topic), as after a crash mid-flush.
    It is also the agent's `Positions`: the last offset processed is read from here first, so a batch retried after
    a store did not answer skips what the first try processed, as with a table written every batch. Before
    partitions go (`settle`, on a revocation or a clean stop) every pending checkpoint is written."""

    def __init__(self, table: Any, positions: TablePositions, every_s: float) -> None:
        self.table, self.positions, self.every_s = table, positions, every_s
        self._entries: dict[int, dict[str, Any]] = {}
        self._offsets: dict[int, int] = {}
        self._written_at: dict[int, float] = {}

    async def last(self, partition: int) -> int | None:
        """The last offset processed of the partition (`Positions`), written or not yet (the caller is attributed
        to the partition)."""
        if partition in self._offsets:
            return self._offsets[partition]
        return await self.positions.last(partition)

    def get(self, partition: int, key: str) -> Any:
        entries = self._entries.get(partition)
        if entries is not None and key in entries:
            return entries[key]
        return self.table.get(key)

    def set(self, partition: int, key: str, value: Any) -> None:
        self._entries.setdefault(partition, {})[key] = value

    def processed(self, partition: int, offset: int) -> None:
        """`offset` and what came before it are handled; written now if the partition's last checkpoint is older
        than `every_s` (the caller is attributed to the partition)."""
        self._offsets[partition] = offset
        if time.monotonic() - self._written_at.get(partition, -math.inf) >= self.every_s:
            self.checkpoint(partition)

    def pending(self) -> list[int]:
        """The partitions with anything not written to the table yet."""
        return sorted(set(self._entries) | set(self._offsets))

    def checkpoint(self, partition: int) -> None:
        """Write the partition's entries, then its offset (the caller is attributed to the partition)."""
        for key, value in self._entries.pop(partition, {}).items():
            self.table[key] = value
        offset = self._offsets.pop(partition, None)
        if offset is not None:
            self.positions.record(partition, offset)
        self._written_at[partition] = time.monotonic()

    def forget(self) -> None:
        """The partitions went (after `settle` wrote what they had): whatever comes next is read from the table."""
        self._entries.clear()
        self._offsets.clear()
        self._written_at.clear()


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
