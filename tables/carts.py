"""Table `carts`: member id -> the member's cart (`app.cart.member_cart.MemberCart` as a dict).

RocksDB-backed (on disk, so a million members are not a million carts in RAM) with a Kafka changelog,
co-partitioned with `cart-commands`: the worker that owns partition p owns those members' carts. It is a cache
of the journal: a member missing here is loaded from the journal, and a stale entry is caught by the journal's
conditional append, after which the agent reloads from the journal.
"""

from __future__ import annotations

from app.streams.faust_app import app, settings

carts = app.Table(
    "carts",
    partitions=settings.partitions,
    key_type=str,
    default=None,
    help="member id -> the member's cart as of a journal version",
)
