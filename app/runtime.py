"""The one place that wires things for a worker process: settings -> stores -> handlers.

Nothing connects at import time; the first agent that needs a store awaits `Runtime.journal()`, which runs the
migrations and connects once for the whole process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import asyncpg
from cassandra import OperationTimedOut
from cassandra.cluster import Cluster, NoHostAvailable, Session

from app.command_side.command_bus import CommandBus
from app.command_side.journal import CassandraJournal
from app.query_side.read_models import CassandraReadModels, PostgresVendorBilling
from app.settings import Settings
from app.stores.cassandra import StoreUnavailable, connect_async
from app.stores.migrations import migrate

T = TypeVar("T")
log = logging.getLogger(__name__)


async def prepared(store: Callable[..., T], *args: Any) -> T:
    """Build a store, whose constructor prepares its statements: a blocking round trip to Cassandra, so it runs in
    a thread, and a Cassandra that does not answer is StoreUnavailable like any other query."""
    try:
        return await asyncio.to_thread(store, *args)
    except (OperationTimedOut, NoHostAvailable) as error:
        raise StoreUnavailable(f"Cassandra did not answer: {error}") from error


FULL_COLLECTION_EVERY = 100
"""Full collections at most once per this many collections of the middle generation (CPython's default: 10)."""


def settle_garbage_collection() -> int:
    """Leave every object alive now out of the garbage collector's future passes (gc.freeze), and make its full
    passes rarer; how many objects were left out.

    A process that has started holds hundreds of thousands of objects that live as long as it does (modules, Faust's
    and the drivers' machinery, Cassandra's schema metadata). A full collection walks all of them, and in the command
    worker under load one stalled every command in flight for 60-110 ms, a few times a minute (docs/benchmarks.md,
    2026-12-06). Called once the process is ready; garbage is collected first, so none is kept.

    What a busy process keeps after that (the command worker's carts, events waiting to be indexed) still makes the
    collector run a full pass every few seconds, each stalling every request in flight; once every 100 passes of the
    middle generation instead of 10 cut them from 23 to 2 in 100 s of load, and only cyclic garbage waits longer
    (docs/benchmarks.md, 2026-12-06, evening)."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    return gc.get_freeze_count()


class Runtime:
    def __init__(self, settings: Settings, migrate_first: bool = True) -> None:
        self.settings = settings
        self.migrate_first = migrate_first
        # One lock per store (and one for the migration): a PostgreSQL that hangs while connecting must not hold
        # up a Cassandra session (`/ready` asks for both).
        self._cassandra_lock, self._postgres_lock, self._migrate_lock = asyncio.Lock(), asyncio.Lock(), asyncio.Lock()
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._journal: CassandraJournal | None = None
        self._read_models: CassandraReadModels | None = None
        self._pg_pool: asyncpg.Pool | None = None
        self._bus: CommandBus | None = None
        self._bus_lock = asyncio.Lock()
        self._migrated = False

    async def cassandra(self) -> Session:
        async with self._cassandra_lock:
            if self._session is None:
                await self._migrate_once()
                self._cluster, self._session = await connect_async(
                    self.settings, self.settings.cassandra_keyspace, on_loop=self.settings.cassandra_on_loop
                )
            return self._session

    async def _migrate_once(self) -> None:
        async with self._migrate_lock:
            if self.migrate_first and not self._migrated:
                await migrate(self.settings)
                self._migrated = True

    async def journal(self) -> CassandraJournal:
        if self._journal is None:
            session = await self.cassandra()
            s = self.settings
            self._journal = await prepared(
                partial(CassandraJournal, topic=s.topic_commands, partitions=s.partitions),
                session,
                s.cassandra_keyspace,
                s.journal_bucket_size,
            )
        return self._journal

    async def read_models(self) -> CassandraReadModels:
        if self._read_models is None:
            session = await self.cassandra()
            self._read_models = await prepared(CassandraReadModels, session, self.settings.cassandra_keyspace)
        return self._read_models

    async def vendor_billing_sql(self) -> PostgresVendorBilling:
        async with self._postgres_lock:
            if self._pg_pool is None:
                await self._migrate_once()
                try:
                    # A connection per partition: each partition's batch is a transaction of its own, at once.
                    self._pg_pool = await asyncpg.create_pool(
                        self.settings.postgres_dsn, min_size=1, max_size=max(4, self.settings.partitions), timeout=10
                    )
                except (OSError, asyncpg.PostgresError, TimeoutError) as error:
                    raise StoreUnavailable(f"PostgreSQL is not reachable: {error}") from error
            return PostgresVendorBilling(self._pg_pool)

    async def warm_up(self, timeout_s: float) -> None:
        """Migrate and connect every store now, each within `timeout_s`, so that the first message does not pay for
        it. A store that does not answer is logged and left to the agents, which retry it when they need it."""
        for name, connect in (
            ("Cassandra", self.journal),
            ("Cassandra read models", self.read_models),
            ("PostgreSQL", self.vendor_billing_sql),
        ):
            try:
                await asyncio.wait_for(connect(), timeout_s)
            except Exception as error:  # never fatal here: the agents connect (and retry) on first use
                log.warning("warm-up: %s not ready (%s); the agents will retry", name, error or type(error).__name__)

    async def command_bus(self) -> CommandBus:
        """A way to the command side's owners, started on first use (the query side asks an owner to index what it
        holds when it must read events from the member journal: agents/purchases.py)."""
        async with self._bus_lock:
            if self._bus is None:
                bus = CommandBus(self.settings)
                await bus.start()
                self._bus = bus
            return self._bus

    async def aclose(self) -> None:
        if self._bus is not None:
            await self._bus.stop()
        if self._pg_pool is not None:
            await self._pg_pool.close()
        if self._cluster is not None:
            await asyncio.to_thread(self._cluster.shutdown)


_process_runtime: Runtime | None = None


def process_runtime() -> Runtime:
    """The worker process's one Runtime, shared by all its agents (created on first use, not at import)."""
    global _process_runtime
    if _process_runtime is None:
        from app.settings import get_settings

        _process_runtime = Runtime(get_settings())
    return _process_runtime
