"""The local stack's stores take only password logins, with the passwords `cart services up` generated.

Against the real Cassandra and PostgreSQL that `make test` started: no login without a password, none with a wrong
one, none as Cassandra's well-known default superuser; ours works. And the passwords never reach an error message
or `cart status`.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable
from pydantic import SecretStr

from app.runtime import Runtime
from app.settings import Settings
from app.stores.cassandra import StoreUnavailable

ROOT = Path(__file__).resolve().parents[2]


def cassandra_login(settings: Settings, user: str | None, password: str | None) -> str:
    provider = PlainTextAuthProvider(user, password) if user is not None else None
    cluster = Cluster(settings.cassandra_contact_points, port=settings.cassandra_port, auth_provider=provider)
    try:
        cluster.connect().execute("SELECT release_version FROM system.local")
        return "in"
    except NoHostAvailable as error:
        reasons = list(error.errors.values())
        assert all(isinstance(r, AuthenticationFailed) for r in reasons), reasons  # refused, not unreachable
        return "refused"
    finally:
        cluster.shutdown()


def test_cassandra_takes_our_password_and_nothing_else(settings: Settings) -> None:
    secret = settings.cassandra_secret
    assert secret, f"no generated Cassandra password in {settings.credentials_dir}"
    assert cassandra_login(settings, settings.cassandra_username, secret) == "in"
    assert cassandra_login(settings, settings.cassandra_username, secret + "x") == "refused"
    assert cassandra_login(settings, "cassandra", "cassandra") == "refused"  # the default superuser is retired
    assert cassandra_login(settings, None, None) == "refused"  # no credentials at all


async def postgres_login(settings: Settings, password: str | None) -> str:
    try:
        conn = await asyncpg.connect(
            host=settings.postgres_host, port=settings.postgres_port, user=settings.postgres_user,
            password=password, database="postgres", timeout=10,
        )  # fmt: skip
    except asyncpg.InvalidPasswordError:
        return "refused"
    except asyncpg.ClientConfigurationError:  # asked for a password it was not given
        return "refused"
    await conn.close()
    return "in"


async def test_postgresql_takes_our_password_over_tcp_and_nothing_else(settings: Settings) -> None:
    secret = settings.postgres_secret
    assert secret, f"no generated PostgreSQL password in {settings.credentials_dir}"
    assert await postgres_login(settings, secret) == "in"
    assert await postgres_login(settings, secret + "x") == "refused"
    assert await postgres_login(settings, "") == "refused"


async def test_a_store_that_refuses_the_login_is_named_without_the_password(settings: Settings) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    for store in ("cassandra", "postgres"):
        runtime = Runtime(settings.model_copy(update={f"{store}_password": SecretStr(wrong)}))
        try:
            with pytest.raises(StoreUnavailable) as refused:
                await (runtime.journal() if store == "cassandra" else runtime.vendor_billing_sql())
        finally:
            await runtime.aclose()
        message = str(refused.value)
        assert wrong not in message and (settings.credential(f"{store}-password", None) or "") not in message
        assert message, store


def test_cart_status_shows_no_password(settings: Settings) -> None:
    status = subprocess.run(
        [str(Path(sys.executable).with_name("cart")), "status"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    output = status.stdout + status.stderr
    for name in ("cassandra-password", "postgres-password", "kafka-password"):
        secret = settings.credential(name, None)
        assert secret and secret not in output, name
