"""Members are authenticated and confined to their own cart (app/api/auth.py), over HTTP against the real API.

A missing, malformed, forged, expired or `alg: none` token is a 401 with `WWW-Authenticate: Bearer`; a member's
token acts only for that member (another member's cart and history answer 403 and say nothing about them); the
`carts:admin` scope acts for anyone, `analytics` reads the read models; /health and /ready are open. Abuse limits
answer 429 with `Retry-After`.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import jwt
import pytest

from app.api.auth import ADMIN, ANALYTICS
from app.settings import get_settings
from tests.e2e.conftest import free_port
from tests.e2e.system import Process, a_pear, api_url, member_headers, start_api, wait_ready_at


def token(subject: str, scopes: list[str] | None = None, **overrides: object) -> str:
    s = get_settings()
    assert s.auth_secret is not None
    now = int(time.time())
    claims = {"sub": subject, "iss": s.auth_issuer, "aud": s.auth_audience, "iat": now, "exp": now + 600,
              "scope": " ".join(scopes or []), **overrides}  # fmt: skip
    secret = str(overrides.pop("secret", None) or s.auth_secret.get_secret_value())
    claims.pop("secret", None)
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture()
def anonymous(system: dict[str, Process]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url(), timeout=30) as c:
        yield c


def unsigned(subject: str) -> str:
    """A token with `alg: none`: no signature at all."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    s = get_settings()
    body = {"sub": subject, "iss": s.auth_issuer, "aud": s.auth_audience, "exp": int(time.time()) + 600}
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}."


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-jwt"},
    ],
    ids=["missing", "not bearer", "empty", "malformed"],
)
def test_a_request_without_a_usable_token_is_a_401_that_says_how_to_authenticate(
    anonymous: httpx.Client, headers: dict[str, str]
) -> None:
    response = anonymous.get(f"/cart/{uuid.uuid4()}", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "Unauthorized" and response.json()["reason"]


def test_forged_expired_foreign_and_unsigned_tokens_are_refused(anonymous: httpx.Client) -> None:
    member = str(uuid.uuid4())
    refused = {
        "forged": token(member, secret="not-the-secret-but-long-enough-to-be-a-key"),
        "expired": token(member, exp=int(time.time()) - 5),
        "another issuer": token(member, iss="someone-else"),
        "another audience": token(member, aud="another-api"),
        "alg none": unsigned(member),
    }
    for why, value in refused.items():
        response = anonymous.get(f"/cart/{member}", headers=bearer(value))
        assert response.status_code == 401, (why, response.text)
        assert "www-authenticate" in response.headers, why


def test_a_member_reads_and_changes_only_their_own_cart_and_history(anonymous: httpx.Client) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    mine = anonymous.post(f"/cart/{alice}", json=a_pear(), headers=member_headers(alice))
    assert mine.status_code == 200, mine.text

    for method, path in [
        ("GET", f"/cart/{alice}"),
        ("GET", f"/cart/{alice}/events"),
        ("POST", f"/cart/{alice}/checkout"),
        ("DELETE", f"/cart/{alice}/productId/{uuid.uuid4()}"),
    ]:
        theirs = anonymous.request(method, path, headers=member_headers(bob))
        assert theirs.status_code == 403, (method, path, theirs.text)
        assert alice not in theirs.text and "items" not in theirs.json()  # leaks nothing of alice's cart
    assert anonymous.get(f"/cart/{alice}", headers=member_headers(alice)).json()["version"] == 1


def test_an_operator_acts_for_any_member_and_analytics_reads_the_read_models(anonymous: httpx.Client) -> None:
    member = str(uuid.uuid4())
    operator = bearer(token("support-desk", [ADMIN]))
    assert anonymous.post(f"/cart/{member}", json=a_pear(), headers=operator).status_code == 200
    assert anonymous.get(f"/cart/{member}/events", headers=operator).status_code == 200

    top = "/popular-items/top?date=2026-12-01"
    assert anonymous.get(top, headers=member_headers(member)).status_code == 403
    assert anonymous.get(top, headers=bearer(token("analyst", [ANALYTICS]))).status_code == 200
    assert anonymous.get(f"/cart/{member}", headers=bearer(token("analyst", [ANALYTICS]))).status_code == 403


def test_health_and_readiness_need_no_token(anonymous: httpx.Client) -> None:
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/ready").status_code == 200


def test_a_member_over_the_rate_limit_gets_429_with_retry_after(system: dict[str, Process]) -> None:
    port = free_port()
    limited = start_api(CART_API_PORT=str(port), CART_MEMBER_RATE_PER_S="1", CART_MEMBER_BURST="3")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready_at(url, [limited])
        member = str(uuid.uuid4())
        with httpx.Client(base_url=url, timeout=30, headers=member_headers(member)) as client:
            statuses = [client.get(f"/cart/{member}").status_code for _ in range(6)]
            assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:], statuses
            refused = client.get(f"/cart/{member}")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"] == "TooManyRequests"
            other = str(uuid.uuid4())  # another member is not held back by this one
            assert client.get(f"/cart/{other}", headers=member_headers(other)).status_code == 200
    finally:
        limited.stop()
