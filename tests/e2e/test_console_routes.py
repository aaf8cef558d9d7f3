"""The console's "Channels and routes" page over real HTTP on both databases: who reads it, who
may switch a route or a rule (CSRF, audited with before/after, HTMX and plain forms), the circuit
and its transitions, the routing preview, the merchant page's routes, and bad input as a 4xx page
that writes nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cloudpay import routing
from cloudpay.channels.fake import FakeChannel
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.config import Settings
from cloudpay.console import Role
from cloudpay.console.tables import console_audit_log
from cloudpay.db.unit_of_work import run_in_transaction
from cloudpay.kernel.clock import FixedClock
from cloudpay.main import create_app
from cloudpay.payments.flows import ChannelContext
from tests.browser.console_world import CSRF, ConsoleSession, World, build_city, operator
from tests.conftest import OPERATOR_HEADERS, serving

READERS = (Role.PLATFORM_ADMIN, Role.RISK_OFFICER, Role.AUDITOR)
OUTSIDERS = (Role.BANK, Role.AGENT, Role.MERCHANT)


@dataclass
class RoutedWorld:
    """The console over HTTP with two fake WeChat connectors, two routes and one rule."""

    world: World
    context: ChannelContext
    cheap: dict[str, Any]  # 0.25%, min ¥0.01
    dear: dict[str, Any]  # fixed ¥3.00
    rule: dict[str, Any]  # the city merchant's payments of ¥500–¥2,000 go to `dear`

    def route(self, route_id: str) -> dict[str, Any]:
        found = self.world.http.get(f"/v1/routes/{route_id}", headers=OPERATOR_HEADERS)
        body: dict[str, Any] = found.json()
        return body

    def audit_entries(self) -> list[SimpleNamespace]:
        """The log's rows with before/after decoded from their JSON text."""
        with self.world.engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(select(console_audit_log))]
        for row in rows:
            row["before"], row["after"] = json.loads(row["before"]), json.loads(row["after"])
        return [SimpleNamespace(**row) for row in rows]

    def audit_count(self) -> int:
        with self.world.engine.connect() as connection:
            count = select(func.count()).select_from(console_audit_log)
            return int(connection.execute(count).scalar_one())


@pytest.fixture
def routed(settings: Settings, engine: Engine, clock: FixedClock) -> Iterator[RoutedWorld]:
    registry = ChannelRegistry()
    registry.register(FakeChannel(), key="wechat_city_bank")
    registry.register(FakeChannel(), key="wechat_provider")
    context = ChannelContext(registry, "http://127.0.0.1:9", clock)
    app = create_app(settings, engine=engine, clock=clock, channel_context=context)
    with serving(app) as http:
        city = build_city(http, engine, settings, clock)
        world = World(http, city, clock, engine, settings)
        http.headers.update(OPERATOR_HEADERS)
        cheap = operator(http, "/v1/routes", {
            "name": "微信·城商行直连", "connector": "wechat_city_bank",
            "methods": ["wechat_native"], "cost": {"rate_bp": 25, "min_fen": 1},
        })  # fmt: skip
        dear = operator(http, "/v1/routes", {
            "name": "微信·服务商", "connector": "wechat_provider",
            "methods": ["wechat_native", "wechat_jsapi"], "cost": {"fixed_fen": 300},
        })  # fmt: skip
        rule = operator(http, "/v1/routing-rules", {
            "route_ids": [dear["id"]], "merchant_id": city.merchant_id,
            "min_amount_fen": 50_000, "max_amount_fen": 200_000,
            "window_start": "08:00", "window_end": "22:00",
        })  # fmt: skip
        del http.headers["Authorization"]
        yield RoutedWorld(world, context, cheap, dear, rule)


def _hx_post(session: ConsoleSession, path: str, data: dict[str, str]) -> Any:
    """A post as HTMX sends it: the CSRF token in the header set on <body>."""
    headers = {"HX-Request": "true", "X-CSRF-Token": session.csrf()}
    return session.http.post(path, data=data, headers=headers)


