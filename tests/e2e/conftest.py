"""Fixtures of the end-to-end suite: the whole payment gateway on loopback (`gateway.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from cloudpay.channels.wechat.sandbox import WeChatSandbox
from cloudpay.config import Settings
from tests.e2e.gateway import Gateway, ShiftedClock, open_gateway, open_sandbox


@pytest.fixture(scope="session")
def wechat_world() -> Iterator[tuple[WeChatSandbox, ShiftedClock]]:
    """The WeChat Pay sandbox and the clock every part of the gateway reads."""
    with open_sandbox() as world:
        yield world


@pytest.fixture
def gateway(
    settings: Settings, engine: Engine, wechat_world: tuple[WeChatSandbox, ShiftedClock]
) -> Iterator[Gateway]:
    """Sandbox, server, worker, an approved merchant and its app's SDK client; both DBs."""
    sandbox, clock = wechat_world
    with open_gateway(settings, engine, sandbox, clock) as running:
        yield running
