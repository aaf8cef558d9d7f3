"""The demo's payers: people who scan a store's one QR in their wallet's browser, and people
who show a payment code at the till.

A store-QR payer is an httpx client with a wallet's User-Agent that follows the page through
the wallet's OAuth (the sandboxes consent at once), types the amount, and then pays the order
the hand-over page names in that wallet's sandbox — what the wallet app would do.
"""

from __future__ import annotations

import html
import random
import re
from typing import Any

import httpx

from cloudpay.demo.channels import DemoChannels
from cloudpay.demo.city import Onboarded

USER_AGENTS = {
    "wechat": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322a) NetType/WIFI",
    "alipay": "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36 AlipayClient/10.6.20.8000 Language/zh-Hans",
    "unionpay": "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36 (UnionPay/1.0 CloudPay)",
}
_CONNECTOR_OF_WALLET = {"wechat": "wechat", "alipay": "alipay", "unionpay": "unionpay"}
_FIELDS = re.compile(r'name="(\w+)" value="([^"]*)"')
_ACTION = re.compile(r'<form[^>]+action="([^"]+)"')
_RECEIPT = re.compile(r'href="(/pay/[^"]+/orders/([^"?]+)[^"]*)"')


def pay_at_store(
    api_url: str, channels: DemoChannels, onboarded: Onboarded, amount_fen: int,
    rng: random.Random,
) -> dict[str, Any] | None:  # fmt: skip
    """One payer scans one of the merchant's store QRs and pays; the order as the receipt
    link names it (None if the page did not get that far)."""
    if not onboarded.store_codes:
        return None
    store = rng.choice(onboarded.store_codes)
    wallet = rng.choice(sorted(USER_AGENTS))
    headers = {"User-Agent": USER_AGENTS[wallet]}
    with httpx.Client(base_url=api_url, headers=headers, follow_redirects=True,
                      timeout=30) as browser:  # fmt: skip
        form = browser.get(f"/pay/{store}")
        if form.status_code != 200:
            return None
        yuan = f"{amount_fen // 100}.{amount_fen % 100:02d}"
        handover = browser.post(f"/pay/{store}", data={**dict(_FIELDS.findall(form.text)),
                                                       "amount": yuan})  # fmt: skip
        found = _RECEIPT.findall(handover.text)
        if handover.status_code != 200 or not found:
            return None
        order_id = found[0][1]
        if wallet == "unionpay":
            _post_wap_form(handover.text)
    channels.sandbox_for(_CONNECTOR_OF_WALLET[wallet]).pay(order_id, "success")
    return {"id": order_id, "amount": amount_fen, "wallet": wallet, "store_code": store}


def _post_wap_form(page: str) -> None:
    """The payer's browser submits the signed form to UnionPay (the page auto-submits it)."""
    action = html.unescape(_ACTION.findall(page)[0])
    fields = {name: html.unescape(value) for name, value in _FIELDS.findall(page)}
    httpx.post(action, data=fields, timeout=30, follow_redirects=False)


def payment_code(channels: DemoChannels, rng: random.Random) -> str:
    """A payment code from a random wallet; a few are refused for want of balance."""
    wallet = rng.choice(("wechat", "alipay", "unionpay"))
    prefix, length = {"wechat": ("13", 18), "alipay": ("28", 18), "unionpay": ("62", 19)}[wallet]
    code = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix)))
    if rng.random() < 0.08:
        _refuse(channels, wallet, code)
    return code


def _refuse(channels: DemoChannels, wallet: str, code: str) -> None:
    if wallet == "wechat":
        channels.bank_wechat.expect_micropay(code, "insufficient_balance")
        channels.provider_wechat.expect_micropay(code, "insufficient_balance")
    elif wallet == "alipay":
        channels.alipay.register_auth_code(code, "insufficient_balance")
    else:
        channels.unionpay.register_auth_code(code, "declined")
