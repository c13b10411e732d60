"""Who is asking: a bearer JWT, checked with PyJWT (signature, expiry, issuer, audience; the algorithms pinned by the
settings, never `none`), whose subject is the member id.

A member reads and changes only their own cart and history; a token with scope `carts:admin` (operators, support)
may act for any member; scope `analytics` reads the read models (`carts:admin` may too). Keys come from the
settings: a shared secret (HS256: `CART_AUTH_SECRET`, or the file `CART_AUTH_SECRET_FILE`, which `cart run`
generates under `.state/` for local use), or a PEM public key or a JWKS file for tokens issued elsewhere
(RS256/ES256). A missing, malformed, forged or expired token is a 401 with `WWW-Authenticate: Bearer`; a valid
token that may not do what it asks is a 403. `CART_AUTH=off` lets every request act as an operator: for
development only, and the API says so loudly at start.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt

from app.settings import Settings

log = logging.getLogger(__name__)

ADMIN = "carts:admin"
ANALYTICS = "analytics"
METRICS = "metrics"
SCOPES = (ADMIN, ANALYTICS, METRICS)


class AuthError(Exception):
    """A request that may not proceed: 401 (who are you?) or 403 (not this)."""

    def __init__(self, status_code: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.error = error
        self.reason = reason


def unauthorized(reason: str) -> AuthError:
    return AuthError(401, "Unauthorized", reason)


def forbidden(reason: str) -> AuthError:
    return AuthError(403, "Forbidden", reason)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's subject and scopes."""

    subject: str
    scopes: frozenset[str]

    def may_act_for(self, member_id: UUID) -> bool:
        return ADMIN in self.scopes or self.subject == str(member_id)

    def check_member(self, member_id: UUID) -> None:
        if not self.may_act_for(member_id):
            # The same answer whether the cart exists or not: nothing about another member leaks.
            raise forbidden("this token may only act for its own member's cart")

    def check_scope(self, *any_of: str) -> None:
        if not self.scopes & set(any_of):
            raise forbidden(f"this needs a token with scope {' or '.join(any_of)}")


ANYONE = Principal("anonymous (CART_AUTH=off)", frozenset(SCOPES))


def default_secret_file(settings: Settings) -> Path:
    return settings.auth_secret_file or settings.state_dir / "auth" / "signing-key"


def ensure_signing_key(settings: Settings) -> Path:
    """The local signing key's file, made (random, readable by its owner only) if there is none yet."""
    import secrets

    path = default_secret_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path


class TokenChecker:
    """Turns a bearer token into a Principal, or says why not (AuthError 401)."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.auth_issuer
        self.audience = settings.auth_audience
        self._jwks: jwt.PyJWKSet | None = None
        self._key: Any = None
        if settings.auth_jwks_file is not None:
            self._jwks = jwt.PyJWKSet.from_json(settings.auth_jwks_file.read_text())
            default_algorithms = "RS256,ES256"
        elif settings.auth_public_key_file is not None:
            self._key = settings.auth_public_key_file.read_text()
            default_algorithms = "RS256,ES256"
        else:
            self._key = signing_secret(settings)
            default_algorithms = "HS256"
        self.algorithms = [a.strip() for a in (settings.auth_algorithms or default_algorithms).split(",") if a.strip()]
        if not self.algorithms or any(a.lower() == "none" for a in self.algorithms):
            raise ValueError("CART_AUTH_ALGORITHMS must name signing algorithms, and never 'none'")

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one checker per process; tokens are checked again on expiry below)
    def _claims(self, token: str) -> tuple[dict[str, Any], float]:
        key = self._key
        if self._jwks is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            matching = [k for k in self._jwks.keys if k.key_id == kid]
            if not matching:
                raise jwt.InvalidKeyError(f"no key {kid!r} in the JWKS file")
            key = matching[0].key
        claims = jwt.decode(
            token,
            key,
            algorithms=self.algorithms,
            audience=self.audience,
            issuer=self.issuer,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
        return claims, float(claims["exp"])

    def principal(self, authorization: str | None) -> Principal:
        import time

        if not authorization:
            raise unauthorized("a bearer token is needed (Authorization: Bearer <token>; `cart token` makes one)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        try:
            claims, expires = self._claims(token.strip())
        except jwt.ExpiredSignatureError as error:
            raise unauthorized("the token has expired") from error
        except jwt.PyJWTError as error:
            raise unauthorized(f"the token is not valid: {error}") from error
        if expires <= time.time():  # a cached answer for a token that has since expired
            raise unauthorized("the token has expired")
        scopes = claims.get("scope", "")
        if not isinstance(scopes, str):
            raise unauthorized("the token's scope must be a space-separated string")
        return Principal(str(claims["sub"]), frozenset(scopes.split()))


def signing_secret(settings: Settings) -> str:
    if settings.auth_secret is not None:
        return settings.auth_secret.get_secret_value()
    path = default_secret_file(settings)
    if not path.exists():
        raise ValueError(
            f"no signing key: set CART_AUTH_SECRET, or create {path} (`cart run` and `cart token` do), "
            "or give CART_AUTH_PUBLIC_KEY_FILE / CART_AUTH_JWKS_FILE for tokens issued elsewhere"
        )
    return path.read_text().strip()


def mint(settings: Settings, subject: str, scopes: list[str], ttl_s: int) -> str:
    """A token signed with the local secret (for `cart token`, the shell, the bench, the tests)."""
    import time

    now = int(time.time())
    claims = {
        "sub": subject,
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "iat": now,
        "exp": now + ttl_s,
        "scope": " ".join(scopes),
    }
    return jwt.encode(claims, signing_secret(settings), algorithm="HS256")
