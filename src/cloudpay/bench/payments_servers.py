"""The servers of `cloudpay bench payments`, each in its own process on loopback.

The API (`main.create_app`) and the bare FastAPI baseline are served by uvicorn on a listening
socket bound by the parent (so the port is known before the child starts) and passed down;
the WeChat Pay sandbox is `start_wechat_sandbox` in a process of its own. Each child prints one
JSON line when it is ready and stops when its stdin closes (so it never outlives the parent).
Processes, not threads: each server gets its own GIL, as it would in production; the CPU time
of each is read from /proc, so the benchmark can say where an order's cost goes.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from cloudpay.config import Settings

BARE_PATH = "/bench/bare"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
SERVERS_MODULE = "cloudpay.bench.payments_servers"  # children run `python -m` this


class BenchFailure(RuntimeError):
    """A server did not start, or no request got the answer it must get."""


# --- processes ----------------------------------------------------------------------------
def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads) so far; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A server subprocess: it prints one JSON line when ready and stops when stdin closes."""

    name: str
    process: subprocess.Popen[bytes]
    ready: dict[str, Any] = field(default_factory=dict)

    def cpu_s(self) -> float | None:
        return _cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)


def _spawn(name: str, role: str, config: dict[str, Any], sock: socket.socket | None) -> Child:
    fds = (sock.fileno(),) if sock is not None else ()
    if sock is not None:
        config = {**config, "fd": sock.fileno()}
    argv = [sys.executable, "-m", SERVERS_MODULE, "serve", role, json.dumps(config)]
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=fds, close_fds=True
    )
    child = Child(name, process)
    try:
        child.ready = _await_ready(child)
    except BaseException:
        child.stop()
        raise
    return child


def _await_ready(child: Child) -> dict[str, Any]:
    stdout = child.process.stdout
    assert stdout is not None
    readable, _, _ = select.select([stdout], [], [], READY_TIMEOUT_S)
    line = stdout.readline() if readable else b""
    if not line:
        raise BenchFailure(f"{child.name} did not start (exit code {child.process.poll()})")
    ready: dict[str, Any] = json.loads(line)
    return ready


@contextmanager
def served(name: str, role: str, config: dict[str, Any]) -> Iterator[tuple[Child, str]]:
    """A uvicorn server subprocess on a loopback socket bound here (so its port is known)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        child = _spawn(name, role, {**config, "base_url": url}, sock)
    finally:
        sock.close()  # the child holds its own copy
    try:
        yield child, url
    finally:
        child.stop()


@contextmanager
def sandbox_server(directory: Path) -> Iterator[tuple[Child, Path]]:
    credentials = directory / "wechat-sandbox.json"
    child = _spawn("wechat sandbox", "sandbox", {"credentials": str(credentials)}, None)
    try:
        yield child, credentials
    finally:
        child.stop()


# --- the served apps (run in the subprocesses) ------------------------------------------
def bare_app() -> FastAPI:
    """The baseline: FastAPI with one trivial POST (parse the JSON body, answer a small JSON)."""
    app = FastAPI()

    @app.post(BARE_PATH)
    async def bare(payload: dict[str, Any]) -> dict[str, Any]:
        return {"object": "bare", "out_trade_no": payload.get("out_trade_no"), "ok": True}

    return app


def api_settings(config: dict[str, Any]) -> Settings:
    return Settings(
        _env_file=None,  # not the project's .env
        env="dev",
        database_url=config["database_url"],
        public_base_url=config["base_url"],
        wechat_sandbox_credentials=config["wechat_credentials"],
        platform_private_key_path=config["platform_key_path"],
        log_level="WARNING",
    )


def _serve_uvicorn(app: Any, fd: int) -> None:
    """Serve `app` on the inherited listening socket until stdin closes."""
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    _stop_on_stdin_eof(lambda: setattr(server, "should_exit", True))
    ready = threading.Thread(target=_announce_when_started, args=(server,), daemon=True)
    ready.start()
    server.run(sockets=[sock])


def _announce_when_started(server: uvicorn.Server) -> None:
    while not server.started:
        time.sleep(0.01)
    _announce({"pid": os.getpid()})


def _announce(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _stop_on_stdin_eof(stop: Callable[[], None]) -> None:
    def watch() -> None:
        sys.stdin.buffer.read()
        stop()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def serve(role: str, config: dict[str, Any]) -> None:
    """What a child runs: `python -m cloudpay.bench.payments_servers serve ROLE CONFIG_JSON`."""
    from cloudpay.logging import configure_logging

    configure_logging("WARNING")
    if role == "sandbox":
        from cloudpay.channels.wechat.sandbox.server import start_wechat_sandbox

        sandbox = start_wechat_sandbox(credentials_path=Path(config["credentials"]))
        done = threading.Event()
        _stop_on_stdin_eof(done.set)
        _announce({"pid": os.getpid(), "base_url": sandbox.base_url})
        done.wait()
        sandbox.stop()
    elif role == "bare":
        _serve_uvicorn(bare_app(), config["fd"])
    elif role == "api":
        from cloudpay.main import create_app

        _serve_uvicorn(create_app(api_settings(config)), config["fd"])
    else:
        raise ValueError(f"unknown role {role!r}")


if __name__ == "__main__":  # python -m cloudpay.bench.payments_servers serve ROLE CONFIG_JSON
    serve(sys.argv[2], json.loads(sys.argv[3]))
