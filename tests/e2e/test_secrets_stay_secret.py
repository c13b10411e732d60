"""No password of the stores, and no signing key, in any log line the system and its services have written.

Run against everything the e2e processes and the local services logged so far (the tests' process logs, Kafka's,
Cassandra's and PostgreSQL's, including the drills' and the outage tests' when they ran first), after requests that
make the API use every store. What it cannot see: process lists and files other than logs (the services keep the
passwords off command lines and in owner-only files: app/tools/services.py).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from app.api.auth import signing_secret
from app.settings import get_settings
from app.tools.services import Postgres
from tests.e2e.system import RUN_DIR, Process


def test_no_log_holds_a_password_or_the_signing_key(system: dict[str, Process], client: httpx.Client) -> None:
    settings = get_settings()
    client.get("/vendor-billing/00000000-0000-0000-0000-000000000000/2026?source=postgres")
    client.get("/ready")
    secrets = {
        name: settings.credential(name, None)
        for name in ("cassandra-password", "postgres-password", "kafka-password", "kafka-keystore-password")
    }
    secrets["signing-key"] = signing_secret(settings)  # the key the API checks tokens with in this run
    assert all(secrets.values()), secrets.keys()
    logs = [*RUN_DIR.rglob("*.log"), *settings.state_dir.glob("*/*.log"), Postgres(settings).log]
    read = [p for p in logs if Path(p).is_file()]
    assert len(read) >= 4, read  # the API's and a worker's at least, and the services'
    for path in read:
        text = Path(path).read_text(errors="replace")
        for name, secret in secrets.items():
            assert secret not in text, f"{name} is in {path}"
