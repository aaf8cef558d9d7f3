"""The store payment page (聚合码) over real HTTP: wallet detection, OAuth, amount, hand-over.

The server runs with the WeChat Pay sandbox behind the real `WeChatPayChannel`, web OAuth
included: the payer's client follows the 302s through the sandbox's authorize page and back.
UnionPay has no adapter yet, so `UnionPayWapFake` answers `unionpay_wap` the way a wap channel
does: pay parameters and the front URL they are POSTed to.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine

from cloudpay.channels.fake import FakeChannel
from cloudpay.channels.protocol import CreatePayment, PaymentCreated
from cloudpay.channels.registry import ChannelRegistry
from cloudpay.channels.wechat import WeChatPayChannel
from cloudpay.channels.wechat.sandbox import WeChatSandbox
from cloudpay.channels.wechat.sandbox.oauth import openid_for
from cloudpay.config import Settings
from cloudpay.main import create_app
from cloudpay.payments.flows import ChannelContext
from cloudpay.payments.store_sign import store_pay_url, store_qr_image
from tests.conftest import serving
from tests.e2e.gateway import CHANNEL_TIMEOUT_S, ShiftedClock, eventually, onboard, operator_post
from tests.unit.test_wallets import ALIPAY_IOS, DESKTOP_CHROME, UNIONPAY_CLOUDPAY_IOS, WECHAT_IOS

STORE_NAME = "白浪河面馆 东风街店"
UNIONPAY_FRONT_URL = "https://gateway.95516.com/gateway/api/frontTransReq.do"


class UnionPayWapFake(FakeChannel):
    """`unionpay_wap` as a wap channel answers it: a form to POST to UnionPay's front URL."""

    def create_payment(self, request: CreatePayment) -> PaymentCreated:
        super().create_payment(request)
        params = {"orderId": request.order_id, "txnAmt": str(request.amount_fen), "signature": "s"}
        return PaymentCreated(
            pay_params=params, redirect_url=UNIONPAY_FRONT_URL, redirect_method="POST"
        )


@dataclass
class Storefront:
    http: httpx.Client
    wechat: WeChatPayChannel
    sandbox: WeChatSandbox
    clock: ShiftedClock
    store_code: str
    store_name: str
    merchant_id: str

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    def payer(self, user_agent: str, *, follow_redirects: bool = False) -> httpx.Client:
        """A payer's in-app browser: its own cookie jar, its wallet's User-Agent."""
        return httpx.Client(
            base_url=self.base_url, headers={"User-Agent": user_agent}, timeout=30,
            follow_redirects=follow_redirects,
        )  # fmt: skip

    def sandbox_openid(self) -> str:
        """The openid the sandbox gives its default payer under our appid."""
        return openid_for(self.sandbox.adapter_config().appid, "sandbox-payer")


@pytest.fixture
def storefront(
    settings: Settings, engine: Engine, wechat_world: tuple[WeChatSandbox, ShiftedClock]
) -> Iterator[Storefront]:
    """Server + WeChat sandbox + UnionPay fake; an approved merchant with a store."""
    sandbox, clock = wechat_world
    wechat = WeChatPayChannel(sandbox.adapter_config(timeout_s=CHANNEL_TIMEOUT_S), clock=clock)
    unionpay = UnionPayWapFake(code="unionpay", methods=frozenset({"unionpay_wap"}))
    app = create_app(settings, engine=engine, clock=clock)
    try:
        with serving(app) as http:
            base = str(http.base_url)
            app.state.channel_context = ChannelContext(
                ChannelRegistry([wechat, unionpay]), base, clock
            )
            merchant = onboard(
                http, notify_url="http://127.0.0.1:9/hooks",
                methods=("wechat_native", "wechat_jsapi", "unionpay_wap"),
            )  # fmt: skip
            store = operator_post(
                http,
                f"/v1/merchants/{merchant.merchant_id}/stores",
                {"name": "白浪河面馆 东风街店"},
            )
            yield Storefront(
                http, wechat, sandbox, clock, store["store_code"], store["name"],
                merchant.merchant_id,
            )  # fmt: skip
    finally:
        wechat.close()


def _form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))