def test_the_page_is_read_by_admin_risk_and_audit_and_nobody_else(routed: RoutedWorld) -> None:
    """Readers see connectors, routes with cost in % and ¥, the rule; only the admin gets the
    switches; bank, agent and merchant get neither the menu entry nor the page."""
    for role in READERS:
        session = routed.world.session(role)
        page = session.get("/console/routes", lang="en")
        assert page.status_code == 200, role
        text = page.text
        assert 'href="/console/routes"' in text
        assert "<code>wechat_city_bank</code>" in text
        assert "<code>wechat_provider</code>" in text
        assert "微信·城商行直连" in text
        assert "0.25%" in text
        assert "¥0.01" in text
        assert "fixed ¥3.00" in text
        implicit = text.split('id="route-connector:wechat_city_bank"', 1)[1].split("</tr>", 1)[0]
        assert "<td>wechat_micropay</td>" in implicit  # the one method no route serves
        assert "no known cost" in implicit
        assert f"rule-{routed.rule['id']}" in text
        assert "¥500.00 – ¥2,000.00" in text
        assert "08:00–22:00" in text
        assert ("toggle-route" in text) is (role is Role.PLATFORM_ADMIN), role
        assert ("toggle-rule" in text) is (role is Role.PLATFORM_ADMIN), role
    for role in OUTSIDERS:
        session = routed.world.session(role)
        assert session.get("/console/routes").status_code == 403, role
        assert 'href="/console/routes"' not in session.get("/console/orders").text, role
        preview = {"merchant_id": routed.world.city.merchant_id, "method": "wechat_native",
                   "amount": "10"}  # fmt: skip
        assert session.get("/console/routes/preview", **preview).status_code == 403, role


