"""Red packets and lottery campaigns over HTTP: create a packet from a funder account, claim
(a citizen's second claim answers the same share), read it with its shares; register for a
lottery and draw it — and bad input a 4xx that writes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from cloudpay.kernel.clock import FixedClock
from cloudpay.marketing.model import draw_winners
from tests.e2e.api_helpers import assert_error, balance, get, move, open_account, post
from tests.e2e.test_citizen_api import register
from tests.e2e.test_marketing_api import CAMPAIGNS, campaign_body

RED_PACKETS = "/v1/red-packets"
FUNDER = "acc_red_packet_funder"


def funded_account(client: httpx.Client, amount: int) -> str:
    """A limited account (it cannot be overdrawn) holding `amount` fen."""
    open_account(client, FUNDER, flags=("debits_must_not_exceed_credits",))
    open_account(client, "acc_outside", code="funding")
    move(client, "fill-funder", "acc_outside", FUNDER, amount)
    return FUNDER


def packet_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "funder_account_id": FUNDER, "total_fen": 1_000, "count": 2, "mode": "random",
        "max_part_fen": 800, "claim_window_hours": 24, "return_after_hours": 24,
    }  # fmt: skip
    body.update(changes)
    return body


def test_create_claim_and_read_a_red_packet(live_api: httpx.Client) -> None:
    """The journey: the funder pays 1,000 fen into a two-share packet; two citizens claim
    shares that add up to it (a repeated claim answers the first share); a third finds it empty."""
    funded_account(live_api, 1_500)
    created = post(live_api, RED_PACKETS, packet_body(), key="rp-1")
    assert created.status_code == 201, created.text
    packet = created.json()
    assert (packet["object"], packet["status"], packet["claimed_count"]) == (
        "red_packet",
        "open",
        0,
    )
    assert balance(live_api, FUNDER)["net_credit_posted"] == 500
    claims_path = f"{RED_PACKETS}/{packet['id']}/claims"
    people = [register(live_api, n)["id"] for n in (1, 2, 3)]
    first = post(live_api, claims_path, {"citizen_id": people[0]})
    assert first.status_code == 200, first.text
    again = post(live_api, claims_path, {"citizen_id": people[0]})
    assert again.json() == first.json()
    second = post(live_api, claims_path, {"citizen_id": people[1]}).json()
    assert first.json()["amount_fen"] + second["amount_fen"] == 1_000
    assert_error(post(live_api, claims_path, {"citizen_id": people[2]}), 409, "red_packet_empty")
    read = get(live_api, f"{RED_PACKETS}/{packet['id']}").json()
    assert (read["claimed_count"], read["claimed_fen"]) == (2, 1_000)
    assert [s["citizen_id"] for s in read["shares"]] == people[:2]
    assert post(live_api, RED_PACKETS, packet_body(), key="rp-1").json() == packet


def test_bad_red_packets_are_refused_and_nothing_moves(live_api: httpx.Client) -> None:
    """Shares below 1 fen, a maximum too small, an uneven fixed packet, a bad window, an unknown
    or unlimited funder, more than the funder holds: each a 4xx with its code, no money moved."""
    funded_account(live_api, 1_000)
    cases = [
        ({"count": 1_001}, 400, "parameter_invalid"),
        ({"total_fen": 1, "count": 2}, 400, "campaign_invalid"),
        ({"max_part_fen": 400}, 400, "campaign_invalid"),
        ({"mode": "fixed", "total_fen": 999, "count": 2}, 400, "campaign_invalid"),
        ({"mode": "lucky"}, 400, "parameter_invalid"),
        ({"claim_window_hours": 48, "return_after_hours": 24}, 400, "campaign_invalid"),
        ({"currency": "USD"}, 400, "currency_unsupported"),
        ({"funder_account_id": "acc_nobody"}, 404, "funder_not_found"),
        ({"funder_account_id": "acc_outside"}, 400, "campaign_invalid"),
        ({"total_fen": 1_200, "max_part_fen": 1_000}, 402, "funder_balance_insufficient"),
        ({"total_fen": "100"}, 400, "parameter_invalid"),
    ]
    for changes, status, code in cases:
        assert_error(post(live_api, RED_PACKETS, packet_body(**changes)), status, code)
    assert balance(live_api, FUNDER)["net_credit_posted"] == 1_000
    missing = f"{RED_PACKETS}/rpk_{'0' * 26}"
    assert_error(get(live_api, missing), 404, "red_packet_not_found")
    citizen = register(live_api, 4)["id"]
    assert_error(post(live_api, f"{missing}/claims", {"citizen_id": citizen}), 404,
                 "red_packet_not_found")  # fmt: skip
    assert_error(get(live_api, f"{RED_PACKETS}/not-an-id"), 400, "parameter_invalid")


def test_a_lottery_campaign_over_http(live_api: httpx.Client, clock: FixedClock) -> None:
    """Register (again answers the first entry), a first-come claim refused, then after the
    window one draw with a public seed: the winners hold vouchers and the seed is on record."""
    created = post(live_api, CAMPAIGNS, campaign_body(clock, stock=1, issuance="lottery"))
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    post(live_api, f"{CAMPAIGNS}/{campaign_id}/fund", {"amount": 1_000})
    entries = f"{CAMPAIGNS}/{campaign_id}/lottery/entries"
    people = [register(live_api, n)["id"] for n in (5, 6)]
    first = post(live_api, entries, {"citizen_id": people[0]})
    assert first.status_code == 201, first.text
    assert post(live_api, entries, {"citizen_id": people[0]}).json() == first.json()
    assert post(live_api, entries, {"citizen_id": people[1]}).status_code == 201
    claim = post(live_api, f"{CAMPAIGNS}/{campaign_id}/claims", {"citizen_id": people[1]})
    assert_error(claim, 409, "lottery_only")
    draw_path = f"{CAMPAIGNS}/{campaign_id}/lottery/draw"
    assert_error(post(live_api, draw_path, {"seed": "x"}), 409, "lottery_not_closed")
    assert_error(post(live_api, draw_path, {"seed": "bad seed!"}), 400, "parameter_invalid")
    clock.advance(days=1)
    drawn = post(live_api, draw_path, {"seed": "weifang-2026"})
    assert drawn.status_code == 200, drawn.text
    assert drawn.json()["winners"] == draw_winners(people, 1, seed="weifang-2026")
    campaign = get(live_api, f"{CAMPAIGNS}/{campaign_id}").json()
    assert (campaign["issued"], campaign["draw_seed"]) == (1, "weifang-2026")
    [winner] = drawn.json()["winners"]
    assert len(get(live_api, f"/v1/citizens/{winner}/wallet").json()["vouchers"]) == 1
