"""The routing operator API over real HTTP: routes, rules, health and a dry run; bad input is a
4xx in the one error shape and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from cloudpay.channels.fake import FakeChannel
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.config import Settings
from cloudpay.kernel.clock import FixedClock
from cloudpay.main import create_app
from cloudpay.payments.flows import ChannelContext
from tests.conftest import OPERATOR_HEADERS, serving
from tests.e2e.api_helpers import assert_error

ROUTE = {
    "name": "WeChat via the city bank", "connector": "wechat_city_bank",
    "methods": ["wechat_native"], "cost": {"rate_bp": 25, "min_fen": 1},
}  # fmt: skip


@pytest.fixture
def api(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[httpx.Client]:
    registry = ChannelRegistry()
    registry.register(FakeChannel(), key="wechat_city_bank")
    registry.register(FakeChannel(), key="wechat_provider")
    context = ChannelContext(registry, "http://127.0.0.1:9", clock)
    app = create_app(settings, engine=engine, clock=clock, channel_context=context)
    with serving(app) as client:
        client.headers.update(OPERATOR_HEADERS)
        yield client


def _route(api: httpx.Client, **changes: Any) -> dict[str, Any]:
    response = api.post("/v1/routes", json={**ROUTE, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_routes_are_created_listed_changed_and_previewed(api: httpx.Client) -> None:
    """Two routes at different rates: the dry run picks the cheaper; disabling it flips that."""
    cheap = _route(api)
    dear = _route(api, name="via provider", connector="wechat_provider",
                  cost={"rate_bp": 38})  # fmt: skip
    assert cheap["object"] == "route"
    assert cheap["channel"] == "wechat"
    assert [r["id"] for r in api.get("/v1/routes").json()["data"]] == [cheap["id"], dear["id"]]
    payment = {"merchant_id": "mch_1", "method": "wechat_native", "amount": 100_000}
    preview = api.post("/v1/routing/preview", json=payment).json()
    assert preview["route_id"] == cheap["id"]
    assert preview["cost_fen"] == 250
    assert preview["most_expensive_fen"] == 380
    changed = api.patch(f"/v1/routes/{cheap['id']}", json={"enabled": False})
    assert changed.json()["enabled"] is False
    assert api.post("/v1/routing/preview", json=payment).json()["route_id"] == dear["id"]


def test_a_rule_sends_a_merchants_big_payments_through_one_route(api: httpx.Client) -> None:
    """Rules restrict the eligible routes by merchant and amount; disabling the rule undoes it."""
    cheap, dear = _route(api), _route(api, name="b", connector="wechat_provider",
                                      cost={"rate_bp": 38})  # fmt: skip
    rule = api.post("/v1/routing-rules", json={
        "route_ids": [dear["id"]], "merchant_id": "mch_1", "min_amount_fen": 50_000,
        "window_start": "08:00", "window_end": "08:00:00",
    })  # fmt: skip
    assert_error(rule, 400, "rule_invalid", "window_end")  # an empty window
    created = api.post("/v1/routing-rules", json={
        "route_ids": [dear["id"]], "merchant_id": "mch_1", "min_amount_fen": 50_000,
    })  # fmt: skip
    assert created.status_code == 201, created.text
    big = {"merchant_id": "mch_1", "method": "wechat_native", "amount": 60_000}
    assert api.post("/v1/routing/preview", json=big).json()["route_id"] == dear["id"]
    small = {**big, "amount": 10_000}
    assert api.post("/v1/routing/preview", json=small).json()["route_id"] == cheap["id"]
    api.patch(f"/v1/routing-rules/{created.json()['id']}", json={"enabled": False})
    assert api.post("/v1/routing/preview", json=big).json()["route_id"] == cheap["id"]
    assert len(api.get("/v1/routing-rules").json()["data"]) == 1


def test_health_lists_configured_and_implicit_routes(api: httpx.Client) -> None:
    """Before routes are configured for a method, each connector serving it is an implicit
    free route; once every method has routes, only those are listed."""
    rows = api.get("/v1/routes/health").json()["data"]
    assert {r["route_id"] for r in rows} == {"connector:wechat_city_bank",
                                             "connector:wechat_provider"}  # fmt: skip
    assert all(r["breaker"]["state"] == "closed" for r in rows)
    route = _route(api)  # configures wechat_native only: the other methods stay implicit
    rows = api.get("/v1/routes/health").json()["data"]
    assert {r["route_id"] for r in rows} == {
        route["id"],
        "connector:wechat_city_bank",
        "connector:wechat_provider",
    }
    everything = {**ROUTE, "methods": ["wechat_native", "wechat_jsapi", "wechat_micropay"]}
    whole = api.post("/v1/routes", json=everything).json()
    rows = api.get("/v1/routes/health").json()["data"]
    assert {r["route_id"] for r in rows} == {route["id"], whole["id"]}


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({**ROUTE, "connector": "paypal"}, "connector_unknown", "connector"),
        ({**ROUTE, "connector": "Bad Key"}, "parameter_invalid", "connector"),
        ({**ROUTE, "methods": ["alipay_qr"]}, "route_methods_invalid", "methods"),
        ({**ROUTE, "methods": []}, "parameter_invalid", "methods"),
        ({**ROUTE, "cost": {"rate_bp": 1_001}}, "parameter_invalid", "cost.rate_bp"),
        ({**ROUTE, "cost": {"rate_bp": 1.5}}, "parameter_invalid", "cost.rate_bp"),
        ({**ROUTE, "cost": {"min_fen": 10, "max_fen": 5}}, "route_cost_invalid", "cost.min_fen"),
        ({**ROUTE, "name": "a\x00b"}, "parameter_invalid", "name"),
        ({**ROUTE, "extra": 1}, "parameter_invalid", "extra"),
    ],
)
def test_bad_routes_are_refused_and_nothing_is_written(
    api: httpx.Client, body: dict[str, Any], code: str, param: str
) -> None:
    """Each mistake is a 400 naming the field; the route list stays empty."""
    assert_error(api.post("/v1/routes", json=body), 400, code, param)
    assert api.get("/v1/routes").json()["data"] == []


def test_unknown_ids_and_missing_credentials(api: httpx.Client) -> None:
    """Unknown route and rule ids are 404s; no operator token is a 401."""
    assert_error(api.get("/v1/routes/rte_missing"), 404, "route_not_found")
    assert_error(api.patch("/v1/routing-rules/rrl_missing", json={"enabled": True}), 404,
                 "rule_not_found")  # fmt: skip
    assert_error(api.post("/v1/routing-rules", json={"route_ids": ["rte_nope"]}), 404,
                 "route_not_found")  # fmt: skip
    assert_error(api.get("/v1/routes/not-an-id"), 400, "parameter_invalid")
    anonymous = httpx.Client(base_url=str(api.base_url))
    assert_error(anonymous.get("/v1/routes"), 401, "credentials_missing")