def test_only_the_admin_switches_a_route_with_csrf_and_an_audit_entry(
    routed: RoutedWorld,
) -> None:
    """Risk and audit are refused, a post without the token is refused, and the admin's post
    disables the route, records before/after and redirects back to the page."""
    path = f"/console/routes/{routed.cheap['id']}/enabled"
    for role in (Role.RISK_OFFICER, Role.AUDITOR, Role.BANK):
        refused = routed.world.session(role).post(path, {"enabled": "false"})
        assert refused.status_code == 403, role
    admin = routed.world.session(Role.PLATFORM_ADMIN)
    assert admin.post(path, {"enabled": "false"}, csrf=False).status_code == 403
    assert routed.route(routed.cheap["id"])["enabled"] is True
    assert routed.audit_count() == 0
    done = admin.post(path, {"enabled": "false"})
    assert (done.status_code, done.headers["location"]) == (303, "/console/routes")
    assert routed.route(routed.cheap["id"])["enabled"] is False
    [entry] = routed.audit_entries()
    assert (entry.action, entry.object_type, entry.object_id) == (
        "route.disable", "route", routed.cheap["id"])  # fmt: skip
    assert entry.before["enabled"] is True
    assert entry.after["enabled"] is False
    assert entry.after["cost"] == {"rate_bp": 25, "min_fen": 1, "max_fen": None,
                                   "fixed_fen": None}  # fmt: skip
    page = admin.get("/console/routes", lang="en").text
    row = page.split(f'id="route-{routed.cheap["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "Disabled" in row
    assert ">Enable</button>" in row


def test_htmx_switches_swap_the_tables_and_rules_are_audited_too(routed: RoutedWorld) -> None:
    """With HTMX the answer is the routing tables alone, re-rendered with the new state."""
    admin = routed.world.session(Role.PLATFORM_ADMIN)
    admin.get("/console/routes", lang="en")
    swapped = _hx_post(admin, f"/console/routing-rules/{routed.rule['id']}/enabled",
                       {"enabled": "false"})  # fmt: skip
    assert swapped.status_code == 200
    assert swapped.text.lstrip().startswith('<div id="routing-config">')
    assert "<html" not in swapped.text
    row = swapped.text.split(f'id="rule-{routed.rule["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "Disabled" in row
    assert CSRF.search(swapped.text)
    again = _hx_post(admin, f"/console/routes/{routed.dear['id']}/enabled", {"enabled": "false"})
    assert again.status_code == 200
    actions = sorted(entry.action for entry in routed.audit_entries())
    assert actions == ["route.disable", "routing_rule.disable"]
    rule_entry = next(e for e in routed.audit_entries() if e.object_type == "routing_rule")
    assert rule_entry.before["enabled"] is True
    assert rule_entry.after["enabled"] is False
    assert rule_entry.after["window"] == "08:00-22:00"


@pytest.mark.parametrize(
    ("path", "form", "status"),
    [
        ("/console/routes/rte_00000000000000000000000000/enabled", {"enabled": "false"}, 404),
        ("/console/routing-rules/rrl_00000000000000000000000000/enabled", {"enabled": "true"},
         404),
        ("/console/routes/not-a-route/enabled", {"enabled": "false"}, 400),
        ("/console/routes/{cheap}/enabled", {"enabled": "maybe"}, 400),
        ("/console/routes/{cheap}/enabled", {}, 400),
    ],
)  # fmt: skip
def test_bad_switches_are_a_4xx_page_and_write_nothing(
    routed: RoutedWorld, path: str, form: dict[str, str], status: int
) -> None:
    """An unknown id is a 404, a malformed id or value a 400; the route and the log stay."""
    admin = routed.world.session(Role.PLATFORM_ADMIN)
    response = admin.post(path.format(cheap=routed.cheap["id"]), form)
    assert response.status_code == status, response.text
    assert 'class="error"' in response.text
    assert "<code>" in response.text
    assert routed.route(routed.cheap["id"])["enabled"] is True
    assert routed.audit_count() == 0


def test_the_preview_shows_the_decision_and_follows_rules_and_switches(
    routed: RoutedWorld,
) -> None:
    """¥1,000 for the city merchant goes to the route its rule names; another merchant's to the
    cheaper route (¥2.50); a disabled route is shown as skipped; nothing is written."""
    admin = routed.world.session(Role.PLATFORM_ADMIN)
    admin.get("/console/routes", lang="en")
    city = routed.world.city
    ask = {"method": "wechat_native", "amount": "1,000.00"}
    ruled = admin.get("/console/routes/preview", merchant_id=city.merchant_id, **ask)
    assert ruled.status_code == 200
    assert "<html" in ruled.text
    assert f'id="chosen-route">{routed.dear["id"]}<' in ruled.text
    assert f"<code>{routed.rule['id']}</code>" in ruled.text
    assert "skipped: not in the rule" in ruled.text
    free = admin.http.get("/console/routes/preview", headers={"HX-Request": "true"},
                          params={"merchant_id": city.other_merchant_id, **ask})  # fmt: skip
    assert free.status_code == 200
    assert "<html" not in free.text
    assert f'id="chosen-route">{routed.cheap["id"]}<' in free.text
    assert 'id="chosen-cost">¥2.50<' in free.text
    admin.post(f"/console/routes/{routed.cheap['id']}/enabled", {"enabled": "false"})
    after = admin.get("/console/routes/preview", merchant_id=city.other_merchant_id, **ask).text
    assert f'id="chosen-route">{routed.dear["id"]}<' in after
    assert "skipped: disabled" in after
    assert routed.audit_count() == 1  # the switch; previews write nothing


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"amount": "12.345"}, 400),
        ({"amount": "0"}, 400),
        ({"amount": "-1"}, 400),
        ({"method": "bitcoin"}, 400),
        ({"merchant_id": "mch_00000000000000000000000000"}, 404),
        ({"merchant_id": "'; drop table"}, 400),
    ],
)
def test_bad_previews_are_a_4xx_page(
    routed: RoutedWorld, params: dict[str, str], status: int
) -> None:
    """Amounts that are not yuan, unknown methods and unknown or malformed merchants."""
    admin = routed.world.session(Role.RISK_OFFICER)
    query = {"merchant_id": routed.world.city.merchant_id, "method": "wechat_native",
             "amount": "10", **params}  # fmt: skip
    response = admin.get("/console/routes/preview", **query)
    assert response.status_code == status, response.text
    assert 'class="error"' in response.text


