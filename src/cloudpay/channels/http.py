"""The HTTP plumbing every channel adapter shares: the httpx client, transport errors mapped to
`ChannelError` kinds, and closing what the adapter opened.

Transport errors are mapped by what they say about the request (httpx's exception hierarchy,
https://www.python-httpx.org/exceptions/):
- no connection, a connect or pool timeout → `UNAVAILABLE`: nothing reached the channel, so a
  retry (or another channel) is safe;
- a read or write timeout → `TIMEOUT`, and any other transport error (the connection lost
  mid-answer) too: the request may have been acted on, so the caller queries before acting.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Self

import httpx

from cloudpay.channels.protocol import ChannelError, ChannelErrorKind

_NOT_SENT = (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError)


def new_http_client(*, timeout_s: float, user_agent: str) -> httpx.Client:
    """A client with our timeout on every phase and our User-Agent on every request."""
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    return httpx.Client(timeout=httpx.Timeout(timeout_s), headers={"User-Agent": user_agent})


def transport_error(
    error: httpx.TransportError,
    *,
    channel: str,
    error_type: type[ChannelError] = ChannelError,
) -> ChannelError:
    """The `error_type` for a request to `channel` (as messages name it) that got no answer."""
    if isinstance(error, _NOT_SENT):
        return error_type(ChannelErrorKind.UNAVAILABLE, f"{channel} unreachable: {error!r}")
    if isinstance(error, httpx.TimeoutException):
        return error_type(ChannelErrorKind.TIMEOUT, f"no answer from {channel}: {error!r}")
    return error_type(ChannelErrorKind.TIMEOUT, f"connection to {channel} lost: {error!r}")


class HttpAdapter:
    """An adapter's HTTP side: `_send` raises mapped errors; `close` (or leaving a `with`)
    closes the client the adapter made, never one the caller passed in."""

    def __init__(
        self,
        *,
        channel: str,
        user_agent: str,
        timeout_s: float,
        http: httpx.Client | None = None,
        error_type: type[ChannelError] = ChannelError,
    ) -> None:
        self._channel_name, self._error_type = channel, error_type
        self._owns_http = http is None
        self._http = http or new_http_client(timeout_s=timeout_s, user_agent=user_agent)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request; a transport failure raises the channel's error of the right kind."""
        try:
            return self._http.request(method, url, content=content, headers=headers)
        except httpx.TransportError as error:
            raise transport_error(
                error, channel=self._channel_name, error_type=self._error_type
            ) from error
