"""The "Channels and routes" page in headless chromium: the admin disables a route with one
click (an HTMX swap, no navigation), previews a payment, and re-enables the route with
JavaScript off. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from cloudpay.channels.fake import FakeChannel
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.config import Settings
from cloudpay.console import Role
from cloudpay.kernel.clock import FixedClock
from cloudpay.main import create_app
from cloudpay.payments.flows import ChannelContext
from tests.browser.console_world import PASSWORD, City, build_city, operator
from tests.conftest import OPERATOR_HEADERS, serving


@pytest.fixture
def routed_city(
    settings: Settings, engine: Engine, clock: FixedClock
) -> Iterator[tuple[httpx.Client, City, str]]:
    """The console with two fake WeChat connectors; the city bank's route is the cheaper."""
    registry = ChannelRegistry()
    registry.register(FakeChannel(), key="wechat_city_bank")
    registry.register(FakeChannel(), key="wechat_provider")
    context = ChannelContext(registry, "http://127.0.0.1:9", clock)
    app = create_app(settings, engine=engine, clock=clock, channel_context=context)
    with serving(app) as http:
        city = build_city(http, engine, settings, clock)
        http.headers.update(OPERATOR_HEADERS)
        cheap = operator(http, "/v1/routes", {
            "name": "微信·城商行直连", "connector": "wechat_city_bank",
            "methods": ["wechat_native"], "cost": {"rate_bp": 25, "min_fen": 1},
        })  # fmt: skip
        operator(http, "/v1/routes", {
            "name": "微信·服务商", "connector": "wechat_provider", "methods": ["wechat_native"],
            "cost": {"fixed_fen": 300},
        })  # fmt: skip
        yield http, city, str(cheap["id"])


def _admin_page(browser: Any, base_url: str, email: str, *, javascript: bool) -> Any:
    context = browser.new_context(base_url=base_url, java_script_enabled=javascript,
                                  viewport={"width": 1440, "height": 900})  # fmt: skip
    page = context.new_page()
    page.goto("/console/login?lang=en")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto("/console/routes?lang=en")
    return page


def test_admin_disables_a_route_and_sees_it_disabled(
    browser: Any, routed_city: tuple[httpx.Client, City, str], screenshots: Path
) -> None:
    """One click disables the cheap route in place; the preview then picks the other route;
    with JavaScript off the same button (a plain form) enables it again."""
    http, city, cheap_id = routed_city
    base_url, email = str(http.base_url), city.emails[Role.PLATFORM_ADMIN]
    page = _admin_page(browser, base_url, email, javascript=True)
    row = f"#route-{cheap_id}"
    assert page.inner_text(f"{row} .route-enabled") == "Enabled"
    page.click(f"{row} button.toggle-route")
    page.wait_for_selector(f"{row}.disabled")
    assert page.inner_text(f"{row} .route-enabled") == "Disabled"
    assert page.url.endswith("/console/routes?lang=en")  # swapped in place, no navigation
    page.fill("#preview-form input[name=merchant_id]", city.merchant_id)
    page.select_option("#preview-form select[name=method]", "wechat_native")
    page.fill("#preview-form input[name=amount]", "1000")
    page.click("#preview")
    page.wait_for_selector("#preview-result #chosen-route")
    assert page.inner_text("#chosen-cost") == "¥3.00"
    assert "skipped: disabled" in page.inner_text("#preview-result")
    page.screenshot(path=str(screenshots / "routes-admin.png"), full_page=True)
    page.context.close()

    plain = _admin_page(browser, base_url, email, javascript=False)
    plain.click(f"{row} button.toggle-route")
    plain.wait_for_load_state()
    assert plain.url.endswith("/console/routes")
    assert plain.inner_text(f"{row} .route-enabled") == "Enabled"
    plain.screenshot(path=str(screenshots / "routes-admin-nojs.png"), full_page=True)
    plain.context.close()
