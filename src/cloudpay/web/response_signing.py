"""Platform signatures on merchant-facing responses (`Cloudpay-*` headers, as WeChat Pay v3).

Which responses are signed: every response of a route that depends on `SignedResponse` —
all merchant routes do, through `MerchantCaller`, and so does `GET /v1/platform/keys` — and
every `/v1/` response that no route produced (404, 413), so an SDK never meets an unsigned
answer on a merchant path. Errors are signed like successes, including the 401s of refused
signatures and the 400s FastAPI raises before any dependency runs. Operator routes are not
signed: operators authenticate otherwise and do not verify.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Depends
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudpay.kernel.clock import Clock

if TYPE_CHECKING:
    from cloudpay.web.platform_keys import PlatformKeyring

SIGNED_PREFIX = "/v1/"


async def signed_response() -> None:
    """Marks a route whose responses the platform signs (a dependency that does nothing;
    `async`, so FastAPI does not hop to the thread pool to run it)."""


SignedResponse = Depends(signed_response)


def dependant_calls(dependant: Dependant) -> set[Callable[..., Any]]:
    """Every dependency callable of a route, however deeply nested."""
    calls: set[Callable[..., Any]] = set()
    pending = list(dependant.dependencies)
    while pending:
        current = pending.pop()
        if current.call is not None:
            calls.add(current.call)
        pending.extend(current.dependencies)
    return calls


def route_depends_on(route: object, call: Callable[..., Any]) -> bool:
    return isinstance(route, APIRoute) and call in dependant_calls(route.dependant)


class ResponseSigningMiddleware:
    """Buffers a signed route's response, then adds the `Cloudpay-*` signature headers.

    Placed outermost, so it signs exactly the bytes that leave the server. The route is known
    once Starlette has routed the request (`scope["route"]`), i.e. by the response start.
    """

    def __init__(self, app: ASGIApp, *, keyring: PlatformKeyring, clock: Clock) -> None:
        self.app = app
        self.keyring = keyring
        self.clock = clock
        self._signed_routes: dict[int, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(SIGNED_PREFIX):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def sign_then_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if not self._should_sign(scope):
                    await send(message)
                    return
                start = message
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_signed(start, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, sign_then_send)

    def _should_sign(self, scope: Scope) -> bool:
        route = scope.get("route")
        if route is None:
            return True
        known = self._signed_routes.get(id(route))
        if known is None:
            known = self._signed_routes[id(route)] = route_depends_on(route, signed_response)
        return known

    async def _send_signed(self, start: Message, body: bytes, send: Send) -> None:
        headers = list(start.get("headers", []))
        for name, value in self.keyring.sign_now(body, self.clock).items():
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
