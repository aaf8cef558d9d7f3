"""The sandboxes' shared kit: loopback server, scheduler and retrying notifier."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cloudpay.channels.sandbox_kit import (
    AttemptRecord,
    LoopbackServer,
    RetryingNotifier,
    SandboxHandle,
    Scheduler,
)
from cloudpay.kernel.clock import SystemClock

FAST = 0.0001  # time_scale: a sandbox second is 0.1 ms


def _eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


class Receiver:
    """A notify_url on loopback answering each POST with the next scripted (status, body)."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.answers = list(answers)  # the last one repeats
        self.received: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/notify", self._notify, methods=["POST"])])
        self.server = LoopbackServer.start(app, name="test receiver")
        self.url = f"{self.server.base_url}/notify"

    async def _notify(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.received.append(body)
            self.headers.append(dict(request.headers))
            status, answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return Response(answer, status_code=status)


@pytest.fixture
def receiver_factory() -> Iterator[Callable[[list[tuple[int, bytes]]], Receiver]]:
    made: list[Receiver] = []

    def make(answers: list[tuple[int, bytes]]) -> Receiver:
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.stop()


@dataclass(frozen=True)
class Note:
    url: str
    body: bytes
    order_id: str


@dataclass(frozen=True, kw_only=True)
class NoteAttempt(AttemptRecord):
    order_id: str


@dataclass(frozen=True, kw_only=True)
class AckedAttempt(NoteAttempt):
    @property
    def delivered(self) -> bool:
        return self.status_code == 200 and self.answer == b"success"


class NoteNotifier(RetryingNotifier[Note, NoteAttempt]):
    def __init__(self, schedule_s: tuple[float, ...], **options: object) -> None:
        super().__init__(
            clock=SystemClock(),
            schedule_s=schedule_s,
            attempt_timeout_s=2.0,
            name="test-notifier",
            **options,  # type: ignore[arg-type]
        )

    def _headers(self, delivery: Note) -> dict[str, str]:
        return {"X-Order": delivery.order_id}

    def _record(self, delivery: Note, outcome: AttemptRecord) -> NoteAttempt:
        return NoteAttempt(order_id=delivery.order_id, **outcome.base_fields())

    def _filed_under(self, attempt: NoteAttempt) -> str:
        return attempt.order_id


class AckNotifier(NoteNotifier):
    def _record(self, delivery: Note, outcome: AttemptRecord) -> NoteAttempt:
        return AckedAttempt(order_id=delivery.order_id, **outcome.base_fields())


# ------------------------------------------------------------ LoopbackServer, SandboxHandle


def _pong_app() -> Starlette:
    async def pong(request: Request) -> Response:
        return Response(b"pong")

    return Starlette(routes=[Route("/ping", pong)])


def test_loopback_server_serves_on_a_free_port_until_stopped() -> None:
    """`port=0` gets a real port in `base_url`; after `stop` nothing listens there."""
    server = LoopbackServer.start(_pong_app(), name="pong")
    assert server.base_url.startswith("http://127.0.0.1:")
    assert not server.base_url.endswith(":0")
    assert httpx.get(f"{server.base_url}/ping").content == b"pong"
    server.stop()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/ping", timeout=1)


def test_loopback_server_that_cannot_bind_says_which_it_was() -> None:
    """A taken port fails the start with a RuntimeError naming the server, not a hang, after
    `on_failure` has cleaned up what was started for the app."""
    cleaned_up: list[bool] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"pong sandbox did not start on 127.0.0.1:{port}"):
            LoopbackServer.start(
                _pong_app(),
                name="pong sandbox",
                port=port,
                on_failure=lambda: cleaned_up.append(True),
            )
    assert cleaned_up == [True]


def test_sandbox_handle_stops_server_then_background_work_on_leaving_with() -> None:
    """Leaving `with` stops the server and then runs `on_stop` once."""
    stopped: list[bool] = []
    server = LoopbackServer.start(_pong_app(), name="pong")
    with SandboxHandle(server, on_stop=lambda: stopped.append(server.running)) as handle:
        assert handle.base_url == server.base_url
        assert httpx.get(f"{handle.base_url}/ping").status_code == 200
    assert stopped == [False]


def test_sandbox_handle_wait_returns_once_the_server_stops() -> None:
    """`wait` blocks while the server runs and returns when another thread stops it."""
    handle = SandboxHandle(LoopbackServer.start(_pong_app(), name="pong"), on_stop=lambda: None)
    threading.Timer(0.2, handle.stop).start()
    started = time.monotonic()
    handle.wait()
    assert time.monotonic() - started >= 0.15


# ------------------------------------------------------------ Scheduler


