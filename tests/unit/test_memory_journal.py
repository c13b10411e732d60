"""The journal's contract (tests/journal_contract.py) against the in-memory journal the unit tests use, so that
what those tests rely on is what the Cassandra journal does."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from tests.journal_contract import JournalContract
from tests.memory_journal import MemoryJournal


class TestMemoryJournal(JournalContract):
    @pytest.fixture()
    def journal(self) -> MemoryJournal:
        return MemoryJournal(bucket_size=3)

    async def forget_events_through(self, journal: Any, member_id: UUID, seq_nr: int) -> None:
        stored = journal.events.get(member_id, {})
        for n in [n for n in stored if n <= seq_nr]:
            del stored[n]
