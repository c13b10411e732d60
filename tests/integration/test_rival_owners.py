"""Two live processes that both believe they own the same partition write for the same members at the same time
(tests/tools/rival_owner.py): each claim seals the other's lease, so whatever they do, every member's journal is
gap-free, holds no two events at one seq_nr, and keeps every event either of them was told was appended."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from app.command_side.journal import CassandraJournal
from app.settings import Settings
from app.stores.cassandra import connect_async


def test_two_live_owners_of_one_partition_never_fork_gap_or_overwrite_a_member(
    settings: Settings, tmp_path: Path
) -> None:
    partition = random.randrange(100_000, 2**31 - 1)
    members = [str(uuid.uuid4()) for _ in range(3)]
    outs = [tmp_path / f"rival-{n}.json" for n in range(2)]
    start = tmp_path / "start"
    command = [sys.executable, "-m", "tests.tools.rival_owner", settings.cassandra_keyspace, str(partition)]
    rivals = [subprocess.Popen([*command, ",".join(members), str(start), "4", str(out)]) for out in outs]
    deadline = time.time() + 120
    while not all(Path(f"{out}.ready").exists() for out in outs):  # both connected: they write at the same time
        assert time.time() < deadline, "the rivals did not connect within 120 s"
        assert all(r.poll() is None for r in rivals), "a rival exited before it was ready"
        time.sleep(0.1)
    (tmp_path / "start.tmp").write_text(str(time.time() + 0.5))
    (tmp_path / "start.tmp").rename(start)  # whole, at once
    assert [r.wait(300) for r in rivals] == [0, 0]

    results = [json.loads(out.read_text()) for out in outs]
    acked = {tuple(e) for r in results for e in r["acked"]}
    events = asyncio.run(journal_of(settings, partition, members))
    for member in members:
        seq_nrs = [e.seq_nr for e in events[member]]
        assert seq_nrs == list(range(1, len(seq_nrs) + 1)), f"a gap or a repeat in {member}: {seq_nrs}"
        in_journal = {(str(e.member_id), e.seq_nr, str(e.event_id)) for e in events[member]}
        told = {a for a in acked if a[0] == member}
        lost, unknown = sorted(told - in_journal), sorted(in_journal - told)
        assert told == in_journal, f"{len(lost)} lost or overwritten, e.g. {lost[:3]}; {len(unknown)} unknown"
    assert all(r["acked"] for r in results), "both rivals wrote"
    assert sum(r["losses"] for r in results) > 0, "the rivals never met: the test proved nothing"


async def journal_of(settings: Settings, partition: int, members: list[str]) -> dict[str, list[Any]]:
    cluster, session = await connect_async(settings, settings.cassandra_keyspace)
    try:
        journal = CassandraJournal(session, settings.cassandra_keyspace, topic="rivals")
        await journal.claim([partition], "referee")  # indexes whatever a rival appended last
        return {m: await journal.read(uuid.UUID(m)) for m in members}
    finally:
        await asyncio.to_thread(cluster.shutdown)