def test_the_circuit_and_its_transitions_are_shown(routed: RoutedWorld) -> None:
    """Three timeouts open the cheap route's circuit: the page shows it open, 0% success, the
    failures, the error, when it reopens (Shanghai time), and the recorded transition."""
    board = routed.context.board
    for _ in range(3):
        board.record(routed.cheap["id"], failed=True, error="timeout after 5s")
    for snapshot in board.drain_transitions():
        run_in_transaction(routed.world.engine,
                           lambda uow, s=snapshot: routing.record_health_transition(uow, s),
                           clock=routed.world.clock)  # fmt: skip
    page = routed.world.session(Role.AUDITOR).get("/console/routes", lang="en").text
    row = page.split(f'id="route-{routed.cheap["id"]}"', 1)[1].split('<tr id="route-', 1)[0]
    assert 'class="circuit circuit-open">open<' in row
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells[-5:] == ["0.00%", "3", "3", "2026-01-01 08:00:30", "timeout after 5s"], cells
    assert "timeout after 5s" in row
    assert "Transitions:" in row
    assert "→ open (3/3, timeout after 5s)" in row


def test_the_merchant_page_lists_the_routes_and_rules_that_serve_it(
    routed: RoutedWorld,
) -> None:
    """Its app accepts wechat_jsapi only: the provider route serves it, the city bank's does not;
    its rule is listed; roles that do not read routing see no such section."""
    http, city = routed.world.http, routed.world.city
    http.headers.update(OPERATOR_HEADERS)
    operator(http, f"/v1/merchants/{city.merchant_id}/approve")
    operator(
        http,
        f"/v1/merchants/{city.merchant_id}/apps",
        {"name": "收银台", "payment_methods": ["wechat_jsapi"], "key": {"algorithm": "RSA"}},
    )
    del http.headers["Authorization"]
    page = routed.world.session(Role.RISK_OFFICER).get(f"/console/merchants/{city.merchant_id}")
    assert page.status_code == 200
    section = page.text.split('id="merchant-routing"', 1)[1].split("</section>", 1)[0]
    assert f'id="route-{routed.dear["id"]}"' in section
    assert f'id="route-{routed.cheap["id"]}"' not in section
    assert f'id="rule-{routed.rule["id"]}"' in section
    assert "toggle-route" not in section
    other = routed.world.session(Role.PLATFORM_ADMIN).get(
        f"/console/merchants/{city.other_merchant_id}").text  # fmt: skip
    assert f'id="rule-{routed.rule["id"]}"' not in other
    merchant_view = routed.world.session(Role.MERCHANT).get(
        f"/console/merchants/{city.merchant_id}"
    )
    assert merchant_view.status_code == 200
    assert "merchant-routing" not in merchant_view.text


def test_nothing_is_reachable_without_a_session(routed: RoutedWorld) -> None:
    """The page, the preview and the switches send a stranger to the login form."""
    http = routed.world.http
    path = f"/console/routes/{routed.cheap['id']}/enabled"
    for response in (
        http.get("/console/routes", follow_redirects=False),
        http.get("/console/routes/preview", follow_redirects=False),
        http.post(path, data={"enabled": "false"}, follow_redirects=False),
    ):
        assert (response.status_code, response.headers["location"]) == (303, "/console/login")
    assert routed.route(routed.cheap["id"])["enabled"] is True
