"""What the query side's per-event encodings cost, in microseconds (docs/benchmarks.md, 2026-12-06, afternoon): the
backlog generator's sessions (7 events, 2 of them purchases), each step timed on all of them, best of 7. Run it at
two commits to compare.

.venv/bin/python docs/bench/query_codec_micro.py   (from the checkout's root)
"""

import random
import timeit
from collections.abc import Callable
from typing import Any

from app.query_side.projections import (
    RowState,
    popular_items_update,
    projected_event_of_message,
    update_messages,
    updates_of,
    vendor_billing_update,
)
from app.streams.partitioning import partition_of
from app.tools.bench.projections import plan_backlog
from schemas.records import event_message

events = [e for m in plan_backlog(7000, random.Random(1)) for s in m.sessions for e in s][:7000]
messages = [event_message(e) for e in events]
purchases = [e for e in events if e.type == "ItemPurchased"]
updates = [popular_items_update(e, 3, i) for i, e in enumerate(purchases)]
updates += [vendor_billing_update(e, 3, i) for i, e in enumerate(purchases)]


def each(name: str, step: Callable[[], Any], count: int) -> None:
    print(f"{name}: {min(timeit.repeat(step, number=1, repeat=7)) / count * 1e6:.1f} us each")


def where(key: str) -> int:
    return partition_of(key, 12)


each("decode a cart event", lambda: [projected_event_of_message(m) for m in messages], len(messages))
each("make a row update", lambda: [popular_items_update(e, 3, i) for i, e in enumerate(purchases)], len(purchases))
try:
    from app.query_side.projections import item_purchased_message

    each("public message", lambda: [item_purchased_message(e) for e in purchases], len(purchases))
except ImportError:  # before 1dc51f8
    import orjson

    from app.query_side.projections import item_purchased_document  # type: ignore[attr-defined]

    each("public message", lambda: [orjson.dumps(item_purchased_document(e)) for e in purchases], len(purchases))
each("encode updates into messages", lambda: update_messages(updates, where), len(updates))
sent = update_messages(updates, where)
each("decode updates", lambda: [updates_of(message) for _, message in sent], len(updates))
each("row state: apply, to dict", lambda: [RowState.from_dict(None).apply(u).to_dict() for u in updates], len(updates))
