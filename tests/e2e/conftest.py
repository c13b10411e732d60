from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import httpx
import pytest

from app.settings import get_settings
from app.stores.migrations import migrate
from app.tools.services import Postgres
from tests.e2e.system import Process, System, api_url, operator_headers, start_api, start_worker, wait_ready


@pytest.fixture(scope="session")
def system() -> Iterator[dict[str, Process]]:
    """One worker and the API, shared by the e2e tests that do not stop processes."""
    settings = get_settings()
    asyncio.run(Postgres(settings)._create_database())
    asyncio.run(migrate(settings))
    processes = {"worker": start_worker(), "api": start_api()}
    try:
        wait_ready(list(processes.values()))
        yield processes
    finally:
        for p in processes.values():
            p.stop()


@pytest.fixture()
def client(system: dict[str, Process]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url(), timeout=30, headers=operator_headers()) as c:
        yield c


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _isolated(request: pytest.FixtureRequest, own_stores: bool) -> Iterator[System]:
    port = free_port()
    s = System(request.node.name[:20].replace("_", "-").strip("-[]"), port, own_stores)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture()
def isolated(request: pytest.FixtureRequest) -> Iterator[System]:
    """A system of its own (topics, consumer group, API) for a test that kills or restarts workers."""
    yield from _isolated(request, own_stores=False)


@pytest.fixture()
def isolated_stores(request: pytest.FixtureRequest) -> Iterator[System]:
    """Like `isolated`, with its own keyspace and database, for tests that compare whole read models."""
    yield from _isolated(request, own_stores=True)
