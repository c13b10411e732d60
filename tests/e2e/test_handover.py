"""A worker that stops cleanly hands its partitions over at once, without waiting for Kafka's session timeout.

Two workers share the partitions; one is stopped with SIGTERM (as `cart run` and a service manager stop it): it
finishes what it holds and leaves its group, so the other takes every partition in a rebalance right away. A
member on each partition then gets an answer in far less than the session timeout (10 s), the time a SIGKILLed
worker's partitions wait (tests/drills show that case).
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.settings import get_settings
from app.streams.partitioning import partition_of
from tests.e2e.system import System, a_pear, post_until_accepted

pytestmark = pytest.mark.slow


def a_member_on_each_partition(partitions: int) -> list[str]:
    found: dict[int, str] = {}
    while len(found) < partitions:
        member = str(uuid.uuid4())
        found.setdefault(partition_of(member, partitions), member)
    return [found[p] for p in range(partitions)]


def test_a_cleanly_stopped_worker_hands_its_partitions_over_at_once(isolated: System) -> None:
    settings = get_settings()
    leaving = isolated.start_worker()
    isolated.start_worker()
    members = a_member_on_each_partition(settings.partitions)
    with isolated.client() as client:

        def buy(member: str) -> str | None:
            answer = post_until_accepted(client, f"/cart/{member}", a_pear(), f"k-{uuid.uuid4()}")
            return answer if isinstance(answer, str) else None

        with ThreadPoolExecutor(len(members)) as pool:
            assert not [e for e in pool.map(buy, members) if e], "not every partition answered before the stop"
            asked = time.monotonic()
            assert leaving.stop() == 0  # SIGTERM: finishes its batch, commits, leaves the group
            stopped = time.monotonic() - asked
            errors = [e for e in pool.map(buy, members) if e]
            took = time.monotonic() - asked  # from the SIGTERM, the worker's own shutdown included
    assert not errors, errors
    print(f"every partition answered again {took:.1f} s after the SIGTERM (the worker took {stopped:.1f} s to stop)")
    assert took < settings.session_timeout_s * 0.6, f"{took:.1f} s: the partitions waited for the session timeout"
