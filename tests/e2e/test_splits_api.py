"""Splits (分账) over signed HTTP: receivers bound in advance, standing multi-level rules, an
order split now, a delayed split finished and another auto-unfrozen after the merchant's
days, a refund taking back from the receivers, each receiver paid to its own e-account;
and bad input refused with a clear 4xx and nothing written."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, table

from cloudpay import ledger
from cloudpay.channels.bank import PartnerBankClient
from cloudpay.channels.bank.protocol import AccountClass as BankClass
from cloudpay.channels.bank.protocol import OwnerKind
from cloudpay.channels.bank.sandbox import start_bank_sandbox
from cloudpay.channels.bank.sandbox.people import applicant
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.config import Settings
from cloudpay.kernel.clock import FixedClock
from cloudpay.main import create_app
from cloudpay.payments import flows as payment_flows
from cloudpay.payments import service as payment_service
from cloudpay.sdk import CloudPayAPIError, CloudPayClient
from cloudpay.settlement import FeePlan
from cloudpay.settlement.flows import SettlementContext
from cloudpay.settlement.payouts import mirror_custody_opening
from tests.conftest import OPERATOR_HEADERS, serving
from tests.e2e.gateway import MerchantApp, onboard
from tests.integration.test_settlement_journal import World

MONDAY = date(2026, 3, 2)  # an ordinary week: T+1 of Monday is Tuesday
BANK = "WFCB"
SPLIT_TABLES = ("orders", "settlement_splits", "settlement_split_parts", "ledger_transfers")
_numbers = itertools.count(1)


@dataclass
class Splits:
    http: httpx.Client
    world: World
    bank: PartnerBankClient
    merchant: MerchantApp
    client: CloudPayClient

    def signed(self, method: str, path: str, body: Any = None) -> Any:
        return self.client.request(method, path, json=body)

    def refused(self, method: str, path: str, body: Any, status: int, code: str) -> None:
        with pytest.raises(CloudPayAPIError) as caught:
            self.signed(method, path, body)
        assert (caught.value.status, caught.value.code) == (status, code), caught.value

    def e_account(self, owner: str) -> dict[str, str]:
        person = applicant()
        opened = self.bank.open_account(
            person.open_request(
                BankClass.CLASS_II, owner_reference=owner, owner_kind=OwnerKind.MERCHANT
            )
        )
        return {"bank_code": BANK, "account_class": "class_ii", "account_no": opened.account_no}

    def bank_balance(self, account: dict[str, str]) -> int:
        return self.bank.balance(account["account_no"]).balance_fen

    def order(self, amount_fen: int, split: dict[str, Any] | None = None, pay: bool = True) -> str:
        """An order of the merchant's app through the payments flow, paid by the fake wallet."""
        w = self.world
        ctx = payment_flows.ChannelContext(ChannelRegistry([w.fake]), "http://127.0.0.1:9", w.clock)
        request = payment_service.OrderRequest(
            app_id=self.merchant.app_id,
            merchant_id=self.merchant.merchant_id,
            out_trade_no=f"S{next(_numbers)}",
            amount=amount_fen,
            currency="CNY",
            subject="面",
            method="wechat_native",
            expire_at=None,
            notify_url="http://127.0.0.1:9/hook",
            metadata={},
            split=split,
        )
        order = payment_flows.place_order(
            w.transact, ctx, request=request, enabled_methods=frozenset({"wechat_native"})
        )
        if pay:
            w.fake.customer_pays(order.id)
            headers, body = w.fake.notification_for(order.id, f"n{order.id}")
            payment_flows.handle_notification(w.transact, w.fake, headers, body)
        return order.id

    def refund(self, order_id: str, amount_fen: int) -> None:
        w = self.world
        ctx = payment_flows.ChannelContext(ChannelRegistry([w.fake]), "http://127.0.0.1:9", w.clock)
        payment_flows.refund_order(
            w.transact,
            ctx,
            app_id=self.merchant.app_id,
            order_id=order_id,
            out_refund_no=f"R{next(_numbers)}",
            amount=amount_fen,
            reason=None,
        )

    def run(self, business_date: date) -> dict[str, Any]:
        self.world.at(business_date, 2)
        response = self.http.post(
            "/v1/settlement_runs",
            json={"business_date": business_date.isoformat()},
            headers=OPERATOR_HEADERS,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def line(self, trade_date: date) -> dict[str, Any]:
        listed = self.http.get(
            "/v1/settlements",
            params={"merchant_id": self.merchant.merchant_id},
            headers=OPERATOR_HEADERS,
        ).json()["data"]
        [found] = [line for line in listed if line["trade_date"] == trade_date.isoformat()]
        detail: dict[str, Any] = self.http.get(
            f"/v1/settlements/{found['id']}", headers=OPERATOR_HEADERS
        ).json()
        return detail

    def counts(self) -> dict[str, int]:
        with self.world.engine.connect() as connection:
            return {
                name: connection.execute(select(func.count()).select_from(table(name))).scalar_one()
                for name in SPLIT_TABLES
            }

    def books_balance(self) -> bool:
        return bool(self.world.transact(ledger.check_books).ok)


@pytest.fixture
def splits(settings: Settings, engine: Engine) -> Iterator[Splits]:
    clock = FixedClock(datetime(2026, 3, 1, 20, tzinfo=UTC))  # Monday 04:00 in Shanghai
    with (
        start_bank_sandbox(bank_code=BANK, time_scale=0.001, clock=clock) as sandbox,
        PartnerBankClient(sandbox.adapter_config(), clock=clock) as bank,
    ):
        world = World(engine, clock)
        custody = bank.balance(bank.custody_account_no).balance_fen
        world.transact(lambda uow: mirror_custody_opening(uow, bank_code=BANK, balance_fen=custody))
        app = create_app(settings, engine=engine, clock=clock)
        app.state.settlement_context = SettlementContext(banks={BANK: bank})
        with serving(app) as http:
            merchant = onboard(
                http, notify_url="http://127.0.0.1:9/hook", methods=("wechat_native",)
            )
            client = CloudPayClient(
                str(http.base_url).rstrip("/"),
                merchant.app_id,
                merchant.private_key,
                merchant.serial_no,
                clock=lambda: clock.now().timestamp(),
            )
            yield Splits(http, world, bank, merchant, client)
            client.close()


def _store(s: Splits) -> str:
    code = f"SP{next(_numbers):04d}{datetime.now(UTC).strftime('%H%M%S')}"
    response = s.http.post(
        f"/v1/merchants/{s.merchant.merchant_id}/stores",
        json={"name": "加盟店", "store_code": code},
        headers=OPERATOR_HEADERS,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _receivers(s: Splits) -> tuple[str, str, str, dict[str, str], dict[str, str]]:
    """A franchise store and a supplier, each with an e-account, and the platform."""
    store_account, supplier_account = s.e_account("store"), s.e_account("supplier")
    store = s.signed(
        "POST",
        "/v1/split-receivers",
        {
            "kind": "store",
            "name": "加盟店",
            "reference_id": _store(s),
            "account": store_account,
        },
    )
    supplier = s.signed(
        "POST",
        "/v1/split-receivers",
        {
            "kind": "supplier",
            "name": "潍坊面粉厂",
            "account": supplier_account,
        },
    )
    platform = s.signed("POST", "/v1/split-receivers", {"kind": "platform", "name": "平台"})
    assert supplier["account_no"] != supplier_account["account_no"]  # masked
    assert supplier["account_no"].endswith(supplier_account["account_no"][-4:])
    return store["id"], supplier["id"], platform["id"], store_account, supplier_account


UNKNOWN = "rcv_0000000000000000000000000X"
Case = tuple[str, str, Any, int, str]  # method, path, body, status, code


def _order_body(split: Any) -> dict[str, Any]:
    return {
        "out_trade_no": f"B{next(_numbers)}",
        "amount": 10_000,
        "subject": "面",
        "method": "wechat_native",
        "split": split,
    }


def _now(*parts: tuple[str, int]) -> dict[str, Any]:
    return {"mode": "now", "parts": [{"receiver_id": r, "amount_fen": a} for r, a in parts]}


def _split_body(order_id: str, *parts: tuple[str, int], finish: bool = False) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "out_split_no": f"X{next(_numbers)}",
        "finish": finish,
        "parts": [{"receiver_id": r, "amount_fen": a} for r, a in parts],
    }


def _mondays_orders(s: Splits, store: str, supplier: str, platform: str) -> tuple[str, str]:
    """Monday: an order under the standing rules, one split now, and three held for a delayed
    split: one split then unfrozen, one split with `finish`, one left for auto-unfreeze.
    Returns (the order under the rules, the order left held)."""
    s.world.at(MONDAY, 10)
    by_rules = s.order(10_000)  # fee 60: store 10 % of 9 940 = 994, of which supplier 199
    s.order(20_000, _now((supplier, 1_000), (platform, 500)))
    held = s.order(30_000, {"mode": "delayed"})
    finished = s.order(5_000, {"mode": "delayed"})
    auto = s.order(40_000, {"mode": "delayed"})
    split = s.signed("POST", "/v1/splits", _split_body(held, (supplier, 3_000)))
    assert (split["status"], split["amount_fen"]) == ("held", 3_000)
    unfrozen = s.signed("POST", f"/v1/splits/{split['id']}/unfreeze")
    assert unfrozen["status"] == "released"
    last = s.signed("POST", "/v1/splits", _split_body(finished, (platform, 100), finish=True))
    assert last["status"] == "released"
    assert s.signed("GET", f"/v1/splits/{last['id']}")["parts"][0]["amount_fen"] == 100
    return by_rules, auto


def test_splits_through_a_week_pay_each_receiver(splits: Splits) -> None:
    """Standing rules HQ → store → supplier, a split now, delayed splits (unfreeze by split,
    finish, automatic after 3 days) and a refund's split return: every line, receiver payout
    and e-account balance to the fen, and the books balance."""
    s = splits
    shop = s.merchant.merchant_id
    s.world.fee_plan(shop, FeePlan.percent(60))
    s.world.profile(shop, account_no=s.e_account("shop")["account_no"])
    store, supplier, platform, store_account, supplier_account = _receivers(s)
    rules = s.signed(
        "PUT",
        "/v1/split-rules",
        {
            "cap_bp": "3000",
            "auto_unfreeze_days": 3,
            "rules": [
                {"receiver_id": store, "rate_bp": "1000"},
                {"receiver_id": supplier, "rate_bp": "2000", "split_from": store},
            ],
        },
    )
    assert rules["auto_unfreeze_days"] == 3
    by_rules, auto = _mondays_orders(s, store, supplier, platform)
    s.run(MONDAY + timedelta(days=1))
    monday = s.line(MONDAY)
    assert (monday["gross_fen"], monday["fees_fen"]) == (65_000, 390)  # the auto order waits
    assert monday["splits_fen"] == 994 + 1_500 + 3_000 + 100
    assert monday["net_fen"] == 65_000 - 390 - 5_594
    by_receiver = {item["receiver_id"]: item["split_fen"] for item in monday["split_receivers"]}
    assert by_receiver == {store: 795, supplier: 199 + 1_000 + 3_000, platform: 600}
    assert sum(item["amount_fen"] for item in monday["line_items"]) == monday["net_fen"]
    assert s.bank_balance(supplier_account) == 4_199
    assert s.bank_balance(store_account) == 795

    s.world.at(MONDAY + timedelta(days=1), 10)
    s.refund(by_rules, 10_000)
    s.order(50_000)  # fee 300: store 4 970, of which supplier 994
    s.run(MONDAY + timedelta(days=2))
    tuesday = s.line(MONDAY + timedelta(days=1))
    assert (tuesday["refunds_fen"], tuesday["fee_returns_fen"]) == (10_000, 60)
    assert (tuesday["splits_fen"], tuesday["split_returns_fen"]) == (4_970, 994)
    assert tuesday["net_fen"] == 50_000 - 10_000 - 300 + 60 - 4_970 + 994
    returned = {item["receiver_id"]: item["returned_fen"] for item in tuesday["split_receivers"]}
    assert returned == {store: 795, supplier: 199}
    assert s.bank_balance(supplier_account) == 4_199 + 994 - 199
    assert s.bank_balance(store_account) == 795 + 3_976 - 795
    receiver = s.signed("GET", f"/v1/split-receivers/{supplier}")["balance"]
    assert (receiver["split_fen"], receiver["returned_fen"]) == (4_199 + 994, 199)
    assert receiver["available_fen"] == 0

    s.run(MONDAY + timedelta(days=3))  # Thursday 02:00: not yet 3 days since Monday 10:00
    assert s.signed("GET", f"/v1/orders/{auto}")["split_released"] is None
    s.run(MONDAY + timedelta(days=4))  # Friday's run releases it: it settles with Friday
    assert s.signed("GET", f"/v1/orders/{auto}")["split_released"] is not None
    s.run(MONDAY + timedelta(days=7))  # T+1 of Friday is Monday
    friday = s.line(MONDAY + timedelta(days=4))
    assert (friday["gross_fen"], friday["splits_fen"], friday["net_fen"]) == (40_000, 0, 39_760)
    assert s.books_balance()


def _bad_orders(supplier: str) -> list[Case]:
    many = [(f"rcv_{n:026d}", 1) for n in range(51)]
    return [
        ("POST", "/v1/orders", _order_body(_now((supplier, 3_001))), 400, "split_over_cap"),
        ("POST", "/v1/orders", _order_body(_now((UNKNOWN, 10))), 400, "split_receiver_unbound"),
        ("POST", "/v1/orders", _order_body(_now((supplier, -5))), 400, "amount_invalid"),
        ("POST", "/v1/orders", _order_body(_now((supplier, 0))), 400, "amount_invalid"),
        ("POST", "/v1/orders", _order_body({"mode": "now"}), 400, "split_instruction_invalid"),
        ("POST", "/v1/orders", _order_body(_now(*many)), 400, "split_receivers_too_many"),
        ("POST", "/v1/split-receivers", {"kind": "supplier", "name": "无账户"}, 400,
         "split_receiver_invalid"),
        ("PUT", "/v1/split-rules", {"rules": [{"receiver_id": supplier, "rate_bp": "3500"}]}, 400,
         "split_over_cap"),
        ("PUT", "/v1/split-rules", {"rules": [{"receiver_id": UNKNOWN, "rate_bp": "10"}]}, 400,
         "split_receiver_unbound"),
    ]  # fmt: skip


def _bad_splits(supplier: str, orders: dict[str, str]) -> list[Case]:
    held, finished = orders["held"], orders["finished"]
    used = {**_split_body(held, (supplier, 5)), "out_split_no": "H1"}
    unknown_order = UNKNOWN.replace("rcv", "ord")
    return [
        ("POST", "/v1/splits", _split_body(orders["unpaid"], (supplier, 10)), 409,
         "order_not_paid"),
        ("POST", "/v1/splits", _split_body(orders["not_held"], (supplier, 10)), 409,
         "order_not_held"),
        ("POST", "/v1/splits", _split_body(held, (supplier, 1_001)), 400, "split_over_cap"),
        ("POST", "/v1/splits", _split_body(held, (supplier, -1)), 400, "amount_invalid"),
        ("POST", "/v1/splits", _split_body(held, (UNKNOWN, 10)), 400, "split_receiver_unbound"),
        ("POST", "/v1/splits", _split_body(finished, (supplier, 10)), 409, "split_finished"),
        ("POST", f"/v1/orders/{finished}/unfreeze", None, 409, "split_finished"),
        ("POST", "/v1/splits", _split_body(unknown_order, (supplier, 1)), 404, "order_not_found"),
        ("POST", "/v1/splits", used, 409, "out_split_no_used"),
    ]  # fmt: skip


def _orders_for_bad_splits(s: Splits, supplier: str, platform: str) -> dict[str, str]:
    """An unpaid order, a paid one not held, one held with 2 000 of its 3 000 cap split, and
    one whose split was finished."""
    orders = {
        "unpaid": s.order(10_000, {"mode": "delayed"}, pay=False),
        "not_held": s.order(10_000),
        "held": s.order(10_000, {"mode": "delayed"}),
        "finished": s.order(10_000, {"mode": "delayed"}),
    }
    s.signed("POST", "/v1/splits", _split_body(orders["finished"], (platform, 10), finish=True))
    first = {**_split_body(orders["held"], (supplier, 2_000)), "out_split_no": "H1"}
    s.signed("POST", "/v1/splits", first)
    return orders


def test_bad_split_input_is_refused_and_nothing_is_written(splits: Splits) -> None:
    """Over the cap, an unknown or unbound receiver, negative amounts, an unpaid or not held
    order, a second split over the total, a split after finish: each a 4xx with its code,
    and no order, split, part or ledger transfer written."""
    s = splits
    s.world.fee_plan(s.merchant.merchant_id, FeePlan.percent(0))
    _store_id, supplier, platform, _a, _b = _receivers(s)
    s.world.at(MONDAY, 10)
    orders = _orders_for_bad_splits(s, supplier, platform)
    before = s.counts()
    for method, path, body, status, code in _bad_orders(supplier) + _bad_splits(supplier, orders):
        s.refused(method, path, body, status, code)
    assert s.counts() == before
    assert s.signed("GET", "/v1/split-rules")["rules"] == []
    s.signed("DELETE", f"/v1/split-receivers/{supplier}")
    s.signed("DELETE", f"/v1/split-receivers/{supplier}")  # unbinding twice is one unbind
    unbound = _split_body(orders["held"], (supplier, 10))
    s.refused("POST", "/v1/splits", unbound, 400, "split_receiver_unbound")
    assert s.counts() == before
    assert s.books_balance()
