"""The one place that wires things for a worker process: settings -> stores -> handlers.

Nothing connects at import time; the first agent that needs a store awaits `Runtime.journal()`, which runs the
migrations and connects once for the whole process.
"""

from __future__ import annotations

import asyncio

from cassandra.cluster import Cluster, Session

from app.cassandra import connect_async
from app.journal import CassandraJournal
from app.migrations import migrate
from app.settings import Settings


class Runtime:
    def __init__(self, settings: Settings, migrate_first: bool = True) -> None:
        self.settings = settings
        self.migrate_first = migrate_first
        self._lock = asyncio.Lock()
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._journal: CassandraJournal | None = None

    async def cassandra(self) -> Session:
        async with self._lock:
            if self._session is None:
                if self.migrate_first:
                    await migrate(self.settings)
                self._cluster, self._session = await connect_async(self.settings, self.settings.cassandra_keyspace)
            return self._session

    async def journal(self) -> CassandraJournal:
        if self._journal is None:
            session = await self.cassandra()
            self._journal = CassandraJournal(
                session, self.settings.cassandra_keyspace, bucket_size=self.settings.journal_bucket_size
            )
        return self._journal

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
