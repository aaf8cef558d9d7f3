"""The adapters' shared HTTP plumbing: client factory, transport-error mapping, closing."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from cloudpay.channels.bank.protocol import BankError
from cloudpay.channels.http import HttpAdapter, new_http_client, transport_error
from cloudpay.channels.protocol import ChannelError, ChannelErrorKind
from cloudpay.channels.sandbox_kit import LoopbackServer

REQUEST = httpx.Request("POST", "https://gateway.example/pay")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ConnectError("refused", request=REQUEST), ChannelErrorKind.UNAVAILABLE),
        (httpx.ConnectTimeout("slow", request=REQUEST), ChannelErrorKind.UNAVAILABLE),
        (httpx.PoolTimeout("busy", request=REQUEST), ChannelErrorKind.UNAVAILABLE),
        (httpx.ReadTimeout("late", request=REQUEST), ChannelErrorKind.TIMEOUT),
        (httpx.WriteTimeout("late", request=REQUEST), ChannelErrorKind.TIMEOUT),
        (httpx.ReadError("reset", request=REQUEST), ChannelErrorKind.TIMEOUT),
        (httpx.RemoteProtocolError("cut", request=REQUEST), ChannelErrorKind.TIMEOUT),
    ],
)
def test_transport_errors_map_to_whether_the_request_may_have_acted(
    error: httpx.TransportError, kind: ChannelErrorKind
) -> None:
    """Not sent at all → UNAVAILABLE (retry is safe); sent, no answer → TIMEOUT (query)."""
    mapped = transport_error(error, channel="UnionPay")
    assert type(mapped) is ChannelError
    assert mapped.kind is kind
    assert "UnionPay" in mapped.message
    assert mapped.outcome_unknown is (kind is ChannelErrorKind.TIMEOUT)


def test_transport_error_takes_the_channels_own_error_type() -> None:
    """The bank adapter's callers catch BankError: the mapping builds one."""
    mapped = transport_error(
        httpx.ConnectError("refused", request=REQUEST), channel="bank WFCB", error_type=BankError
    )
    assert isinstance(mapped, BankError)
    assert mapped.kind is ChannelErrorKind.UNAVAILABLE


def test_client_factory_sets_timeout_and_user_agent() -> None:
    """Every phase gets the configured timeout; a non-positive timeout is refused."""
    with new_http_client(timeout_s=2.5, user_agent="cloudpay-test/1") as client:
        assert client.timeout == httpx.Timeout(2.5)
        assert client.headers["User-Agent"] == "cloudpay-test/1"
    with pytest.raises(ValueError, match="timeout_s"):
        new_http_client(timeout_s=0, user_agent="x")


class EchoAdapter(HttpAdapter):
    def user_agent_seen(self, base_url: str) -> str:
        return self._send("GET", f"{base_url}/ua").text


@pytest.fixture
def echo_server() -> Iterator[LoopbackServer]:
    async def user_agent(request: Request) -> Response:
        return PlainTextResponse(request.headers.get("user-agent", ""))

    server = LoopbackServer.start(Starlette(routes=[Route("/ua", user_agent)]), name="echo")
    yield server
    server.stop()


def test_adapter_sends_its_user_agent_over_its_own_client(echo_server: LoopbackServer) -> None:
    """A request through the adapter's own client carries the channel's User-Agent."""
    with EchoAdapter(channel="Echo", user_agent="cloudpay-echo/1", timeout_s=5) as adapter:
        assert adapter.user_agent_seen(echo_server.base_url) == "cloudpay-echo/1"


def test_adapter_raises_the_mapped_error_when_nothing_listens() -> None:
    """A refused connection surfaces as the channel's UNAVAILABLE error, not an httpx one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    adapter = EchoAdapter(channel="Echo", user_agent="x", timeout_s=2, error_type=BankError)
    with adapter, pytest.raises(BankError) as caught:
        adapter.user_agent_seen(f"http://127.0.0.1:{closed_port}")
    assert caught.value.kind is ChannelErrorKind.UNAVAILABLE
    assert "Echo unreachable" in caught.value.message


def test_adapter_closes_its_own_client_but_never_the_callers() -> None:
    """Leaving `with` closes a client the adapter made; a client passed in stays usable."""
    theirs = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    with EchoAdapter(channel="Echo", user_agent="x", timeout_s=5, http=theirs):
        pass
    assert not theirs.is_closed
    assert theirs.get("https://anywhere.example/").status_code == 200
    theirs.close()
    own = EchoAdapter(channel="Echo", user_agent="x", timeout_s=5)
    with own:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        own.user_agent_seen("http://127.0.0.1:1")
