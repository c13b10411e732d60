from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.settings import Settings, get_settings
from app.tools.services import Postgres


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session", autouse=True)
async def migrated(settings: Settings) -> AsyncIterator[None]:
    """The real services must already run (`make test` starts them); the test schema is created here."""
    from app.stores.migrations import migrate

    await Postgres(settings)._create_database()
    await migrate(settings)
    yield
