"""Browser fixtures: Debian's chromium driven by Playwright (headless) against the gateway
(our server, the WeChat Pay sandbox, the worker) started by the test on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloudpay.channels.wechat.sandbox import WeChatSandbox
from cloudpay.config import Settings
from tests.e2e.gateway import Gateway, ShiftedClock, open_gateway, open_sandbox

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            raise RuntimeError("CI must run the browser tests: apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def browser_world() -> Iterator[tuple[WeChatSandbox, ShiftedClock]]:
    with open_sandbox() as world:
        yield world


@pytest.fixture
def browser_gateway(
    settings: Settings, engine: Engine, browser_world: tuple[WeChatSandbox, ShiftedClock]
) -> Iterator[Gateway]:
    sandbox, clock = browser_world
    with open_gateway(settings, engine, sandbox, clock) as running:
        yield running


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