def _is_page(response: httpx.Response, status: int, error_code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    if error_code is not None:
        assert f'<span id="error-code">{error_code}</span>' in response.text


def _oauth_state(shop: Storefront) -> str:
    """A fresh `state` as our page hands it to WeChat's authorize page."""
    with shop.payer(WECHAT_IOS) as payer:
        location = payer.get(f"/pay/{shop.store_code}").headers["location"]
    return parse_qs(urlsplit(location).query)["state"][0]


def _sandbox_code(shop: Storefront, state: str) -> str:
    """A one-time code from the sandbox's authorize page (the payer consents at once)."""
    with shop.payer(WECHAT_IOS) as payer:
        location = payer.get(f"/pay/{shop.store_code}").headers["location"]
        back = httpx.get(location, follow_redirects=False)
    assert back.status_code == 302, back.text
    return parse_qs(urlsplit(back.headers["location"]).query)["code"][0]


def test_an_unknown_store_gets_a_friendly_404_page(storefront: Storefront) -> None:
    """A code nobody owns, or one that is not even a store code, is a person-readable 404."""
    with storefront.payer(WECHAT_IOS) as payer:
        for code in ("ZZZZ9999ZZZZ", "a!", "X" * 40):
            response = payer.get(f"/pay/{code}")
            _is_page(response, 404, "store_not_found")
            assert "找不到这家店" in response.text


def test_a_store_of_a_frozen_merchant_is_not_found(storefront: Storefront) -> None:
    """Only an approved merchant's stores take payments: a frozen one's page is a 404."""
    operator_post(
        storefront.http, f"/v1/merchants/{storefront.merchant_id}/freeze", {"reason": "风控复核"}
    )
    with storefront.payer(UNIONPAY_CLOUDPAY_IOS) as payer:
        _is_page(payer.get(f"/pay/{storefront.store_code}"), 404, "store_not_found")
        _is_page(payer.get(f"/pay/{storefront.store_code}/sign"), 404, "store_not_found")


def test_a_browser_that_is_no_wallet_is_told_which_apps_work(storefront: Storefront) -> None:
    """Desktop Chrome sees the store's name and the three apps it can scan with."""
    with storefront.payer(DESKTOP_CHROME) as browser:
        response = browser.get(f"/pay/{storefront.store_code}")
    _is_page(response, 200)
    for words in (storefront.store_name, "微信", "支付宝", "云闪付"):
        assert words in response.text
    assert "set-cookie" not in response.headers


def test_a_wallet_without_a_channel_here_is_told_so(storefront: Storefront) -> None:
    """Alipay has no channel on this deployment: the payer learns it, no order is opened."""
    with storefront.payer(ALIPAY_IOS) as payer:
        response = payer.get(f"/pay/{storefront.store_code}")
    _is_page(response, 424, "wallet_not_available")
    assert "支付宝" in response.text
    assert storefront.store_name in response.text


def test_the_unionpay_journey_ends_in_an_auto_submitted_form(storefront: Storefront) -> None:
    """云闪付: no OAuth, amount form, then a form POSTing the pay parameters to UnionPay;
    the same form sent twice finds the same order, and the receipt shows it awaiting payment."""
    with storefront.payer(UNIONPAY_CLOUDPAY_IOS) as payer:
        form = payer.get(f"/pay/{storefront.store_code}")
        _is_page(form, 200)
        cookie = form.headers["set-cookie"]
        assert "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        fields = _form_fields(form.text)
        handover = payer.post(f"/pay/{storefront.store_code}", data={**fields, "amount": "12.5"})
        _is_page(handover, 200)
        assert f'action="{UNIONPAY_FRONT_URL}"' in handover.text
        assert 'name="txnAmt" value="1250"' in handover.text
        assert ".submit()" in handover.text
        assert 'type="submit"' in handover.text
        assert "¥ 12.50" in handover.text
        again = payer.post(f"/pay/{storefront.store_code}", data={**fields, "amount": "12.5"})
        order_id = _form_fields(handover.text)["orderId"]
        assert _form_fields(again.text)["orderId"] == order_id
        [result_url] = re.findall(r'href="(/pay/[^"]+/orders/[^"]+)"', handover.text)
        receipt = payer.get(result_url.replace("&amp;", "&"))
    _is_page(receipt, 200)
    assert 'data-status="paying"' in receipt.text
    assert storefront.store_name in receipt.text


def test_the_wechat_journey_pays_through_oauth_and_the_sandbox(storefront: Storefront) -> None:
    """WeChat: OAuth at the sandbox to an openid, amount, a JSAPI order at the sandbox for that
    openid, the WeixinJSBridge hand-over; once the payer pays, the receipt says so."""
    shop = storefront
    with shop.payer(WECHAT_IOS) as payer:
        scan = payer.get(f"/pay/{shop.store_code}")
        assert scan.status_code == 302
        query = parse_qs(urlsplit(scan.headers["location"]).query)
        assert scan.headers["location"].startswith(shop.sandbox.base_url)
        assert query["scope"] == ["snsapi_base"]
        assert len(query["state"][0]) <= 128
        assert query["redirect_uri"] == [f"{shop.base_url}/pay/{shop.store_code}/authorized"]
    with shop.payer(WECHAT_IOS, follow_redirects=True) as payer:
        form = payer.get(f"/pay/{shop.store_code}")  # → WeChat → /authorized → back here
        _is_page(form, 200)
        hops = [urlsplit(str(r.url)).path for r in form.history]
        assert hops == [f"/pay/{shop.store_code}", "/connect/oauth2/authorize",
                        f"/pay/{shop.store_code}/authorized"]  # fmt: skip
        assert "httponly" in form.history[-1].headers["set-cookie"].lower()
        handover = payer.post(
            f"/pay/{shop.store_code}", data={**_form_fields(form.text), "amount": "8.80"}
        )
        _is_page(handover, 200)
        assert "getBrandWCPayRequest" in handover.text
        assert "prepay_id=" in handover.text
        [(result_url, order_id)] = re.findall(
            r'href="(/pay/[^"]+/orders/([^"?]+)[^"]*)"', handover.text
        )
        [at_wechat] = shop.sandbox._core.state.orders_snapshot(order_id)  # no public reader
        assert at_wechat.command.total_fen == 880
        assert at_wechat.command.payer == {"openid": shop.sandbox_openid()}
        shop.sandbox.pay(order_id, "success")

        def paid() -> str | None:
            receipt = payer.get(result_url.replace("&amp;", "&"))
            return receipt.text if 'data-status="succeeded"' in receipt.text else None

        assert "付款成功" in eventually(paid, what="the receipt to show the payment")


@pytest.mark.parametrize(
    "typed", ["0", "0.00", "-1", "abc", "1.234", "1000000.01", "", "1e3", "NaN", "１２", "1,000"]
)
def test_a_bad_amount_shows_the_form_again_with_a_400(storefront: Storefront, typed: str) -> None:
    """Zero, negatives, too many decimals, over 1,000,000 yuan and non-numbers are refused
    with the form and its error; the form keeps its nonce so the retry is the same order."""
    with storefront.payer(UNIONPAY_CLOUDPAY_IOS) as payer:
        fields = _form_fields(payer.get(f"/pay/{storefront.store_code}").text)
        response = payer.post(f"/pay/{storefront.store_code}", data={**fields, "amount": typed})
    _is_page(response, 400)
    assert 'id="amount-error"' in response.text
    assert _form_fields(response.text)["nonce"] == fields["nonce"]


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("0.01", "0.01"), ("12.", "12.00"), (" 7.5 ", "7.50"), ("1000000", "1,000,000.00")],
)
def test_amounts_at_the_edges_are_taken_exactly(
    storefront: Storefront, typed: str, shown: str
) -> None:
    """One fen and exactly 1,000,000 yuan are payable; yuan become fen without rounding."""
    with storefront.payer(UNIONPAY_CLOUDPAY_IOS) as payer:
        fields = _form_fields(payer.get(f"/pay/{storefront.store_code}").text)
        response = payer.post(f"/pay/{storefront.store_code}", data={**fields, "amount": typed})
    _is_page(response, 200)
    assert f"¥ {shown}" in response.text
    assert f'name="txnAmt" value="{shown.replace(",", "").replace(".", "").lstrip("0")}"' in (
        response.text
    )


