"""A process that believes it owns a partition of cart-commands and writes for its members as fast as it can: one of
two rivals in tests/integration/test_rival_owners.py. Whenever its lease is lost, it claims the partition again
(the other rival then loses its lease) and reloads the carts from the journal, as an owner does after a claim.

Usage: python -m tests.tools.rival_owner KEYSPACE PARTITION MEMBER[,MEMBER...] START_FILE SECONDS OUT.json
Once connected, a rival creates OUT.json.ready and waits for START_FILE, which holds the epoch time at which both
start writing; it goes on for SECONDS, and past them until it has had one append acknowledged (at most 5 x SECONDS),
so that each rival has written while the other was writing too. (A fixed start time 8 s after the launch was not
enough on a fresh machine, where importing and connecting took longer: one rival started too late to write.)
Writes to OUT.json every event whose append returned (acknowledged), as [member, seq_nr, event_id], and how many
times it lost its lease.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from app.cart.member_cart import Accepted, MemberCart, decide_command
from app.cart.rules import AddItem, Checkout, Item
from app.command_side.handler import now_utc
from app.command_side.journal import CassandraJournal, LeaseLost, MemberAppend
from app.settings import get_settings
from app.stores.cassandra import connect_async


def started_at(start_file: Path, ready: Path) -> float:
    """Say this rival is ready, wait for the start time (the file appears whole: it is renamed into place)."""
    ready.touch()
    while not start_file.exists():
        time.sleep(0.05)
    start_at = float(start_file.read_text())
    time.sleep(max(0.0, start_at - time.time()))
    return start_at


async def rival(
    keyspace: str, partition: int, members: list[UUID], start_file: Path, seconds: float, ready: Path
) -> tuple[list[list[str | int]], int]:
    cluster, session = await connect_async(get_settings(), keyspace)
    journal = CassandraJournal(session, keyspace, topic="rivals")
    acked: list[list[str | int]] = []
    losses = 0
    try:
        start_at = await asyncio.to_thread(started_at, start_file, ready)
        lease = await journal.claim([partition], f"rival-{uuid.uuid4().hex[:6]}")
        states: dict[UUID, MemberCart] = {m: await journal.load(m) for m in members}
        n = 0
        while time.time() < start_at + seconds or (not acked and time.time() < start_at + 5 * seconds):
            n += 1
            appends = []
            for member in members:
                item = Item(uuid.uuid4(), uuid.uuid4(), f"item {n}", Decimal("1.00"), 1)
                command = Checkout() if len(states[member].cart.items) >= 20 else AddItem(item)  # carts hold 100
                decision = decide_command(
                    states[member], f"{lease.owner}-{n}", command, now=now_utc(),
                    new_cart_id=uuid.uuid4(), new_event_id=uuid.uuid4,
                )  # fmt: skip
                assert isinstance(decision, Accepted)
                appends.append(MemberAppend(member, decision.expected_version, decision.events))
            try:
                await journal.append_batch(lease, appends)
            except LeaseLost:
                losses += 1
                lease = await journal.claim([partition], lease.owner)  # it still believes it owns the partition
                states = {m: await journal.load(m) for m in members}
                continue
            await journal.index(lease, appends)
            for append in appends:
                states[append.member_id] = states[append.member_id].with_events(append.events)
                acked += [[str(e.member_id), e.seq_nr, str(e.event_id)] for e in append.events]
    finally:
        await asyncio.to_thread(cluster.shutdown)
    return acked, losses


def main() -> None:
    keyspace, partition, members, start_file, seconds, out = sys.argv[1:7]
    member_ids = [UUID(m) for m in members.split(",")]
    ready = Path(f"{out}.ready")
    acked, losses = asyncio.run(rival(keyspace, int(partition), member_ids, Path(start_file), float(seconds), ready))
    with open(out, "w") as f:
        json.dump({"acked": acked, "losses": losses}, f)


if __name__ == "__main__":
    main()
