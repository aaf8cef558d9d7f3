"""Vouchers and coupons on the demo day, through the API: the city's commerce bureau funds a
consumption voucher campaign (满100减20 at the city's restaurants, supermarkets and pharmacies),
the noodle shop funds its own coupon (满40减10) from money it tops up at its bank; demo
citizens claim in the morning and pay with them during the day; the summary shows the
leverage report (issued, claimed, redeemed, subsidy, spend, leverage).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from cloudpay import ledger
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.demo.city import Onboarded, demo_resident_id
from cloudpay.demo.gateway_day import GatewayDay
from cloudpay.demo.servers import OperatorApi
from cloudpay.demo.settlement_day import DemoBanks
from cloudpay.kernel.clock import Clock
from cloudpay.ledger import Purpose, Transfer

CITIZENS = ("刘芳", "陈静", "杨洋", "赵磊", "黄敏", "周杰", "吴婷", "徐强", "孙丽", "马超", "朱红",
            "胡军")  # fmt: skip
WEIFANG = "370702"
BUREAU = "weifang-commerce-bureau"  # 潍坊市商务局, the voucher programme's funder
VOUCHER_STOCK, VOUCHER_OFF_FEN, VOUCHER_OVER_FEN = 10, 2_000, 10_000
COUPON_STOCK, COUPON_OFF_FEN, COUPON_OVER_FEN = 6, 1_000, 4_000
VOUCHER_MCCS = ("5812", "5411", "5912")  # restaurants, supermarkets, pharmacies
CLAIM_WINDOW = timedelta(hours=12)
VALID_FOR = timedelta(days=7)
VOUCHER_SHOPPERS = 8  # of the voucher holders, how many shop with it today
COUPON_SHOPPERS = 5


@dataclass
class VoucherDay:
    citizens: list[str] = field(default_factory=list)  # citizen ids
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)  # label → campaign
    claims: dict[str, list[str]] = field(default_factory=dict)  # label → citizen ids
    refused: dict[str, int] = field(default_factory=dict)  # claim refusals by code
    orders: list[dict[str, Any]] = field(default_factory=list)  # citizens' orders
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)  # label → campaign stats


def _register(api: OperatorApi, index: int, name: str) -> str:
    """A demo citizen, registered once (a second run finds the same resident ID)."""
    body = {"name": name, "resident_id": demo_resident_id(f"citizen-{index}"),
            "phone": f"1375366{index:04d}", "resident": True, "district": WEIFANG}  # fmt: skip
    response = api.send("POST", "/v1/citizens", body)
    if response.status_code == 409:
        return str(response.json()["error"]["details"]["citizen_id"])
    return str(api.checked(response)["id"])


def _windows(now: datetime) -> dict[str, str]:
    return {
        "claim_starts_at": now.isoformat(), "claim_ends_at": (now + CLAIM_WINDOW).isoformat(),
        "valid_from": now.isoformat(), "valid_until": (now + VALID_FOR).isoformat(),
    }  # fmt: skip


def _top_up(engine: Engine, clock: Clock, banks: DemoBanks, merchant_id: str, amount: int) -> None:
    """The merchant pays from its card into our reserve at its bank; we credit its balance."""
    account = next(a for a in banks.accounts.values() if a.merchant_id == merchant_id)
    bank = banks.sandboxes[account.bank_code]
    arrived = bank.external_credit(bank.custody_account_no, account.class_i_card, amount)

    def book(uow: UnitOfWork) -> None:
        custody = ledger.open_chart_account(
            uow, Purpose.BANK_RESERVE, ledger.bank_owner(account.bank_code), "CNY"
        )
        available = ledger.open_chart_account(
            uow, Purpose.MERCHANT_AVAILABLE, ledger.merchant_owner(merchant_id), "CNY"
        )
        transfer = Transfer(f"topup:{account.bank_code}:{arrived.command.transfer_id}",
                            custody.id, available.id, amount, "CNY", "merchant.top_up")  # fmt: skip
        [result] = ledger.create_transfers(uow, [transfer])
        if not result.ok:
            raise RuntimeError(f"top-up refused by the ledger: {result.result}")

    run_in_transaction(engine, book, clock=clock)


def open_campaigns(
    engine: Engine, clock: Clock, api: OperatorApi, city: list[Onboarded], banks: DemoBanks
) -> VoucherDay:
    """Morning: both campaigns funded and live, the citizens registered and claiming."""
    day = VoucherDay([_register(api, n, name) for n, name in enumerate(CITIZENS)])
    noodles = next(o for o in city if o.merchant.key == "noodle-shop")
    stamp = clock.now().strftime("%Y-%m-%d %H:%M")
    voucher = api.post("/v1/campaigns", {
        "name": f"潍坊惠民消费券 {stamp}", "funder_kind": "government", "funder_id": BUREAU,
        "kind": "voucher", "rule": {"kind": "threshold", "discount_fen": VOUCHER_OFF_FEN,
                                    "threshold_fen": VOUCHER_OVER_FEN},
        "stock": VOUCHER_STOCK, "audience": "residents",
        "eligible_merchants": {"mccs": list(VOUCHER_MCCS)}, **_windows(clock.now()),
    })  # fmt: skip
    coupon = api.post("/v1/campaigns", {
        "name": f"老王牛肉面 满40减10 {stamp}", "funder_kind": "merchant",
        "funder_id": noodles.merchant_id, "kind": "coupon",
        "rule": {"kind": "threshold", "discount_fen": COUPON_OFF_FEN,
                 "threshold_fen": COUPON_OVER_FEN},
        "stock": COUPON_STOCK, "eligible_merchants": {"merchant_ids": [noodles.merchant_id]},
        **_windows(clock.now()),
    })  # fmt: skip
    api.post(f"/v1/campaigns/{voucher['id']}/fund", {"amount": VOUCHER_STOCK * VOUCHER_OFF_FEN})
    coupon_budget = COUPON_STOCK * COUPON_OFF_FEN
    _top_up(engine, clock, banks, noodles.merchant_id, coupon_budget)
    api.post(f"/v1/campaigns/{coupon['id']}/fund", {"amount": coupon_budget})
    day.campaigns = {"voucher": voucher, "coupon": coupon}
    for label, campaign in day.campaigns.items():
        day.claims[label] = _claim_all(api, day, campaign["id"])
    return day


def _claim_all(api: OperatorApi, day: VoucherDay, campaign_id: str) -> list[str]:
    """Every citizen tries; the stock runs out for the last ones (refused with a reason)."""
    claimed = []
    for citizen_id in day.citizens:
        response = api.send("POST", f"/v1/campaigns/{campaign_id}/claims",
                            {"citizen_id": citizen_id})  # fmt: skip
        if response.status_code == 201:
            claimed.append(citizen_id)
        else:
            code = response.json()["error"]["code"]
            day.refused[code] = day.refused.get(code, 0) + 1
    return claimed


def shop_with_vouchers(gateway: GatewayDay, vouchers: VoucherDay, *, seed: int = 17) -> None:
    """Citizens who claimed pay by QR with their citizen id: the order takes the discount."""
    rng = random.Random(seed)
    plan = [("voucher", key, VOUCHER_OVER_FEN, VOUCHER_SHOPPERS // 2)
            for key in ("supermarket", "pharmacy")]  # fmt: skip
    plan.append(("coupon", "noodle-shop", COUPON_OVER_FEN, COUPON_SHOPPERS))
    for label, merchant_key, over_fen, shoppers in plan:
        holders = [c for c in vouchers.claims[label] if c not in _shopped(vouchers, label)]
        for citizen_id in holders[:shoppers]:
            amount = over_fen + rng.randrange(0, over_fen // 2)
            order = _pay(gateway, merchant_key, citizen_id, amount, rng)
            vouchers.orders.append({"merchant": merchant_key, "label": label, **order})


def _shopped(vouchers: VoucherDay, label: str) -> set[str]:
    return {o["citizen_id"] for o in vouchers.orders if o["label"] == label}


def _pay(
    gateway: GatewayDay, merchant_key: str, citizen_id: str, amount: int, rng: random.Random
) -> dict[str, Any]:
    client = gateway.clients[merchant_key]
    order = client.create_order(
        out_trade_no=f"V{rng.randrange(10**10):010d}", amount=amount, subject="惠民消费",
        method="wechat_native", citizen_id=citizen_id,
    )  # fmt: skip
    sandbox = gateway.channels.sandbox_for(order["routing"]["connector"])
    sandbox.pay(order["id"], "success")
    gateway.orders.append({"merchant": merchant_key, **order})
    return {"citizen_id": citizen_id, **order}


def leverage_reports(api: OperatorApi, vouchers: VoucherDay) -> None:
    """The end of the day: each campaign's figures as the programme reports them."""
    for label, campaign in vouchers.campaigns.items():
        stats = api.get(f"/v1/campaigns/{campaign['id']}/stats")
        fresh = api.get(f"/v1/campaigns/{campaign['id']}")
        vouchers.reports[label] = {**stats, "issued": fresh["issued"], "stock": fresh["stock"],
                                   "funded_fen": fresh["funded_fen"]}  # fmt: skip
