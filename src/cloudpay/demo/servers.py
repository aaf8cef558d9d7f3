"""Loopback servers for the demo: our API, and a merchant's webhook receiver that can be down."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from cloudpay.sdk import SignatureVerificationError, verify_webhook

STARTUP_TIMEOUT_S = 10.0
OPERATOR_TIMEOUT_S = 60.0  # a settlement run answers when its payouts are sent


@dataclass
class RunningServer:
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(app: ASGIApp, *, port: int = 0, host: str = "127.0.0.1") -> RunningServer:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{port} did not start")
        time.sleep(0.01)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(server, thread, f"http://{host}:{bound_port}")


@dataclass
class WebhookReceiver:
    """A merchant's endpoint: verifies each webhook, answers 503 while `down`."""

    platform_keys: Callable[[], dict[str, str]]
    down: bool = True
    received: list[dict[str, Any]] = field(default_factory=list)
    refused_while_down: int = 0
    rejected_signatures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/webhooks/cloudpay", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            if self.down:
                self.refused_while_down += 1
                return Response("maintenance", status_code=503)
        try:
            event = verify_webhook(dict(request.headers), body, self.platform_keys())
        except SignatureVerificationError:
            with self._lock:
                self.rejected_signatures += 1
            return Response("bad signature", status_code=400)
        with self._lock:
            self.received.append(event)
        return JSONResponse({"received": event.get("id")})

    @property
    def unique_events(self) -> int:
        with self._lock:
            return len({e.get("id") for e in self.received})


class OperatorCallFailed(RuntimeError):
    """The API refused a call the demo expected to succeed: the demo stops and says why."""


@dataclass
class OperatorApi:
    """The platform operator at work: bearer token, an Idempotency-Key on every write."""

    http: httpx.Client

    @classmethod
    def connect(cls, base_url: str, token: str) -> OperatorApi:
        headers = {"Authorization": f"Bearer {token}"}
        return cls(httpx.Client(base_url=base_url, headers=headers, timeout=OPERATOR_TIMEOUT_S))

    def get(self, path: str, **params: Any) -> Any:
        return self.checked(self.http.get(path, params=params))

    def post(self, path: str, body: Any = None, *, key: str | None = None) -> Any:
        return self.checked(self.send("POST", path, body, key=key))

    def put(self, path: str, body: Any) -> Any:
        return self.checked(self.http.put(path, json=body))

    def send(self, method: str, path: str, body: Any = None, *, key: str | None = None) -> Any:
        """The raw answer, for a call the demo expects may be refused."""
        headers = {"Idempotency-Key": key or f"demo-{uuid.uuid4().hex}"}
        return self.http.request(method, path, json=body, headers=headers)

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def checked(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise OperatorCallFailed(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text[:300]}"
            )
        return response.json()
