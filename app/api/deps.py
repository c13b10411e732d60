"""What the routes depend on (`Backends`: Kafka and the stores), created once per process by the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.auth import ADMIN, ANALYTICS, ANYONE, Principal, TokenChecker
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
            raise StoreUnavailable(f"{store} is not reachable: {str(error) or type(error).__name__}") from error

    async def readiness(self) -> dict[str, bool | str]:
        checks: dict[str, bool | str] = {}
        try:
            session = await self.runtime.cassandra()
            await execute(session, "SELECT release_version FROM system.local", timeout_s=3)
            checks["cassandra"] = True
        except Exception as error:
            checks["cassandra"] = f"not reachable: {str(error) or type(error).__name__}"
        checks["kafka"], checks["workers"] = await self.bus.readiness()
        try:
            billing = await asyncio.wait_for(self.runtime.vendor_billing_sql(), 5)
            await billing.answers(timeout_s=3)
            checks["postgres"] = True
        except Exception as error:
            checks["postgres"] = f"not reachable: {str(error) or type(error).__name__}"
        return checks


async def get_backends(request: Request) -> Backends:
    # async: FastAPI runs a plain def dependency in a thread pool, a thread hop per request.
    backends: Backends = request.app.state.backends
    return backends


BackendsDep = Annotated[Backends, Depends(get_backends)]


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="A JWT whose subject is the member id; scope `carts:admin` acts for any member, `analytics` reads "
    "the read models. `cart token NAME_OR_ID [--scope S]` prints one for local use.",
)


def principal_of(request: Request) -> Principal:
    """Who the request acts as (AuthError 401 when it cannot say): the checker reads the header itself, to say
    exactly what is wrong with it."""
    checker: TokenChecker | None = request.app.state.tokens
    if checker is None:
        return ANYONE
    return checker.principal(request.headers.get("authorization"))


Declared = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
"""Puts the bearer scheme in the OpenAPI document (the credentials themselves are read by `principal_of`)."""


async def get_principal(request: Request, _declared: Declared) -> Principal:
    return principal_of(request)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@dataclass(frozen=True)
class MemberAccess:
    """A request that acts for a member: the backends to ask, and who asks."""

    backends: Backends
    principal: Principal


async def member_access(memberId: UUID, request: Request, _declared: Declared) -> MemberAccess:
    """The request acts for this member (its own cart, or an operator's token), within the member's rate.

    One dependency for what the cart routes need: FastAPI solving a tree of four (backends, bearer, principal,
    member) was a fifth of the API's profile samples under load (docs/benchmarks.md, 2026-12-03)."""
    principal = principal_of(request)
    principal.check_member(memberId)
    request.app.state.member_limits.take(str(memberId))
    return MemberAccess(request.app.state.backends, principal)


async def analytics_principal(principal: PrincipalDep) -> Principal:
    """The request may read the read models (scope analytics, or an operator's token)."""
    principal.check_scope(ANALYTICS, ADMIN)
    return principal


MemberDep = Annotated[MemberAccess, Depends(member_access)]
AnalyticsDep = Annotated[Principal, Depends(analytics_principal)]
