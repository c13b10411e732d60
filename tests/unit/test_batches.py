"""How long an agent waits for a batch to fill (app/streams/batches.py): only after a batch that had company, and
longer when the batch before was of a backlog."""

from __future__ import annotations

from app.streams.batches import BEHIND_S, is_behind, wait_for_company


def test_a_lone_message_after_a_lone_message_is_taken_at_once() -> None:
    assert wait_for_company(last=0, behind=False, within=0.05) == 0.0
    assert wait_for_company(last=1, behind=False, within=0.05, within_behind=0.25) == 0.0


def test_after_a_batch_that_had_company_the_next_waits_within() -> None:
    assert wait_for_company(last=2, behind=False, within=0.003) == 0.003


def test_after_a_batch_of_a_backlog_the_next_waits_the_longer_of_the_two() -> None:
    assert wait_for_company(last=1, behind=True, within=0.05, within_behind=0.25) == 0.25
    assert wait_for_company(last=500, behind=True, within=0.3, within_behind=0.25) == 0.3


def test_a_batch_is_of_a_backlog_when_full_or_its_newest_message_is_old() -> None:
    now = 1_000_000.0
    fresh, old = int((now - 0.1) * 1000), int((now - BEHIND_S - 0.5) * 1000)
    assert is_behind(10, 10, fresh, now)
    assert not is_behind(9, 10, fresh, now)
    assert is_behind(1, 10, old, now)
    assert not is_behind(1, 10, None, now)
