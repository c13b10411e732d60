"""A query worker's consumer holds its fetches only while every agent keeps up (app/streams/fetch_pacing.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from app.streams.fetch_pacing import FetchPacing


def test_fetches_are_eager_while_any_agent_is_behind_and_held_once_all_have_caught_up() -> None:
    fetcher = SimpleNamespace(_fetch_min_bytes=262_144)
    pacing = FetchPacing(262_144, lambda: fetcher)

    pacing.report("purchases", behind=False)
    assert fetcher._fetch_min_bytes == 262_144
    pacing.report("purchases", behind=True)
    assert fetcher._fetch_min_bytes == 1
    pacing.report("popular_items", behind=True)
    pacing.report("purchases", behind=False)
    assert fetcher._fetch_min_bytes == 1  # popular_items is still behind
    pacing.report("popular_items", behind=False)
    assert fetcher._fetch_min_bytes == 262_144


def test_a_report_before_the_consumer_has_a_fetcher_is_kept_for_later() -> None:
    fetcher: Any = None
    pacing = FetchPacing(1024, lambda: fetcher)
    pacing.report("purchases", behind=True)  # the consumer has not started: nothing to set, nothing fails
    fetcher = SimpleNamespace(_fetch_min_bytes=1024)
    pacing.report("vendor_billing", behind=False)
    assert fetcher._fetch_min_bytes == 1  # purchases was behind and has not said otherwise
