"""The marketing API over HTTP: create and fund a campaign, claim idempotently, see the wallet,
end the campaign — and every bad input a clear 4xx with its reason code, nothing written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from cloudpay.kernel.clock import FixedClock
from tests.e2e.api_helpers import assert_error, get, post
from tests.e2e.test_citizen_api import register
from tests.integration.test_marketing_claims import resident_id

CAMPAIGNS = "/v1/campaigns"


def campaign_body(clock: FixedClock, **changes: Any) -> dict[str, Any]:
    now = clock.now()
    body: dict[str, Any] = {
        "name": "潍坊惠民消费券", "funder_kind": "government", "funder_id": "weifang",
        "kind": "voucher", "currency": "CNY",
        "rule": {"kind": "threshold", "discount_fen": 1_000, "threshold_fen": 4_000},
        "stock": 2,
        "claim_starts_at": now.isoformat(),
        "claim_ends_at": (now + timedelta(days=1)).isoformat(),
        "valid_from": now.isoformat(),
        "valid_until": (now + timedelta(days=7)).isoformat(),
        "audience": "residents",
        "eligible_merchants": {"mccs": ["5812"], "districts": ["370702"]},
    }  # fmt: skip
    body.update(changes)
    return body


def create(client: httpx.Client, clock: FixedClock, **changes: Any) -> dict[str, Any]:
    response = post(client, CAMPAIGNS, campaign_body(clock, **changes))
    assert response.status_code == 201, response.text
    campaign: dict[str, Any] = response.json()
    return campaign


def fund(client: httpx.Client, campaign_id: str, amount: int) -> dict[str, Any]:
    response = post(client, f"{CAMPAIGNS}/{campaign_id}/fund", {"amount": amount})
    assert response.status_code == 200, response.text
    campaign: dict[str, Any] = response.json()
    return campaign


def claim(
    client: httpx.Client, campaign_id: str, citizen_id: str, key: str | None = None
) -> httpx.Response:
    return post(client, f"{CAMPAIGNS}/{campaign_id}/claims", {"citizen_id": citizen_id}, key=key)


def issued(client: httpx.Client, campaign_id: str) -> int:
    count: int = get(client, f"{CAMPAIGNS}/{campaign_id}").json()["issued"]
    return count


def test_create_fund_claim_and_see_the_wallet(live_api: httpx.Client, clock: FixedClock) -> None:
    """The journey: draft → funded → claimed (a retry with the same key replays, a second
    claim hits the cap) → in the wallet → ended with the unused budget returned."""
    created = create(live_api, clock)
    assert (created["status"], created["funded_fen"]) == ("draft", 0)
    funded = fund(live_api, created["id"], 2_000)
    assert (funded["status"], funded["funded_fen"]) == ("active", 2_000)
    assert funded["budget_account_id"]
    citizen = register(live_api, 1)
    first = claim(live_api, created["id"], citizen["id"], key="claim-1")
    assert first.status_code == 201, first.text
    replay = claim(live_api, created["id"], citizen["id"], key="claim-1")
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert_error(claim(live_api, created["id"], citizen["id"], key="claim-2"), 409, "cap_reached")
    assert issued(live_api, created["id"]) == 1
    wallet = get(live_api, f"/v1/citizens/{citizen['id']}/wallet").json()
    assert [v["id"] for v in wallet["vouchers"]] == [first.json()["id"]]
    assert wallet["coupons"] == []
    assert wallet["vouchers"][0]["rule"]["max_value_fen"] == 1_000
    stats = get(live_api, f"{CAMPAIGNS}/{created['id']}/stats").json()
    assert (stats["claims_by_status"], stats["leverage"]) == ({"claimed": 1}, None)
    listed = get(live_api, CAMPAIGNS, limit=10).json()
    assert [c["id"] for c in listed["data"]] == [created["id"]]
    ended = post(live_api, f"{CAMPAIGNS}/{created['id']}/end")
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["returned_fen"]) == ("ended", 2_000)
    wallet = get(live_api, f"/v1/citizens/{citizen['id']}/wallet").json()
    assert wallet["vouchers"][0]["status"] == "expired"


def test_bad_campaigns_are_refused_and_not_created(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """Wrong currency, inconsistent rule, reversed windows, a list without people, a merchant
    funder that does not exist: each a 4xx with its code, and no campaign is created."""
    later = (clock.now() + timedelta(days=30)).isoformat()
    cases = [
        ({"currency": "USD"}, 400, "currency_unsupported"),
        ({"rule": {"kind": "threshold", "discount_fen": 1_000, "threshold_fen": 500}},
         400, "campaign_invalid"),
        ({"rule": {"kind": "percent_off", "percent_bp": 2_000}}, 400, "campaign_invalid"),
        ({"claim_ends_at": later}, 400, "campaign_invalid"),
        ({"audience": "list"}, 400, "campaign_invalid"),
        ({"eligible_merchants": {"mccs": ["58"]}}, 400, "campaign_invalid"),
        ({"funder_kind": "merchant", "funder_id": "mch_nobody"}, 404, "funder_not_found"),
        ({"claim_starts_at": "2026-01-01T00:00:00"}, 400, None),
    ]  # fmt: skip
    for changes, status, code in cases:
        response = post(live_api, CAMPAIGNS, campaign_body(clock, **changes))
        if code is None:
            assert response.status_code == status, response.text
        else:
            assert_error(response, status, code)
    assert get(live_api, CAMPAIGNS).json()["data"] == []


def test_each_claim_refusal_has_its_reason_and_writes_nothing(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """Unknown citizen, draft campaign, visitor on a residents' campaign, stock gone, budget
    gone, window closed, wrong funding currency: each its code; `issued` never moves."""
    resident, visitor = register(live_api, 1), register(live_api, 2, resident=False)
    late, third = register(live_api, 3), register(live_api, 4)
    draft = create(live_api, clock)
    assert_error(claim(live_api, draft["id"], resident["id"]), 409, "campaign_not_active")
    missing = f"ctz_{'0' * 26}"
    assert_error(claim(live_api, draft["id"], missing), 404, "citizen_not_found")
    funding = post(live_api, f"{CAMPAIGNS}/{draft['id']}/fund", {"amount": 100, "currency": "USD"})
    assert_error(funding, 400, "currency_unsupported")
    assert get(live_api, f"{CAMPAIGNS}/{draft['id']}").json()["funded_fen"] == 0
    # Two in stock, but money for one: the second claim runs out of budget, not stock.
    live = fund(live_api, draft["id"], 1_500)["id"]
    assert_error(claim(live_api, live, visitor["id"]), 403, "not_eligible")
    assert claim(live_api, live, resident["id"]).status_code == 201
    assert_error(claim(live_api, live, late["id"]), 409, "budget_exhausted")
    fund(live_api, live, 500)
    assert claim(live_api, live, late["id"]).status_code == 201
    assert_error(claim(live_api, live, third["id"]), 409, "out_of_stock")
    assert issued(live_api, live) == 2
    other = create(live_api, clock, audience="all")["id"]
    fund(live_api, other, 10_000)
    clock.advance(days=2)
    assert_error(claim(live_api, other, third["id"]), 409, "campaign_expired")
    assert issued(live_api, other) == 0
    wallet = get(live_api, f"/v1/citizens/{third['id']}/wallet").json()
    assert wallet["vouchers"] == []


def test_malformed_ids_and_missing_credentials(live_api: httpx.Client, clock: FixedClock) -> None:
    """A malformed campaign id is a 400, an unknown one a 404, no token a 401."""
    response = get(live_api, f"{CAMPAIGNS}/not-a-campaign")
    assert response.status_code == 400, response.text
    assert_error(get(live_api, f"{CAMPAIGNS}/cmp_{'0' * 26}"), 404, "campaign_not_found")
    anonymous = live_api.post(CAMPAIGNS, json=campaign_body(clock))
    assert_error(anonymous, 401, "credentials_missing")
    assert_error(get(live_api, f"/v1/citizens/ctz_{'0' * 26}/wallet"), 404, "citizen_not_found")


def test_a_quote_shows_the_saving_and_writes_nothing(
    live_api: httpx.Client, clock: FixedClock
) -> None:
    """At a restaurant (MCC 5812) in the eligible district, 50 yuan costs 40 with the voucher;
    elsewhere, or below the threshold, nothing is taken off; unknown merchant is a 404."""
    merchant = post(live_api, "/v1/merchants", {
        "legal_name": "潍坊市某某面馆", "unified_social_credit_code": "91110000600037341L",
        "legal_person_name": "张三", "legal_person_id_number": resident_id(700),
        "contact_phone": "13912345678", "mcc": "5812",
    })  # fmt: skip
    assert merchant.status_code == 201, merchant.text
    campaign = create(live_api, clock)
    fund(live_api, campaign["id"], 2_000)
    citizen = register(live_api, 1)
    claimed = claim(live_api, campaign["id"], citizen["id"]).json()
    path = f"/v1/citizens/{citizen['id']}/wallet/quote"
    body = {"merchant_id": merchant.json()["id"], "amount": 5_000, "district": "370702"}
    quote = post(live_api, path, body).json()
    assert (quote["discount_fen"], quote["payable_fen"]) == (1_000, 4_000)
    assert [line["claim_id"] for line in quote["lines"]] == [claimed["id"]]
    assert post(live_api, path, {**body, "district": "370705"}).json()["discount_fen"] == 0
    assert post(live_api, path, {**body, "amount": 3_999}).json()["discount_fen"] == 0
    chosen = post(live_api, path, {**body, "amount": 3_999, "claim_ids": [claimed["id"]]})
    assert_error(chosen, 409, "instrument_not_applicable", "claim_ids")
    unknown = post(live_api, path, {**body, "merchant_id": "mch_nobody"})
    assert_error(unknown, 404, "merchant_not_found")
    wallet = get(live_api, f"/v1/citizens/{citizen['id']}/wallet").json()
    assert wallet["vouchers"][0]["status"] == "claimed"
