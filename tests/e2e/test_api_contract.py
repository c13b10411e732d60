"""The running API keeps the contract it publishes (docs/openapi.json), checked by Schemathesis.

Schemathesis generates requests from the document, valid ones and invalid ones, sends them to the real API (a
worker, Kafka, Cassandra and PostgreSQL behind it) and checks every answer with all its checks: no 5xx other than a
documented 503, only documented statuses, content types and headers, bodies that match their schemas, invalid input
refused, valid input not refused, a missing or dropped token answered 401 (settings: tests/e2e/schemathesis.toml).

Two identities, because the contract differs by who asks: an operator (`carts:admin`, `analytics`, `metrics`) over
every operation with any member id, and a member over the cart operations on their own cart, where commands pile up
on one cart and meet the cart's rules (checked out, cart full). What a member may not do (another member's cart,
the read models) is test_auth.py's; Schemathesis's object_level_authorization check needs resources it can list,
which this API does not have.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.api.auth import ADMIN, ANALYTICS, METRICS, mint
from app.settings import get_settings
from tests.e2e.system import Process, api_url

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
DOCUMENT = ROOT / "docs" / "openapi.json"


def schemathesis(config: Path, token: str, *options: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(config),
        "run", str(DOCUMENT),
        "--url", api_url(),
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing",
        *options,
    ]  # fmt: skip
    env = {**os.environ, "CART_CONTRACT_TOKEN": token, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)


def report(run: subprocess.CompletedProcess[str]) -> str:
    return f"schemathesis exited {run.returncode}\n{run.stdout[-60000:]}\n{run.stderr[-4000:]}"


@pytest.mark.slow
def test_an_operator_gets_what_the_document_promises_on_every_operation(system: dict[str, Process]) -> None:
    token = mint(get_settings(), "contract-operator", [ADMIN, ANALYTICS, METRICS], 3600)
    run = schemathesis(CONFIG, token)
    assert run.returncode == 0, report(run)
    assert "13 operations" in run.stdout or "13 selected" in run.stdout, report(run)


@pytest.mark.slow
def test_a_member_gets_what_the_document_promises_on_their_own_cart(system: dict[str, Process], tmp_path: Path) -> None:
    member = str(uuid.uuid4())
    config = tmp_path / "member.toml"
    config.write_text(CONFIG.read_text() + f'"path.memberId" = "{member}"\n')
    run = schemathesis(config, mint(get_settings(), member, [], 3600), "--include-path-regex", "^/cart/")
    assert run.returncode == 0, report(run)
