"""Anti-abuse over HTTP: rules listed and tuned as data, a claim by a person with many wallets
flagged with its reason, the flag reviewed once — and bad input a clear 4xx."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine

from cloudpay.kernel.clock import FixedClock
from tests.e2e.api_helpers import assert_error, get, post
from tests.e2e.test_citizen_api import register
from tests.e2e.test_marketing_api import CAMPAIGNS, campaign_body
from tests.integration.test_marketing_claims import resident_id
from tests.integration.test_marketing_redemption import onboard_merchant

FLAGS = "/v1/marketing/flags"
RULES = "/v1/marketing/abuse-rules"


def test_a_many_wallet_claim_is_flagged_and_reviewed(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """Threshold tuned to 2 wallets: a citizen with two claims a voucher, a flag with the reason
    appears, a reviewer dismisses it once; a second review is 409."""
    rules = get(live_api, RULES).json()["data"]
    assert {r["code"] for r in rules} == {
        "many_wallets", "identical_amounts", "redeem_refund_loop", "own_people"
    }  # fmt: skip
    tuned = post(live_api, f"{RULES}/many_wallets", {"threshold": 2, "window_hours": 0})
    assert tuned.status_code == 200, tuned.text
    assert tuned.json()["threshold"] == 2
    person = register(live_api, 1)["id"]
    for openid in ("openid_a_000", "openid_b_000"):
        linked = post(live_api, f"/v1/citizens/{person}/payer-ids",
                      {"channel": "wechat", "payer_id": openid})  # fmt: skip
        assert linked.status_code in (200, 201), linked.text
    campaign = post(live_api, CAMPAIGNS, campaign_body(clock)).json()["id"]
    post(live_api, f"{CAMPAIGNS}/{campaign}/fund", {"amount": 2_000})
    assert (
        post(live_api, f"{CAMPAIGNS}/{campaign}/claims", {"citizen_id": person}).status_code == 201
    )
    [flag] = get(live_api, FLAGS, status="open").json()["data"]
    assert (flag["rule"], flag["subject"], flag["status"]) == (
        "many_wallets",
        {"kind": "citizen", "id": person},
        "open",
    )
    assert "2 wallet payer ids" in flag["reason"]
    review = {"decision": "dismissed", "note": "a family's phones"}
    reviewed = post(live_api, f"{FLAGS}/{flag['id']}/review", review)
    assert reviewed.status_code == 200, reviewed.text
    assert (reviewed.json()["status"], reviewed.json()["decision"]) == ("reviewed", "dismissed")
    assert_error(
        post(live_api, f"{FLAGS}/{flag['id']}/review", review), 409, "flag_already_reviewed"
    )
    assert get(live_api, FLAGS, status="open").json()["data"] == []


def test_bad_flag_and_rule_requests_are_refused(live_api: httpx.Client) -> None:
    """An unknown flag, a bad decision, an unknown rule, a zero threshold: each a 4xx."""
    missing = f"{FLAGS}/flg_{'0' * 26}/review"
    assert_error(post(live_api, missing, {"decision": "dismissed"}), 404, "flag_not_found")
    assert_error(post(live_api, missing, {"decision": "maybe"}), 400, "parameter_invalid")
    nobody = post(live_api, f"{RULES}/no_such_rule", {"threshold": 2, "window_hours": 0})
    assert_error(nobody, 400, "parameter_invalid")
    zero = post(live_api, f"{RULES}/many_wallets", {"threshold": 0, "window_hours": 0})
    assert_error(zero, 400, "parameter_invalid")


def test_a_merchants_staff_is_registered_by_resident_id(
    live_api: httpx.Client, engine: Engine, clock: FixedClock
) -> None:
    """A citizen's resident ID binds them to a merchant as staff (201, the citizen's id; again:
    the same binding); an ID no citizen holds is 404, an unknown role 400."""
    shop = onboard_merchant(engine, clock)
    person = register(live_api, 7)["id"]
    people = f"/v1/merchants/{shop}/people"
    bound = post(live_api, people, {"resident_id": resident_id(7), "role": "staff"})
    assert bound.status_code == 201, bound.text
    assert (bound.json()["citizen_id"], bound.json()["role"]) == (person, "staff")
    again = post(live_api, people, {"resident_id": resident_id(7), "role": "legal_person"})
    assert again.json()["role"] == "staff"
    missing = post(live_api, people, {"resident_id": resident_id(8), "role": "staff"})
    assert_error(missing, 404, "citizen_not_found")
    bad_role = post(live_api, people, {"resident_id": resident_id(7), "role": "cousin"})
    assert bad_role.status_code == 400, bad_role.text
