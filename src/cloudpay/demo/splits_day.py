"""The supermarket chain's split (分账), as a multi-level merchant sets it up through the signed
merchant API: the chain (HQ) binds its franchise store and the store's vegetable supplier as
receivers, each with an e-account at the city bank, and a standing rule — the store gets 20% of
every order, and the supplier 5% out of the store's part (HQ → store → supplier). The
settlement run pays each receiver like a merchant; the summary shows what each one got.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudpay.channels.bank.protocol import AccountClass as BankClass
from cloudpay.channels.bank.protocol import OwnerKind
from cloudpay.channels.bank.sandbox.people import applicant
from cloudpay.demo.gateway_day import GatewayDay
from cloudpay.demo.servers import OperatorApi
from cloudpay.demo.settlement_day import DemoBanks
from cloudpay.sdk import CloudPayClient

CHAIN = "supermarket"
BANK = "WFCB"
FRANCHISE_STORE = "胜利街店"  # one of the chain's stores (city.py), run by a franchisee
STORE_HOLDER, STORE_RATE_BP = "刘建华", "2000"
SUPPLIER = ("寿光市绿源蔬菜批发部", "孙海燕", "500")  # name, holder, rate: out of the store's part


@dataclass
class ChainSplits:
    receivers: dict[str, dict[str, Any]] = field(default_factory=dict)  # receiver id → view
    rules: dict[str, Any] = field(default_factory=dict)
    balances: dict[str, dict[str, Any]] = field(default_factory=dict)  # after the day


def _bind(client: CloudPayClient, banks: DemoBanks, holder: str, receiver: dict[str, Any]) -> Any:
    """A receiver with its own Class II e-account at the city bank, opened for it now."""
    person = applicant(name=holder)
    opened = banks.clients[BANK].open_account(person.open_request(
        BankClass.CLASS_II, owner_reference=receiver["name"], owner_kind=OwnerKind.MERCHANT
    ))  # fmt: skip
    account = {"bank_code": BANK, "account_class": "class_ii", "account_no": opened.account_no}
    return client.request("POST", "/v1/split-receivers", json={**receiver, "account": account})


def set_up_splits(gateway: GatewayDay, banks: DemoBanks, api: OperatorApi) -> ChainSplits:
    """Morning: the chain binds its receivers and sets its standing rule."""
    onboarded = next(o for o in gateway.city if o.merchant.key == CHAIN)
    stores = api.get(f"/v1/merchants/{onboarded.merchant_id}/stores")["data"]
    franchise = next(s for s in stores if FRANCHISE_STORE in s["name"])
    client = gateway.clients[CHAIN]
    store = _bind(
        client,
        banks,
        STORE_HOLDER,
        {"kind": "store", "name": franchise["name"], "reference_id": franchise["id"]},
    )
    supplier_name, supplier_holder, supplier_rate_bp = SUPPLIER
    supplier = _bind(client, banks, supplier_holder, {"kind": "supplier", "name": supplier_name})
    chain = ChainSplits({store["id"]: store, supplier["id"]: supplier})
    chain.rules = client.request("PUT", "/v1/split-rules", json={"rules": [
        {"receiver_id": store["id"], "rate_bp": STORE_RATE_BP},
        {"receiver_id": supplier["id"], "rate_bp": supplier_rate_bp, "split_from": store["id"]},
    ]})  # fmt: skip
    return chain


def receiver_balances(gateway: GatewayDay, chain: ChainSplits) -> None:
    """Night, after settlement: what each receiver was split, holds and has been paid."""
    client = gateway.clients[CHAIN]
    for receiver_id in chain.receivers:
        chain.balances[receiver_id] = client.request("GET", f"/v1/split-receivers/{receiver_id}")
