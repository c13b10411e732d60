"""The cart command routes' common case, answered without FastAPI's routing, request parsing and dependency solving.

Under load those were about half of the API's profile samples: the routes' own work (checking the token, asking
the owner through Kafka) was a small part of each request (docs/benchmarks.md, 2026-12-05). A well-formed request
to a command route (canonical UUIDs in the path, a JSON body that its model takes, a valid Idempotency-Key, a token
that acts for the member, within the member's rate) is answered here by the route's own function (the same code
FastAPI would call, with the same arguments), and an error it raises by the app's own exception handler. Anything
else, and every other route, goes to FastAPI untouched (the body replayed), so every refusal keeps the exact answer
the OpenAPI document gives for it.

It sits inside the app's own middleware (body limit, client rate, metrics), which sees every request as before;
`scope["route"]` is set to the route the request matched, which the metrics label requests with.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import orjson
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import cart_routes
from app.api.auth import ANYONE, AuthError
from app.api.deps import MemberAccess
from app.api.limits import TooManyRequests
from app.api.models import AddItemBody, AdjustQuantityBody

UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
KEY = re.compile(cart_routes.IDEMPOTENCY_KEY)


class Refer(Exception):
    """Not the common case: FastAPI answers this request."""


class Op:
    """One command route: its method, path pattern, the route object (for the metrics' label), what its body must
    be (None: it takes none) and how to call its function."""

    def __init__(self, method: str, pattern: str, path: str, model: type[BaseModel] | None, call: Call) -> None:
        self.method, self.pattern, self.path, self.model, self.call = method, re.compile(pattern), path, model, call
        self.route: APIRoute | None = None


Call = Callable[[MemberAccess, UUID, UUID | None, Any, str | None], Awaitable[Response]]


def json_body(body: bytes, headers: list[tuple[bytes, bytes]], model: type[BaseModel]) -> Any:
    types = [v for k, v in headers if k == b"content-type"]
    if len(types) != 1 or types[0].split(b";")[0].strip().lower() != b"application/json":
        raise Refer
    try:
        return model.model_validate(orjson.loads(body))  # as FastAPI: the parsed JSON validated against the model
    except (orjson.JSONDecodeError, ValidationError) as error:
        raise Refer from error


def operations() -> list[Op]:
    cart, item = f"^/cart/({UUID_TEXT})", f"/productId/({UUID_TEXT})$"
    routes = cart_routes

    async def add(access: MemberAccess, member: UUID, _: UUID | None, body: Any, key: str | None) -> Response:
        return await routes.add_item(member, body, access, key)

    async def remove(access: MemberAccess, member: UUID, product: UUID | None, _: Any, key: str | None) -> Response:
        assert product is not None
        return await routes.remove_item(member, product, access, key)

    async def adjust(access: MemberAccess, member: UUID, product: UUID | None, body: Any, key: str | None) -> Response:
        assert product is not None
        return await routes.adjust_quantity(member, product, body, access, key)

    async def checkout(access: MemberAccess, member: UUID, _: UUID | None, __: Any, key: str | None) -> Response:
        return await routes.checkout(member, access, key)

    async def get_cart(access: MemberAccess, member: UUID, _: UUID | None, __: Any, key: str | None) -> Response:
        if key is not None:
            raise Refer  # the route takes no key
        return await routes.get_cart(member, access)

    return [
        Op("POST", cart + "$", "/cart/{memberId}", AddItemBody, add),
        Op("PUT", cart + "$", "/cart/{memberId}", AddItemBody, add),
        Op("GET", cart + "$", "/cart/{memberId}", None, get_cart),
        Op("POST", cart + "/checkout$", "/cart/{memberId}/checkout", None, checkout),
        Op("DELETE", cart + item, "/cart/{memberId}/productId/{productId}", None, remove),
        Op("PATCH", cart + item, "/cart/{memberId}/productId/{productId}", AdjustQuantityBody, adjust),
    ]


class CommandFastPath:
    """See the module's docstring. `taken` counts the requests answered here (tests look at it)."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app, self.api = app, api
        self.ops: dict[str, list[Op]] = {}
        for op in operations():
            self.ops.setdefault(op.method, []).append(op)
        self.taken = 0

    def _route(self, op: Op) -> APIRoute:
        if op.route is None:  # the router's own route object: the app includes it as it is
            op.route = next(
                r
                for r in cart_routes.router.routes
                if isinstance(r, APIRoute) and r.path == op.path and op.method in (r.methods or ())
            )
        return op.route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = next(
            ((op, m) for op in self.ops.get(scope["method"], ()) if (m := op.pattern.match(scope["path"]))), None
        )
        if found is None:
            await self.app(scope, receive, send)
            return
        op, match = found
        body, complete = await read_body(receive)
        if not complete:
            return  # the client went away mid-body: nothing is acted on (as BodyLimit does)
        try:
            response = await self._answer(scope, op, match, body)
        except Refer:
            await self.app(scope, replaying(body, receive), send)
            return
        self.taken += 1
        await response(scope, receive, send)

    async def _answer(self, scope: Scope, op: Op, match: re.Match[str], body: bytes) -> Response:
        # Everything that can send the request to FastAPI comes before anything with an effect (the member's rate).
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        keys = [v for k, v in headers if k == b"idempotency-key"]
        if len(keys) > 1 or (keys and not KEY.match(keys[0].decode("latin-1"))):
            raise Refer
        key = keys[0].decode("latin-1") if keys else None
        member = UUID(match.group(1))
        product = UUID(match.group(2)) if match.re.groups > 1 else None
        parsed = json_body(body, headers, op.model) if op.model is not None else None
        state = self.api.state
        tokens = [v for k, v in headers if k == b"authorization"]
        if len(tokens) > 1:
            raise Refer
        try:
            checker = state.tokens
            principal = (
                ANYONE if checker is None else checker.principal(tokens[0].decode("latin-1") if tokens else None)
            )
            principal.check_member(member)
            state.member_limits.take(str(member))
        except (AuthError, TooManyRequests) as error:
            raise Refer from error  # FastAPI's dependency finds the same, and answers it as the document says
        scope["route"] = self._route(op)
        try:
            return await op.call(MemberAccess(state.backends, principal), member, product, parsed, key)
        except Exception as error:
            handler = next(
                (self.api.exception_handlers[c] for c in type(error).__mro__ if c in self.api.exception_handlers), None
            )
            if handler is None:
                raise
            answered = handler(Request(scope), error)
            return await answered if inspect.isawaitable(answered) else answered


async def read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body (BodyLimit, outside, has read and bounded it already) and whether it arrived whole."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"", False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for an app that reads a body already read: the body first, then whatever the client sends next."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
