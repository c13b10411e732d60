"""The FastAPI application: `uvicorn app.api.main:create_app --factory` (or `cart api`).

Status codes: 200 with the cart and the event(s); 409 `{"error": "<RejectionName>", "reason": ...}` for a rule
violation; 422 with field-level reasons for malformed input; 413 for a body over 64 KiB; 503 with a reason when
Kafka, Cassandra or the cart worker does not answer in time. Never a 500 for anything a client sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from cassandra import OperationTimedOut
from cassandra.cluster import NoHostAvailable
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import ADMIN, METRICS, AuthError, TokenChecker
from app.api.cart_routes import CommandRefused
from app.api.cart_routes import router as cart_router
from app.api.deps import Backends
from app.api.fast_path import CommandFastPath, replaying
from app.api.limits import Buckets, TooManyRequests
from app.api.read_routes import router as read_router
from app.api.views import AUTHENTICATED, Health, Readiness, errors
from app.command_side.command_bus import CartServiceUnavailable, CommandBus
from app.runtime import Runtime, settle_garbage_collection
from app.settings import Settings, get_settings
from app.stores.cassandra import StoreUnavailable
from app.stores.migrations import migrate
from app.streams.lag import consumer_lag

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
RETRY_AFTER_S = "1"

REQUESTS = Counter("cart_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("cart_http_request_seconds", "HTTP request latency", ["method", "route"])
POSITION = Gauge(
    "cart_consumer_position", "Offset the workers have applied (committed)", ["topic", "partition", "agents"]
)
CONSUMER_LAG = Gauge("cart_consumer_lag", "Messages not yet applied", ["topic", "partition", "agents"])


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413, whether it declares its length or streams in chunks."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            response = JSONResponse(error_body("PayloadTooLarge", self.reason), status_code=413)
            await response(scope, receive, send)
            return
        # Read the body here (at most limit + one chunk is held), so an oversized one never reaches a route.
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away mid-body (or was timed out): what arrived is never acted on
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                response = JSONResponse(error_body("PayloadTooLarge", self.reason), status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, replaying(body, receive), send)

    @property
    def reason(self) -> str:
        return f"the body must be at most {self.limit} bytes (64 KiB)"


class Metrics:
    """Counts requests and their latency per route, and gives every 503 a `Retry-After` (pure ASGI: a
    BaseHTTPMiddleware costs a task per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if status == 503 and not any(name.lower() == b"retry-after" for name, _ in headers):
                    # Every 503 is temporary here (a worker taking over, a store coming back): say when to retry.
                    message = {**message, "headers": [*headers, (b"retry-after", RETRY_AFTER_S.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], path, str(status)).inc()
            LATENCY.labels(scope["method"], path).observe(time.perf_counter() - started)


class ClientLimit:
    """The per-client-address rate limit (app/api/limits.py), before anything else is done for the request."""

    def __init__(self, app: ASGIApp, buckets: Buckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            try:
                self.buckets.take(scope["client"][0])
            except TooManyRequests as error:
                response = JSONResponse(
                    error_body("TooManyRequests", error.reason),
                    status_code=429,
                    headers={"Retry-After": str(int(error.retry_after_s))},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def error_body(error: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "reason": reason, **extra}


def allowed_methods(request: Request) -> list[str]:
    """The methods the published document gives this request's path (Starlette's own Allow names one route's)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(request.app.state, "allowed", None)
    if table is None:
        table = [
            (
                re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"),
                sorted(m.upper() for m in ops),
            )
            for path, ops in request.app.openapi()["paths"].items()
        ]
        request.app.state.allowed = table
    return next((methods for pattern, methods in table if pattern.match(request.url.path)), [])


def create_app(settings: Settings | None = None, fast_path: bool = True) -> FastAPI:
    """The API. `fast_path=False` leaves every request to FastAPI (tests compare the two)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings)
        bus = CommandBus(settings)
        await bus.start()
        runtime = Runtime(settings, migrate_first=False)
        app.state.backends = Backends(settings, bus, runtime)
        settle_garbage_collection()
        try:
            yield
        finally:
            await bus.stop()
            await runtime.aclose()

    app = FastAPI(
        title="Shopping cart",
        description="An event-sourced, CQRS shopping cart. Commands go through Kafka to the owner of the cart.",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.include_router(cart_router)
    app.include_router(read_router)
    if settings.auth == "off":
        log.warning("CART_AUTH=off: EVERY REQUEST ACTS AS AN OPERATOR, with no token. For development only.")
        app.state.tokens = None
    else:
        app.state.tokens = TokenChecker(settings)  # fails at start, with the reason, if there is no key
    app.state.member_limits = Buckets("member", settings.member_rate_per_s, settings.member_burst)

    if fast_path:  # innermost of the app's own middleware: body limit, client rate and metrics see every request
        app.add_middleware(CommandFastPath, api=app)
    app.add_middleware(Metrics)
    app.add_middleware(ClientLimit, buckets=Buckets("client", settings.client_rate_per_s, settings.client_burst))
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(AuthError)
    async def auth_error(_request: Request, error: AuthError) -> JSONResponse:
        # 401 says how to authenticate (RFC 6750); 403 does not: the token was understood.
        headers = {"WWW-Authenticate": 'Bearer realm="shopping-cart"'} if error.status_code == 401 else None
        return JSONResponse(error_body(error.error, error.reason), status_code=error.status_code, headers=headers)

    @app.exception_handler(TooManyRequests)
    async def too_many(_request: Request, error: TooManyRequests) -> JSONResponse:
        headers = {"Retry-After": str(int(error.retry_after_s))}
        return JSONResponse(error_body("TooManyRequests", error.reason), status_code=429, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            # FastAPI's answer to a body it cannot even decode (not UTF-8): malformed input, as invalid JSON is.
            fields = [{"field": "body", "reason": "the body is not JSON text (UTF-8)"}]
            return JSONResponse(error_body("ValidationError", "body: " + fields[0]["reason"], fields=fields), 422)
        body = error_body("HTTPError", str(error.detail))
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Starlette's Allow names the methods of the first route on the path only (one route per method here).
            headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "GET")
        return JSONResponse(body, status_code=error.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        fields = [{"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in error.errors()]
        reason = "; ".join(f"{f['field']}: {f['reason']}" for f in fields)
        return JSONResponse(error_body("ValidationError", reason, fields=fields), status_code=422)

    @app.exception_handler(CartServiceUnavailable)
    async def cart_service_unavailable(_request: Request, error: CartServiceUnavailable) -> JSONResponse:
        return JSONResponse(error_body("ServiceUnavailable", str(error)), status_code=503)

    @app.exception_handler(CommandRefused)
    async def command_refused(_request: Request, error: CommandRefused) -> JSONResponse:
        return JSONResponse(error.body, status_code=error.status_code)

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(OperationTimedOut)
    @app.exception_handler(NoHostAvailable)
    @app.exception_handler(OSError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def store_unavailable(_request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(error_body("ServiceUnavailable", f"a store did not answer: {error}"), status_code=503)

    @app.get("/health", tags=["operations"], response_model=Health, responses=errors(429))
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["operations"],
        response_model=Readiness,
        responses={**errors(429), 503: {"model": Readiness, "description": "not ready: each check says why"}},
    )
    async def ready(request: Request) -> JSONResponse:
        """Kafka and Cassandra answer and a cart worker owns the command partitions; PostgreSQL is reported too."""
        checks = await request.app.state.backends.readiness()
        ok = all(checks[name] is True for name in ("cassandra", "kafka", "workers"))
        return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={
            200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
            **errors(*AUTHENTICATED),
        },
    )
    async def metrics(request: Request) -> Response:
        """Prometheus metrics, with each consumer's position and lag per topic and partition. Open unless
        `CART_AUTH_METRICS` is set; then a token with scope `metrics` or `carts:admin`."""
        if settings.auth_metrics and request.app.state.tokens is not None:
            request.app.state.tokens.principal(request.headers.get("authorization")).check_scope(METRICS, ADMIN)
        try:
            for row in await asyncio.wait_for(consumer_lag(settings), 5):
                labels = (row.topic, str(row.partition), row.agents)
                POSITION.labels(*labels).set(row.committed if row.committed is not None else -1)
                CONSUMER_LAG.labels(*labels).set(row.lag)
        except Exception as error:  # metrics must answer even when Kafka does not
            log.warning("consumer lag unavailable: %s", error)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the API serves at /openapi.json (the same whatever the settings: no store is reached).
    `docs/openapi.json` is a copy, kept by `cart openapi --write`; a test fails when the two differ."""
    settings = get_settings().model_copy(update={"auth": "on", "auth_secret": SecretStr("only-for-the-document")})
    document: dict[str, Any] = create_app(settings).openapi()
    return document
