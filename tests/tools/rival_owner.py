"""A process that believes it owns a partition of cart-commands and writes for its members as fast as it can: one of
two rivals in tests/integration/test_rival_owners.py. Whenever its lease is lost, it claims the partition again
(the other rival then loses its lease) and reloads the carts from the journal, as an owner does after a claim.

Usage: python -m tests.tools.rival_owner KEYSPACE PARTITION MEMBER[,MEMBER...] START_AT SECONDS OUT.json
Both rivals start writing at the epoch time START_AT and go on for SECONDS. Writes to OUT.json every event whose
append returned (acknowledged), as [member, seq_nr, event_id], and how many times it lost its lease.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from decimal import Decimal
from uuid import UUID

from app.cart.member_cart import Accepted, MemberCart, decide_command
from app.cart.rules import AddItem, Checkout, Item
from app.command_side.handler import now_utc
from app.command_side.journal import CassandraJournal, LeaseLost, MemberAppend
from app.settings import get_settings
from app.stores.cassandra import connect_async


async def rival(
    keyspace: str, partition: int, members: list[UUID], start_at: float, seconds: float
) -> tuple[list[list[str | int]], int]:
    cluster, session = await connect_async(get_settings(), keyspace)
    journal = CassandraJournal(session, keyspace, topic="rivals")
    acked: list[list[str | int]] = []
    losses = 0
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        lease = await journal.claim([partition], f"rival-{uuid.uuid4().hex[:6]}")
        states: dict[UUID, MemberCart] = {m: await journal.load(m) for m in members}
        n = 0
        while time.time() < start_at + seconds:
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
    keyspace, partition, members, start_at, seconds, out = sys.argv[1:7]
    member_ids = [UUID(m) for m in members.split(",")]
    acked, losses = asyncio.run(rival(keyspace, int(partition), member_ids, float(start_at), float(seconds)))
    with open(out, "w") as f:
        json.dump({"acked": acked, "losses": losses}, f)


if __name__ == "__main__":
    main()
