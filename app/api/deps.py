"""What the routes depend on, created once per process by the app's lifespan (the API's wiring)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.cassandra import StoreUnavailable, execute
from app.command_bus import CommandBus
from app.journal import CassandraJournal
from app.read_models import CassandraReadModels, PostgresVendorBilling
from app.runtime import Runtime
from app.settings import Settings


@dataclass
class Services:
    settings: Settings
    bus: CommandBus
    runtime: Runtime

    async def journal(self) -> CassandraJournal:
        try:
            return await asyncio.wait_for(self.runtime.journal(), self.settings.command_timeout_s)
        except (TimeoutError, OSError) as error:
            raise StoreUnavailable(f"Cassandra is not reachable: {error or 'timed out'}") from error

    async def read_models(self) -> CassandraReadModels:
        try:
            return await asyncio.wait_for(self.runtime.read_models(), self.settings.command_timeout_s)
        except (TimeoutError, OSError) as error:
            raise StoreUnavailable(f"Cassandra is not reachable: {error or 'timed out'}") from error

    async def vendor_billing_sql(self) -> PostgresVendorBilling:
        try:
            return await asyncio.wait_for(self.runtime.vendor_billing_sql(), self.settings.command_timeout_s)
        except (TimeoutError, OSError) as error:
            raise StoreUnavailable(f"PostgreSQL is not reachable: {error or 'timed out'}") from error

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


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
