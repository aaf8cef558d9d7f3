"""The store QR page (聚合码) with a voucher: after WeChat OAuth, a payer who is a known
citizen sees their best voucher on the amount form, and the order the form opens applies it —
recomputed by the server, so WeChat is asked for the reduced amount."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.e2e.test_storefront import (  # noqa: F401 — the storefront fixture, reused
    Storefront,
    _form_fields,
    storefront,
)
from tests.e2e.test_voucher_journey import campaign_at, citizen_at, claim_at
from tests.unit.test_wallets import WECHAT_IOS


def test_a_known_payer_sees_the_voucher_and_pays_the_reduced_amount(
    storefront: Storefront,  # noqa: F811
) -> None:
    """满40减10 in the wallet of the citizen behind the sandbox's openid: the form says so, a
    50-yuan payment asks WeChat for 40 and the hand-over shows the price and the discount; a
    payer with no voucher sees no offer."""
    shop = storefront
    with shop.payer(WECHAT_IOS, follow_redirects=True) as stranger:
        assert 'id="offers"' not in stranger.get(f"/pay/{shop.store_code}").text
    campaign_id = campaign_at(shop.http, shop.clock, stock=2, valid_for=timedelta(days=7))
    citizen_id = citizen_at(shop.http, 41, "wechat", shop.sandbox_openid())
    claim_at(shop.http, campaign_id, citizen_id)
    with shop.payer(WECHAT_IOS, follow_redirects=True) as payer:
        form = payer.get(f"/pay/{shop.store_code}")  # → WeChat OAuth → back here
        assert form.status_code == 200, form.text
        assert 'id="offers"' in form.text
        assert "最高减 10.00 元" in form.text
        assert "满 40.00 元可用" in form.text
        fields = {**_form_fields(form.text), "amount": "50"}
        handover = payer.post(f"/pay/{shop.store_code}", data=fields)
        assert handover.status_code == 200, handover.text
        assert "¥ 40.00" in handover.text
        assert 'id="discount"' in handover.text
        assert "¥50.00" in handover.text
        [order_id] = set(re.findall(r'href="/pay/[^"]+/orders/([^"?]+)', handover.text))
    [at_wechat] = shop.sandbox._core.state.orders_snapshot(order_id)  # no public reader
    assert at_wechat.command.total_fen == 4_000
    assert at_wechat.command.payer == {"openid": shop.sandbox_openid()}