def test_scheduler_runs_jobs_in_due_order_at_scaled_time() -> None:
    """Delays are sandbox seconds × time_scale: 2000 s at 0.0001 is 0.2 s, and order holds."""
    ran: list[str] = []
    scheduler = Scheduler(time_scale=FAST)
    try:
        started = time.monotonic()
        scheduler.later(2000, lambda: ran.append("late"))
        scheduler.later(0, lambda: ran.append("now"))
        assert scheduler.pending() >= 1
        _eventually(lambda: len(ran) == 2)
        assert ran == ["now", "late"]
        assert 0.15 <= time.monotonic() - started < 3
        assert scheduler.pending() == 0
    finally:
        scheduler.stop()


def test_scheduler_queue_is_bounded_and_stop_drops_what_waits() -> None:
    """A full queue refuses more jobs; a stopped scheduler runs nothing that was waiting."""
    ran: list[int] = []
    scheduler = Scheduler(time_scale=1.0, max_pending=2)
    scheduler.later(3600, lambda: ran.append(1))
    scheduler.later(3600, lambda: ran.append(2))
    with pytest.raises(RuntimeError, match="queue is full"):
        scheduler.later(3600, lambda: ran.append(3))
    scheduler.stop()
    assert scheduler.stopping
    assert ran == []


def test_scheduler_refuses_a_time_scale_that_is_not_positive() -> None:
    """time_scale 0 would fire every retry at once: refused."""
    with pytest.raises(ValueError, match="time_scale"):
        Scheduler(time_scale=0)


# ------------------------------------------------------------ RetryingNotifier


def test_notifier_retries_until_a_2xx_and_numbers_the_attempts(
    receiver_factory: Callable[[list[tuple[int, bytes]]], Receiver],
) -> None:
    """Two 503s then a 204: three attempts on the schedule, the last delivered, then quiet."""
    receiver = receiver_factory([(503, b""), (503, b""), (204, b"")])
    notifier = NoteNotifier((1.0, 1.0, 1.0, 1.0), time_scale=FAST)
    try:
        notifier.submit(Note(receiver.url, b"hello", "ord_1"))
        _eventually(lambda: len(notifier.attempts()) == 3)
        time.sleep(0.05)
        attempts = notifier.attempts("ord_1")
        assert [a.attempt for a in attempts] == [1, 2, 3]
        assert [a.status_code for a in attempts] == [503, 503, 204]
        assert [a.delivered for a in attempts] == [False, False, True]
        assert receiver.received == [b"hello"] * 3
        assert receiver.headers[0]["x-order"] == "ord_1"
        assert notifier.attempts("ord_other") == []
        assert notifier.pending() == 0
    finally:
        notifier.stop()


def test_notifier_gives_up_after_the_schedule(
    receiver_factory: Callable[[list[tuple[int, bytes]]], Receiver],
) -> None:
    """A receiver that never acknowledges gets 1 + len(schedule) attempts and no more."""
    receiver = receiver_factory([(500, b"no")])
    notifier = NoteNotifier((1.0, 2.0), time_scale=FAST)
    try:
        notifier.submit(Note(receiver.url, b"x", "ord_2"))
        _eventually(lambda: len(notifier.attempts()) == 3)
        time.sleep(0.1)
        assert len(receiver.received) == 3
        assert notifier.pending() == 0
    finally:
        notifier.stop()


def test_notifier_lets_the_record_decide_what_is_acknowledged(
    receiver_factory: Callable[[list[tuple[int, bytes]]], Receiver],
) -> None:
    """With an Alipay-style record, a 200 saying `fail` is retried and `success` ends it."""
    receiver = receiver_factory([(200, b"fail"), (200, b"success")])
    notifier = AckNotifier((1.0, 1.0, 1.0), time_scale=FAST)
    try:
        notifier.submit(Note(receiver.url, b"x", "ord_3"))
        _eventually(lambda: len(notifier.attempts()) == 2)
        time.sleep(0.05)
        assert [a.answer for a in notifier.attempts()] == [b"fail", b"success"]
        assert len(receiver.received) == 2
    finally:
        notifier.stop()


def test_notifier_records_a_transport_error_and_retries() -> None:
    """A notify_url nobody listens on: attempts keep the error, no status, and are retried."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    notifier = NoteNotifier((1.0,), time_scale=FAST)
    try:
        notifier.submit(Note(f"http://127.0.0.1:{closed_port}/n", b"x", "ord_4"))
        _eventually(lambda: len(notifier.attempts()) == 2)
        first = notifier.attempts()[0]
        assert first.status_code is None
        assert "ConnectError" in (first.error or "")
        assert not first.delivered
    finally:
        notifier.stop()


def test_notifier_on_a_shared_scheduler_leaves_it_running() -> None:
    """Stopping a notifier that borrowed a scheduler stops its HTTP, not the scheduler."""
    scheduler = Scheduler(time_scale=FAST)
    notifier = NoteNotifier((1.0,), scheduler=scheduler)
    notifier.stop()
    ran: list[bool] = []
    try:
        scheduler.later(0, lambda: ran.append(True))
        _eventually(lambda: ran == [True])
    finally:
        scheduler.stop()
