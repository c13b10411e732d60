"""How a query worker's consumer fetches: Kafka holds each fetch for more while the agents keep up, and not while
any of them is behind.

Faust builds its consumer with `fetch_min_bytes=1`, so every fetch comes back with the first message there: on a
query worker, most of its CPU went to fetching (docs/benchmarks.md, 2026-12-02 evening). Held fetches
(`Settings.worker_fetch`: up to 256 KiB or 50 ms) cut that by a fifth, but slowed a catch-up by 15-20%: the
consumer has one fetch in flight per broker, so a fetch held for the partitions that trickle (the row owners'
updates) keeps the drained partitions of the backlog waiting behind it. So the agents say when they are behind (a
full batch, or more waiting once a batch is taken), and while any is, the consumer fetches without holding.

The switch writes aiokafka's private `Fetcher._fetch_min_bytes`, which it reads each time it builds a fetch
request: there is no public way to change it on a running consumer. So the worker says in its log when pacing has
reached the fetcher (reading the value back), and says loudly when it cannot: pacing never stops silently.
tests/integration/test_worker_process.py watches a running query worker switch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ATTRIBUTE = "_fetch_min_bytes"


class FetchPacing:
    """Switches the consumer's fetches between held (`min_bytes`, as configured) and eager (1 byte) as the agents
    fall behind and catch up. `fetcher()` is the consumer's fetcher once it has one (None before): its fetch
    parameters are read each time a fetch request is built.

    The first switch each way is logged at INFO, later ones at DEBUG (a loaded worker switches often)."""

    def __init__(self, min_bytes: int, fetcher: Callable[[], Any]) -> None:
        self.min_bytes = min_bytes
        self.fetcher = fetcher
        self.behind: set[str] = set()
        self.reached: Any = None  # the fetcher pacing last wrote to
        self.broken = False
        self.switches = 0
        self._said: set[bool] = set()

    def report(self, agent: str, behind: bool) -> None:
        if behind:
            self.behind.add(agent)
        else:
            self.behind.discard(agent)
        if self.broken:
            return
        try:
            fetcher = self.fetcher()
        except AttributeError as error:
            self._break(f"the consumer's fetcher cannot be found ({error})")
            return
        if fetcher is None:
            return
        if not hasattr(fetcher, ATTRIBUTE):
            self._break(f"aiokafka's {type(fetcher).__name__} has no {ATTRIBUTE}")
            return
        if fetcher is not self.reached:
            self.reached = fetcher
            log.info(
                "fetch pacing reached the consumer's fetcher: fetches held for %d bytes or %d ms while the agents "
                "keep up",
                getattr(fetcher, ATTRIBUTE),
                getattr(fetcher, "_fetch_max_wait_ms", -1),
            )
        eager = bool(self.behind)
        wanted = 1 if eager else self.min_bytes
        if getattr(fetcher, ATTRIBUTE) == wanted:
            return
        # An int attribute, set from the agents' thread and read by the consumer's: the next request sees it.
        setattr(fetcher, ATTRIBUTE, wanted)
        self.switches += 1
        level = logging.DEBUG if eager in self._said else logging.INFO
        self._said.add(eager)
        if eager:
            log.log(level, "fetching eagerly (min %d bytes): %s behind", wanted, ", ".join(sorted(self.behind)))
        else:
            log.log(level, "holding fetches again (min %d bytes): every agent has caught up", wanted)

    def _break(self, why: str) -> None:
        self.broken = True
        log.error("fetch pacing is off: %s (a changed Faust or aiokafka?); fetches stay as the consumer was built", why)
