"""How a query worker's consumer fetches: Kafka holds each fetch for more while the agents keep up, and not while
any of them is behind.

Faust builds its consumer with `fetch_min_bytes=1`, so every fetch comes back with the first message there: on a
query worker, most of its CPU went to fetching (docs/benchmarks.md, 2026-12-02 evening). Held fetches
(`Settings.worker_fetch`: up to 256 KiB or 50 ms) cut that by a fifth, but slowed a catch-up by 15-20%: the
consumer has one fetch in flight per broker, so a fetch held for the partitions that trickle (the row owners'
updates) keeps the drained partitions of the backlog waiting behind it. So the agents say when they are behind (a
full batch, or more waiting once a batch is taken), and while any is, the consumer fetches without holding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FetchPacing:
    """Switches the consumer's fetches between held (`min_bytes`, as configured) and eager (1 byte) as the agents
    fall behind and catch up. `fetcher()` is the consumer's fetcher once it has one (None before): its fetch
    parameters are read each time a fetch request is built."""

    def __init__(self, min_bytes: int, fetcher: Callable[[], Any]) -> None:
        self.min_bytes = min_bytes
        self.fetcher = fetcher
        self.behind: set[str] = set()

    def report(self, agent: str, behind: bool) -> None:
        if behind:
            self.behind.add(agent)
        else:
            self.behind.discard(agent)
        fetcher = self.fetcher()
        if fetcher is not None:
            # An int attribute, set from the agents' thread and read by the consumer's: the next request sees it.
            fetcher._fetch_min_bytes = 1 if self.behind else self.min_bytes
