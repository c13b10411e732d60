"""What the routes depend on (`Backends`: Kafka and the stores), created once per process by the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from app.command_side.command_bus import CommandBus
from app.command_side.journal import CassandraJournal
from app.query_side.read_models import CassandraReadModels, PostgresVendorBilling
from app.runtime import Runtime
from app.settings import Settings
from app.stores.cassandra import StoreUnavailable, execute

T = TypeVar("T")


@dataclass
class Backends:
    """The API's handles on Kafka (the command bus) and the stores (through the runtime)."""

    settings: Settings
    bus: CommandBus
    runtime: Runtime

    async def journal(self) -> CassandraJournal:
        return await self._reach(self.runtime.journal(), "Cassandra")

    async def read_models(self) -> CassandraReadModels:
        return await self._reach(self.runtime.read_models(), "Cassandra")

    async def vendor_billing_sql(self) -> PostgresVendorBilling:
        return await self._reach(self.runtime.vendor_billing_sql(), "PostgreSQL")

    async def _reach(self, connecting: Awaitable[T], store: str) -> T:
        """A store's handle (connecting on first use) within the command timeout; StoreUnavailable otherwise."""
        try:
            return await asyncio.wait_for(connecting, self.settings.command_timeout_s)
        except (TimeoutError, OSError) as error:
            raise StoreUnavailable(f"{store} is not reachable: {error or 'timed out'}") from error

    async def readiness(self) -> dict[str, bool | str]:
        checks: dict[str, bool | str] = {}
        try:
            session = await self.runtime.cassandra()
            await execute(session, "SELECT release_version FROM system.local", timeout_s=3)
            checks["cassandra"] = True
        except Exception as error:
            checks["cassandra"] = f"not reachable: {error}"
        checks["kafka"], checks["workers"] = await self.bus.readiness()
        return checks


async def get_backends(request: Request) -> Backends:
    # async: FastAPI runs a plain def dependency in a thread pool, a thread hop per request.
    backends: Backends = request.app.state.backends
    return backends


BackendsDep = Annotated[Backends, Depends(get_backends)]