def test_a_form_without_its_cookie_or_token_is_refused(storefront: Storefront) -> None:
    """CSRF: the token is bound to the payer's cookie and the form's nonce."""
    with storefront.payer(UNIONPAY_CLOUDPAY_IOS) as payer:
        fields = _form_fields(payer.get(f"/pay/{storefront.store_code}").text)
        forged = payer.post(
            f"/pay/{storefront.store_code}", data={**fields, "csrf": "0" * 32, "amount": "1"}
        )
        other_nonce = payer.post(
            f"/pay/{storefront.store_code}", data={**fields, "nonce": "A" * 12, "amount": "1"}
        )
    with storefront.payer(UNIONPAY_CLOUDPAY_IOS) as stranger:
        no_cookie = stranger.post(f"/pay/{storefront.store_code}", data={**fields, "amount": "1"})
    for response in (forged, other_nonce, no_cookie):
        _is_page(response, 400, "form_expired")


def test_a_bad_or_expired_oauth_state_is_a_400_page(storefront: Storefront) -> None:
    """A tampered, foreign or stale `state`, or a payer who declined, never yields a session."""
    shop = storefront
    state = _oauth_state(shop)
    with shop.payer(WECHAT_IOS) as payer:
        authorized = f"/pay/{shop.store_code}/authorized"
        store, wallet, expiry, mac = state.split("_")
        for bad in ("", "garbage", f"{store}_{wallet}_{int(expiry) + 60}_{mac}", f"{state}0"):
            response = payer.get(authorized, params={"code": "c", "state": bad})
            _is_page(response, 400, "state_invalid")
        declined = payer.get(authorized, params={"state": state})
        _is_page(declined, 400, "authorization_declined")
        shop.clock.advance(minutes=11)
        code = _sandbox_code(shop, state)
        stale = payer.get(authorized, params={"code": code, "state": state})
        _is_page(stale, 400, "state_invalid")
        assert "set-cookie" not in stale.headers


