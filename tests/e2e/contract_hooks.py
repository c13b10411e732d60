"""Schemathesis hooks for the contract run (tests/e2e/schemathesis.toml).

One rejection of schema-valid data is the contract, not a fault: a request whose Idempotency-Key this member
already used for a different command is refused with 422 IdempotencyKeyReused (as the IETF Idempotency-Key draft
says), and generated requests reuse keys all the time. Every other rejection of valid data still fails the run.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if failure.code != "ST202" or response.status_code != 422:
        return True
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        return True
    return bool(error != "IdempotencyKeyReused")
