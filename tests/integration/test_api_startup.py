"""The API's start-up (its lifespan, against the real stores): what it built to start is left out of the garbage
collector's way once it is ready (app/runtime.py), as the workers' is (tests/integration/test_worker_process.py)."""

from __future__ import annotations

import gc

from app.api.main import create_app
from app.settings import Settings


async def test_once_started_the_api_has_frozen_what_it_built(settings: Settings) -> None:
    gc.unfreeze()
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # this test process goes on collecting as before
