"""Abuse limits: a token bucket per member and per client address, in the API process's memory.

The defaults (50 requests/s per member with bursts of 100, 5,000/s per client address) are far above what a person
does and above what the benchmark sends from one host, so only abuse meets them; both are settings. A request
over a limit is refused with 429 and `Retry-After` (the seconds until the bucket has a token again).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict


class TooManyRequests(Exception):
    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class Buckets:
    """Token buckets by key (`rate` tokens a second, at most `burst`); the least recently used go when there are
    more than `keys` (a bucket unused that long is full again anyway)."""

    def __init__(self, what: str, rate: float, burst: int, keys: int = 100_000) -> None:
        self.what, self.rate, self.burst, self.keys = what, rate, burst, keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)

    def take(self, key: str) -> None:
        """One request for `key`; TooManyRequests if its bucket is empty."""
        now = time.monotonic()
        tokens, when = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - when) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1 - tokens) / self.rate)
            raise TooManyRequests(f"more than {self.rate:g} requests a second for this {self.what}", max(1, wait))
        self._buckets[key] = (tokens - 1, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.keys:
            self._buckets.popitem(last=False)
