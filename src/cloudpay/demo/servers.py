"""Loopback servers for the demo: our API, and a merchant's webhook receiver that can be down."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from cloudpay.sdk import SignatureVerificationError, verify_webhook

STARTUP_TIMEOUT_S = 10.0


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
