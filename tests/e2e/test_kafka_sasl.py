"""The whole system over SASL_SSL: the API, a worker (Faust and the plain clients beside it) and the CLI all
connect to the local broker's secure listener with SCRAM over TLS, and a cart is filled and bought through it."""

from __future__ import annotations

import uuid

import pytest

from app.settings import get_settings
from tests.e2e.conftest import free_port
from tests.e2e.system import System, cart_cli, post_until_accepted

pytestmark = pytest.mark.slow


def test_a_cart_is_bought_with_every_process_on_sasl_ssl(system: object) -> None:
    settings = get_settings()
    host, _ = settings.kafka_host_port
    secure = {
        "CART_KAFKA_BOOTSTRAP": f"{host}:{settings.kafka_secure_port}",
        "CART_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    }
    isolated = System("sasl", free_port(), extra_env=secure)
    try:
        isolated.start_worker()
        member = str(uuid.uuid4())
        item = {
            "productId": str(uuid.uuid4()),
            "vendorId": str(uuid.uuid4()),
            "name": "fig",
            "price": "2.10",
            "quantity": 2,
        }
        with isolated.client() as client:
            added = post_until_accepted(client, f"/cart/{member}", item, f"a-{uuid.uuid4()}")
            assert not isinstance(added, str), added
            bought = post_until_accepted(client, f"/cart/{member}/checkout", None, f"c-{uuid.uuid4()}")
            assert not isinstance(bought, str), bought
            assert bought.json()["total"] == "4.20"
        status = cart_cli(isolated.env, "status", timeout=120)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "total lag" in status.stdout
    finally:
        isolated.close()