def test_a_reused_oauth_code_is_refused_by_the_wallet(storefront: Storefront) -> None:
    """The sandbox refuses a code used twice (40163); the payer sees a page, not a 500."""
    shop = storefront
    state = _oauth_state(shop)
    code = _sandbox_code(shop, state)
    authorized = f"/pay/{shop.store_code}/authorized"
    with shop.payer(WECHAT_IOS) as payer:
        first = payer.get(authorized, params={"code": code, "state": state})
        again = payer.get(authorized, params={"code": code, "state": state})
    assert first.status_code == 303
    _is_page(again, 424, "payer_unresolved")


def test_a_receipt_needs_its_token(storefront: Storefront) -> None:
    """Receipts cannot be enumerated: a wrong token is a 404 page."""
    with storefront.payer(UNIONPAY_CLOUDPAY_IOS) as payer:
        response = payer.get(f"/pay/{storefront.store_code}/orders/ord_X?t=" + "0" * 24)
    _is_page(response, 404, "order_not_found")


def test_the_store_qr_images_and_the_printable_sign_render(storefront: Storefront) -> None:
    """PNG and SVG of the store's URL, and an A6 sign with the name, wallets, code and QR."""
    shop = storefront
    url = store_pay_url(shop.base_url, shop.store_code)
    png = shop.http.get(f"/pay/{shop.store_code}/qr.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.content == store_qr_image(url, "png")  # it encodes the store page's URL
    svg = shop.http.get(f"/pay/{shop.store_code}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert ElementTree.fromstring(svg.content).tag.endswith("svg")  # noqa: S314 (our output)
    assert shop.http.get(f"/pay/{shop.store_code}/qr.gif").status_code == 404
    sign = shop.http.get(f"/pay/{shop.store_code}/sign")
    _is_page(sign, 200)
    for words in (shop.store_name, "微信 · 支付宝 · 云闪付 扫码付款", shop.store_code, "size: A6"):
        assert words in sign.text
    [inline_svg] = re.findall(r"<svg.*?</svg>", sign.text, re.DOTALL)
    assert ElementTree.fromstring(inline_svg).tag.endswith("svg")  # noqa: S314
