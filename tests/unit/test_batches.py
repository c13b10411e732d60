"""How an agent takes its input in batches (app/streams/batches.py): what has arrived, at most `max_batch`, waiting
for company only when the batch before had some, and longer when it was of a backlog."""

from __future__ import annotations

import asyncio

import pytest

from app.streams.batches import Batches, next_batch


def arriving_soon(queue: asyncio.Queue[int], value: int) -> None:
    """`value` arrives as soon as the taker lets the loop run (so only a taker that waits gets it)."""
    asyncio.get_running_loop().call_soon(queue.put_nowait, value)


@pytest.mark.asyncio
async def test_a_batch_is_what_has_arrived_at_most_max_batch() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(5):
        queue.put_nowait(n)
    assert await next_batch(queue, 3, 0.0) == [0, 1, 2]
    assert await next_batch(queue, 3, 0.0) == [3, 4]


@pytest.mark.asyncio
async def test_the_wait_for_company_is_taken_only_after_a_batch_that_had_some() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    batches = Batches(queue, max_batch=10, within=0.8)

    queue.put_nowait(1)
    arriving_soon(queue, 2)
    assert await batches.next() == [1]  # first batch: nothing says company is coming, so no wait

    await asyncio.sleep(0)  # 2 arrives
    assert await batches.next() == [2]  # the batch before was alone: no wait either

    queue.put_nowait(3)
    queue.put_nowait(4)
    assert await batches.next() == [3, 4]

    queue.put_nowait(5)
    arriving_soon(queue, 6)
    for n in range(7, 16):
        arriving_soon(queue, n)
    assert await batches.next() == list(range(5, 15))  # after a batch of two: waits for more, up to max_batch
    assert queue.qsize() == 1  # 15 arrived too, for the next batch


@pytest.mark.asyncio
async def test_a_batch_of_a_backlog_makes_the_next_one_wait_longer_to_fill() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    batches = Batches(queue, max_batch=100, within=0.0, within_behind=1.0, behind=lambda batch: batch[-1] < 10)
    loop = asyncio.get_running_loop()

    queue.put_nowait(1)  # old: the agent is behind
    assert await batches.next() == [1]
    queue.put_nowait(2)
    loop.call_later(0.05, queue.put_nowait, 3)
    loop.call_later(0.1, queue.put_nowait, 11)
    assert await batches.next() == [2, 3, 11]  # waited for more, up to 1 s

    queue.put_nowait(12)  # 11 was fresh: no longer behind, and `within` is 0
    loop.call_later(0.05, queue.put_nowait, 13)
    assert await batches.next() == [12]
    assert await batches.next() == [13]
