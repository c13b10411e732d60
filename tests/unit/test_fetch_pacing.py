"""A query worker's consumer holds its fetches only while every agent keeps up (app/streams/fetch_pacing.py)."""

from __future__ import annotations

import inspect
import logging
from types import SimpleNamespace
from typing import Any

import pytest

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


def test_a_fetcher_that_cannot_be_found_or_changed_is_said_loudly_once_and_never_crashes_the_agent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def renamed() -> Any:
        raise AttributeError("'AIOKafkaConsumerThread' object has no attribute '_consumer'")

    for fetcher in (renamed, lambda: SimpleNamespace(_min_bytes=1024)):
        caplog.clear()
        pacing = FetchPacing(1024, fetcher)
        with caplog.at_level(logging.ERROR):
            pacing.report("purchases", behind=True)
            pacing.report("purchases", behind=False)
        assert pacing.broken
        assert [r.message.startswith("fetch pacing is off") for r in caplog.records] == [True]


def test_the_worker_says_when_pacing_has_reached_the_fetcher_and_each_first_switch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetcher = SimpleNamespace(_fetch_min_bytes=4096, _fetch_max_wait_ms=50)
    pacing = FetchPacing(4096, lambda: fetcher)
    with caplog.at_level(logging.INFO):
        for behind in (False, True, False, True, False):
            pacing.report("purchases", behind=behind)
    said = [r.message for r in caplog.records if r.levelno == logging.INFO]
    assert said == [
        "fetch pacing reached the consumer's fetcher: fetches held for 4096 bytes or 50 ms while the agents keep up",
        "fetching eagerly (min 1 bytes): purchases behind",
        "holding fetches again (min 4096 bytes): every agent has caught up",
    ]
    assert pacing.switches == 4


def test_aiokafka_builds_each_fetch_request_from_the_attribute_pacing_writes() -> None:
    # Pacing writes Fetcher._fetch_min_bytes on a running consumer; this holds only while aiokafka reads it anew
    # for every request it builds (aiokafka/consumer/fetcher.py, `_get_actions_per_node`).
    from aiokafka.consumer.fetcher import Fetcher

    assert "self._fetch_min_bytes" in inspect.getsource(Fetcher._get_actions_per_node)
