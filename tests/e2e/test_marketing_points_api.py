"""Points over HTTP: a merchant's earn rule, earning on a paid order (once per order), the
citizen's balance and lots — and bad rules or unknown merchants a clear 4xx."""

from __future__ import annotations

import httpx

from tests.e2e.api_helpers import assert_error, get, post
from tests.e2e.test_citizen_api import register
from tests.integration.test_marketing_claims import resident_id


def merchant(client: httpx.Client) -> str:
    response = post(client, "/v1/merchants", {
        "legal_name": "潍坊市某某面馆", "unified_social_credit_code": "91110000600037341L",
        "legal_person_name": "张三", "legal_person_id_number": resident_id(700),
        "contact_phone": "13912345678", "mcc": "5812",
    })  # fmt: skip
    assert response.status_code == 201, response.text
    merchant_id: str = response.json()["id"]
    return merchant_id


def test_a_rule_earns_points_once_per_order(live_api: httpx.Client) -> None:
    """2 points a yuan: a 30-yuan order earns 60 points; sending it again answers the same lot;
    the balance shows 60 with one live lot."""
    shop = merchant(live_api)
    rule = post(live_api, f"/v1/points/rules/{shop}", {"points_per_yuan": 2, "validity_days": 90})
    assert rule.status_code == 200, rule.text
    citizen = register(live_api, 1)["id"]
    earning = {"citizen_id": citizen, "merchant_id": shop, "order_id": "ord_e2e_1", "amount": 3_000}
    first = post(live_api, "/v1/points/earnings", earning)
    assert first.status_code == 201, first.text
    assert first.json()["points"] == 60
    assert post(live_api, "/v1/points/earnings", earning).json() == first.json()
    points = get(live_api, f"/v1/citizens/{citizen}/points").json()
    assert (points["balance"], [lot["remaining"] for lot in points["lots"]]) == (60, [60])


def test_bad_points_requests_are_refused(live_api: httpx.Client) -> None:
    """A zero rate, a reversed window, a merchant that does not exist, earning without a rule,
    an unknown citizen: each a 4xx with its code."""
    shop = merchant(live_api)
    rules = f"/v1/points/rules/{shop}"
    assert_error(post(live_api, rules, {"points_per_yuan": 0}), 400, "parameter_invalid")
    window = {"starts_at": "2026-05-02T00:00:00+08:00", "ends_at": "2026-05-01T00:00:00+08:00",
              "multiplier_bp": 20_000}  # fmt: skip
    reversed_window = {"points_per_yuan": 1, "multipliers": [window]}
    assert_error(post(live_api, rules, reversed_window), 400, "campaign_invalid")
    nobody = post(live_api, "/v1/points/rules/mch_nobody", {"points_per_yuan": 1})
    assert_error(nobody, 404, "merchant_not_found")
    citizen = register(live_api, 2)["id"]
    earning = {"citizen_id": citizen, "merchant_id": shop, "order_id": "ord_e2e_2", "amount": 100}
    assert_error(post(live_api, "/v1/points/earnings", earning), 404, "points_rule_not_found")
    assert_error(get(live_api, f"/v1/citizens/ctz_{'0' * 26}/points"), 404, "citizen_not_found")
