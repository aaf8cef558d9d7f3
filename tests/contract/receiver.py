"""A tiny loopback HTTP receiver that captures channel notifications for contract tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes


class NotificationReceiver:
    """Records every POST; answers 204, or what `answer(index)` says for the n-th POST: a
    status, or a status and a text body."""

    def __init__(
        self, answer: Callable[[int], int | tuple[int, bytes]] = lambda index: 204
    ) -> None:
        self.answer = answer
        self._captured: list[Captured] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    index = len(receiver._captured)
                    receiver._captured.append(Captured(self.path, dict(self.headers), body))
                answered = receiver.answer(index)
                if isinstance(answered, tuple):  # a status and a text body (Alipay's `success`)
                    status, payload = answered
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                else:
                    status = answered
                    self.send_response(status)
                    payload = b"" if status < 300 else b'{"code":"FAIL","message":"not now"}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def captured(self, path: str | None = None) -> list[Captured]:
        with self._lock:
            return [c for c in self._captured if path in (None, c.path)]

    def wait_for(self, path: str, count: int, timeout_s: float = 5.0) -> list[Captured]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.captured(path)
            if len(found) >= count:
                return found
            time.sleep(0.005)
        raise AssertionError(f"{len(self.captured(path))} of {count} notifications at {path}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
