"""Request ids and a body-size bound, as plain ASGI middleware (no per-request task hop)."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloudpay.kernel.ids import new_id

MAX_BODY_BYTES = 4 * 1024 * 1024  # a full batch of 8,189 transfers is about 2.5 MB


class RequestContextMiddleware:
    """Gives each request an id (echoed as `Request-Id`), binds it to logs, bounds the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if _declared_length(scope) > MAX_BODY_BYTES:
            await _too_large(request_id, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return MAX_BODY_BYTES + 1
    return 0


async def _too_large(request_id: str, send: Send) -> None:
    body = (
        '{"error":{"type":"invalid_request_error","code":"body_too_large","message":'
        f'"request body exceeds {MAX_BODY_BYTES} bytes","param":null,'
        f'"request_id":"{request_id}"}}}}'
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
