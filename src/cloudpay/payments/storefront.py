"""The store payment page behind a printed sign: one QR for every wallet (聚合码 / 一码付).

`GET /pay/{store_code}` works out the wallet from the in-app browser's User-Agent, gets the
payer's id from the wallet by OAuth when its in-wallet payment needs one (WeChat openid,
Alipay user id; UnionPay needs none), asks for the amount, opens an order through the normal
payments flow and hands it to the wallet's own cashier:
- WeChat: `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`
  (https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter3_1_4.shtml);
- Alipay: `AlipayJSBridge.call('tradePay', {tradeNO})`
  (https://myjsapi.alipay.com/jsapi/native/trade-pay.html);
- UnionPay: an auto-submitted form POST of the pay parameters to the channel's front URL.

Payers are anonymous, so these routes are not signed: a short-lived HMAC-signed cookie holds
the wallet and payer id, the form carries a CSRF token bound to that cookie and a one-time
nonce that becomes the order's `out_trade_no` (a double-submitted form finds the same order),
and the result page takes an unguessable token as QR images do (qr.py). A person reads these
answers, so failures are HTML pages, each naming its error code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cloudpay import merchants
from cloudpay.channels.protocol import ChannelError, PayerIdentityProvider
from cloudpay.channels.registry import UnknownChannel
from cloudpay.db.unit_of_work import UnitOfWork, transactor
from cloudpay.kernel.errors import CloudPayError
from cloudpay.payments import discounts, flows, qr, service, store_sign
from cloudpay.payments.model import AGGREGATED_QR, OPEN_STATUSES
from cloudpay.payments.repository import OrderRow
from cloudpay.payments.wallets import IN_WALLET_METHOD, Wallet, detect_wallet
from cloudpay.web.deps import Runner, TxRunner

router = APIRouter(tags=["storefront"], include_in_schema=False)
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

SESSION_COOKIE = "cloudpay_payer"
SESSION_TTL_S = 30 * 60  # one visit to the till; a new scan starts over
STATE_TTL_S = 10 * 60  # the OAuth round trip to the wallet and back
MAX_COUNTER_AMOUNT_FEN = 1_000_000 * 100  # 1,000,000 yuan: far above any counter payment
MAX_OAUTH_CODE_CHARS = 256  # WeChat codes are 32 characters, Alipay's a little longer
NONCE_CHARS = 12  # 60 bits; with "qr" and a 16-char store code, out_trade_no stays ≤ 32
_NONCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as our ids
_NONCE = re.compile(rf"[{_NONCE_ALPHABET}]{{{NONCE_CHARS}}}")
_STORE_CODE = re.compile(r"[A-Za-z0-9]{4,16}")
_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
# Wallets whose in-wallet payment needs the payer's id from OAuth first.
_NEEDS_PAYER_ID = frozenset({Wallet.WECHAT, Wallet.ALIPAY})
WALLET_NAMES = {Wallet.WECHAT: "微信", Wallet.ALIPAY: "支付宝", Wallet.UNIONPAY: "云闪付"}


# ----------------------------------------------------------------- signed tokens


def _storefront_key(request: Request) -> bytes:
    """Derived from the same secret as the QR key (payments/api.py), for another purpose."""
    secret: str = request.app.state.settings.blind_index_key_hex.get_secret_value()
    return hashlib.sha256(b"cloudpay-storefront:" + secret.encode()).digest()


def _now_s(request: Request) -> int:
    now_ns: int = request.app.state.clock.now_ns()
    return now_ns // 1_000_000_000


def _mac(key: bytes, purpose: str, message: str) -> str:
    return hmac.new(key, f"{purpose}:{message}".encode(), hashlib.sha256).hexdigest()[:32]


def seal(key: bytes, purpose: str, fields: dict[str, str], *, expires_at_s: int) -> str:
    """`fields` readable by us only if untouched and before `expires_at_s` (Unix seconds)."""
    body = json.dumps({**fields, "exp": expires_at_s}, separators=(",", ":"), sort_keys=True)
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_mac(key, purpose, payload)}"


def unseal(key: bytes, purpose: str, token: str | None, *, now_s: float) -> dict[str, str] | None:
    """The fields of a token `seal` made for `purpose`; None if forged, altered or expired."""
    payload, _, mac = (token or "").partition(".")
    if not payload or not hmac.compare_digest(_mac(key, purpose, payload), mac):
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    if not isinstance(fields, dict) or not isinstance(fields.get("exp"), int):
        return None
    if fields.pop("exp") <= now_s:
        return None
    return {name: str(value) for name, value in fields.items()}


def oauth_state(key: bytes, store_code: str, wallet: Wallet, *, expires_at_s: int) -> str:
    """`<store>_<wallet>_<expiry>_<mac>`: wallets echo `state` untouched but accept only
    `[A-Za-z0-9_-]`, at most 128 characters (WeChat web OAuth), so no JSON and no dots."""
    message = f"{store_code}_{wallet.value}_{expires_at_s}"
    return f"{message}_{_mac(key, 'state', message)[:24]}"


def read_oauth_state(key: bytes, state: str | None, *, now_s: int) -> tuple[str, Wallet] | None:
    """The store code and wallet an `oauth_state` names; None if forged or expired."""
    message, _, mac = (state or "").rpartition("_")
    parts = message.split("_")
    if len(parts) != 3 or not hmac.compare_digest(_mac(key, "state", message)[:24], mac):
        return None
    store_code, wallet, expires_at_s = parts
    if not expires_at_s.isdigit() or int(expires_at_s) <= now_s:
        return None
    return store_code, Wallet(wallet)


def csrf_token(key: bytes, session_id: str, store_code: str, nonce: str) -> str:
    return _mac(key, "csrf", f"{session_id}:{store_code}:{nonce}")


def new_nonce() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(NONCE_CHARS))


# ----------------------------------------------------------------- the amount


class AmountInvalid(ValueError):
    """The typed amount is not a payable yuan amount; the message is for the payer."""


def parse_amount_fen(text: str) -> int:
    """Yuan as typed (`12`, `12.5`, `12.50`) to integer fen, exactly, via Decimal."""
    typed = text.strip()
    if not _AMOUNT.fullmatch(typed):
        raise AmountInvalid("请输入数字金额，例如 12.50")
    try:
        yuan = Decimal(typed)
    except InvalidOperation as error:  # the pattern admits only decimals; kept for safety
        raise AmountInvalid("请输入数字金额，例如 12.50") from error
    fen = yuan * 100
    if fen != fen.to_integral_value():
        raise AmountInvalid("金额最多两位小数")
    if fen <= 0:
        raise AmountInvalid("金额必须大于 0")
    if fen > MAX_COUNTER_AMOUNT_FEN:
        raise AmountInvalid("金额不能超过 1,000,000 元")
    return int(fen)


def format_yuan(amount_fen: int) -> str:
    return f"{amount_fen // 100:,}.{amount_fen % 100:02d}"


# ----------------------------------------------------------------- pages


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(**context)
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def message_page(status_code: int, code: str, title: str, text: str, **context: Any) -> Response:
    return page("message.html", status_code, error_code=code, title=title, text=text, **context)


def _store_missing() -> Response:
    return message_page(
        404, "store_not_found", "找不到这家店", "这个收款码无效或已停用，请向店员确认。",
        english="This store's payment code is not valid.",
    )  # fmt: skip


def _wallet_unavailable(store: merchants.Store, wallet: Wallet) -> Response:
    return message_page(
        424, "wallet_not_available", f"本店暂不支持{WALLET_NAMES[wallet]}付款",
        "请换用其他 App 扫码，或向店员询问付款方式。", store_name=store.name,
        english=f"{wallet.value} payments are not available at this store.",
    )  # fmt: skip


@dataclass(frozen=True)
class Checkout:
    """What a payment at this store with this wallet needs: the store, the app it books to."""

    store: merchants.Store
    wallet: Wallet
    method: str
    app: merchants.App


def _base_url(request: Request) -> str:
    """Our public base URL: the one channels already reach us at (settings.public_base_url)."""
    return flows_context(request).notify_base_url.rstrip("/")


def flows_context(request: Request) -> flows.ChannelContext:
    context = request.app.state.channel_context
    assert isinstance(context, flows.ChannelContext)
    return context


async def _active_store(runner: Runner, store_code: str) -> merchants.Store | None:
    """The store if its code is well-formed, it exists and its merchant is approved."""
    if not _STORE_CODE.fullmatch(store_code):
        return None

    def read(uow: UnitOfWork) -> merchants.Store | None:
        store = merchants.find_store_by_code(uow, store_code)
        if store is None:
            return None
        merchant = merchants.get_merchant(uow, store.merchant_id)
        return store if merchant.status is merchants.MerchantStatus.APPROVED else None

    found: merchants.Store | None = await run_in_threadpool(runner.read, read)
    return found


async def _checkout(
    request: Request, runner: Runner, store: merchants.Store, wallet: Wallet
) -> Checkout | None:
    """None when this deployment has no channel for the wallet or the merchant no app."""
    method = IN_WALLET_METHOD[wallet]
    if method not in flows_context(request).channels.methods:
        return None
    app: merchants.App | None = await run_in_threadpool(
        runner.read,
        lambda uow: merchants.find_earliest_app_for_method(uow, store.merchant_id, method),
    )
    return None if app is None else Checkout(store, wallet, method, app)


def _identity_provider(request: Request, wallet: Wallet) -> PayerIdentityProvider | None:
    """The adapter that serves the wallet's in-wallet method, if it can identify payers."""
    try:
        channel = flows_context(request).channels.for_method(IN_WALLET_METHOD[wallet])
    except UnknownChannel:
        return None
    return channel if isinstance(channel, PayerIdentityProvider) else None


def _session(request: Request, wallet: Wallet) -> dict[str, str] | None:
    """The payer's signed session if it is for this wallet (and has the payer id it needs)."""
    fields = unseal(
        _storefront_key(request), "session", request.cookies.get(SESSION_COOKIE),
        now_s=_now_s(request),
    )  # fmt: skip
    if fields is None or fields.get("wallet") != wallet.value:
        return None
    if wallet in _NEEDS_PAYER_ID and not fields.get("payer_id"):
        return None
    return fields


def _set_session(
    request: Request, response: Response, wallet: Wallet, payer_id: str, session_id: str
) -> None:
    expires_at_s = _now_s(request) + SESSION_TTL_S
    fields = {"wallet": wallet.value, "payer_id": payer_id, "sid": session_id}
    response.set_cookie(
        SESSION_COOKIE, seal(_storefront_key(request), "session", fields,
                             expires_at_s=expires_at_s),
        max_age=SESSION_TTL_S, path="/pay", httponly=True, samesite="lax",
        secure=_base_url(request).startswith("https://"),
    )  # fmt: skip


def _amount_form(
    request: Request, checkout: Checkout, session_id: str, *, status_code: int = 200,
    error: str | None = None, typed: str = "", nonce: str | None = None,
    offers: list[discounts.Offer] | None = None,
) -> Response:  # fmt: skip
    the_nonce = nonce or new_nonce()
    key = _storefront_key(request)
    return page(
        "amount.html", status_code, store=checkout.store, wallet_name=WALLET_NAMES[checkout.wallet],
        nonce=the_nonce, csrf=csrf_token(key, session_id, checkout.store.store_code, the_nonce),
        error=error, typed=typed, action=f"/pay/{checkout.store.store_code}",
        offers=[(o.name, format_yuan(o.max_value_fen), format_yuan(o.threshold_fen))
                for o in offers or ()],
    )  # fmt: skip


async def _offers(runner: Runner, checkout: Checkout, payer_id: str) -> list[discounts.Offer]:
    """The payer's vouchers usable here, if the wallet told us who they are."""
    if not payer_id:
        return []
    found: list[discounts.Offer] = await run_in_threadpool(
        runner.read, lambda uow: discounts.offers_at(
            uow, merchant_id=checkout.store.merchant_id, wallet=checkout.wallet.value,
            payer_id=payer_id,
        ),
    )  # fmt: skip
    return found


# ----------------------------------------------------------------- routes


@router.get("/pay/{store_code}")
async def store_page(store_code: str, request: Request, runner: TxRunner) -> Response:
    """Scan → wallet → payer id (OAuth) → the amount form."""
    store = await _active_store(runner, store_code)
    if store is None:
        return _store_missing()
    wallet = detect_wallet(request.headers.get("user-agent"))
    if wallet is None:
        return page("open_in_wallet.html", store=store)
    checkout = await _checkout(request, runner, store, wallet)
    if checkout is None:
        return _wallet_unavailable(store, wallet)
    session = _session(request, wallet)
    if session is not None:
        offers = await _offers(runner, checkout, session.get("payer_id", ""))
        return _amount_form(request, checkout, session["sid"], offers=offers)
    if wallet not in _NEEDS_PAYER_ID:
        session_id = secrets.token_hex(16)
        form = _amount_form(request, checkout, session_id)
        _set_session(request, form, wallet, "", session_id)
        return form
    return _authorize(request, store, wallet)


def _authorize(request: Request, store: merchants.Store, wallet: Wallet) -> Response:
    provider = _identity_provider(request, wallet)
    if provider is None:
        return _wallet_unavailable(store, wallet)
    expires_at_s = _now_s(request) + STATE_TTL_S
    state = oauth_state(
        _storefront_key(request), store.store_code, wallet, expires_at_s=expires_at_s
    )
    redirect_uri = f"{_base_url(request)}/pay/{store.store_code}/authorized"
    target = provider.payer_authorize_url(redirect_uri=redirect_uri, state=state)
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


@router.get("/pay/{store_code}/authorized")
async def authorized(store_code: str, request: Request, runner: TxRunner) -> Response:
    """The wallet sends the payer back here with a one-time code (WeChat `code`, Alipay
    `auth_code`) and our `state`; we swap the code for the payer id and remember it."""
    store = await _active_store(runner, store_code)
    if store is None:
        return _store_missing()
    state = read_oauth_state(
        _storefront_key(request), request.query_params.get("state"), now_s=_now_s(request)
    )
    if state is None or state[0] != store.store_code:
        return message_page(
            400, "state_invalid", "授权已失效", "请重新扫描店内的收款码。", store_name=store.name,
            english="The authorization expired or was tampered with; scan the code again.",
        )  # fmt: skip
    wallet = state[1]
    code = request.query_params.get("code") or request.query_params.get("auth_code")
    provider = _identity_provider(request, wallet)
    if provider is None:
        return _wallet_unavailable(store, wallet)
    if not code or len(code) > MAX_OAUTH_CODE_CHARS or not code.isprintable():
        return message_page(
            400, "authorization_declined", "未获得授权", "需要授权后才能付款，请重新扫码。",
            store_name=store.name, english="The wallet did not authorize; scan the code again.",
        )  # fmt: skip
    try:
        payer_id = await run_in_threadpool(provider.resolve_payer, code)
    except (ChannelError, ValueError):  # ValueError: the adapter refused the code's shape
        return message_page(
            424, "payer_unresolved", "暂时无法完成授权", "请稍后重新扫码。", store_name=store.name,
            english="The wallet could not confirm who you are; try again shortly.",
        )  # fmt: skip
    response = RedirectResponse(f"/pay/{store.store_code}", status_code=303)
    _set_session(request, response, wallet, payer_id, secrets.token_hex(16))
    return response


@router.post("/pay/{store_code}")
async def pay(store_code: str, request: Request, runner: TxRunner) -> Response:
    """The amount form: open the order (idempotent by the form's nonce) and hand it over."""
    store = await _active_store(runner, store_code)
    if store is None:
        return _store_missing()
    form = await request.form()
    nonce, csrf, typed = (str(form.get(name) or "") for name in ("nonce", "csrf", "amount"))
    session = _session_of_form(request, store, nonce, csrf)
    if session is None:
        return message_page(
            400, "form_expired", "页面已过期", "请重新扫描店内的收款码。", store_name=store.name,
            english="This page expired; scan the store's code again.",
        )  # fmt: skip
    wallet = Wallet(session["wallet"])
    checkout = await _checkout(request, runner, store, wallet)
    if checkout is None:
        return _wallet_unavailable(store, wallet)
    try:
        amount_fen = parse_amount_fen(typed)
    except AmountInvalid as invalid:
        return _amount_form(
            request, checkout, session["sid"], status_code=400, error=str(invalid), typed=typed,
            nonce=nonce,
        )  # fmt: skip
    try:
        order = await run_in_threadpool(
            _place_order, runner, request, checkout, amount_fen, nonce, session["payer_id"]
        )
    except CloudPayError as refused:
        return message_page(
            refused.http_status, refused.code, "暂时无法下单", "请稍后重试，或向店员询问。",
            store_name=store.name, english=refused.message,
        )  # fmt: skip
    return _handover(request, checkout, order)


def _session_of_form(
    request: Request, store: merchants.Store, nonce: str, csrf: str
) -> dict[str, str] | None:
    key = _storefront_key(request)
    session = unseal(key, "session", request.cookies.get(SESSION_COOKIE), now_s=_now_s(request))
    if session is None or not _NONCE.fullmatch(nonce):
        return None
    expected = csrf_token(key, session["sid"], store.store_code, nonce)
    return session if hmac.compare_digest(expected, csrf) else None


def _place_order(
    runner: Runner, request: Request, checkout: Checkout, amount_fen: int, nonce: str,
    payer_id: str,
) -> OrderRow:  # fmt: skip
    store, app = checkout.store, checkout.app
    order_request = service.OrderRequest(
        app_id=app.id, merchant_id=store.merchant_id,
        out_trade_no=f"qr{store.store_code}{nonce}", amount=amount_fen, currency="CNY",
        subject=store.name, method=AGGREGATED_QR, wallet=checkout.wallet.value,
        expire_at=None, notify_url=app.notify_url,
        metadata={"store_code": store.store_code}, payer_id=payer_id or None,
    )  # fmt: skip
    return flows.place_order(
        transactor(runner.engine, runner.clock), flows_context(request),
        request=order_request, enabled_methods=frozenset(app.payment_methods),
    )  # fmt: skip


def _result_path(request: Request, store_code: str, order_id: str) -> str:
    token = qr.qr_token(order_id, _storefront_key(request))
    return f"/pay/{store_code}/orders/{order_id}?t={token}"


def _handover(request: Request, checkout: Checkout, order: OrderRow) -> Response:
    """The wallet's cashier for an open order; the result page for anything else."""
    result_url = _result_path(request, checkout.store.store_code, order.id)
    # wap channels: the service keeps the front URL the form posts to in `redirect_url`.
    pay_params = dict(order.pay_params or {})
    redirect_url = pay_params.pop("redirect_url", None)
    pay_params.pop("redirect_method", None)
    if order.status not in OPEN_STATUSES or not (pay_params or redirect_url):
        return RedirectResponse(result_url, status_code=303)
    return page(
        "handover.html", store=checkout.store, wallet=checkout.wallet.value,
        amount=format_yuan(order.amount), price=format_yuan(order.price),
        discount=format_yuan(order.discount_amount) if order.discount_amount else None,
        pay_params=pay_params, redirect_url=redirect_url,
        trade_no=pay_params.get("tradeNO") or pay_params.get("trade_no"), result_url=result_url,
    )  # fmt: skip


STATUS_TEXT = {
    "created": ("正在下单", "Creating the order"),
    "paying": ("等待付款", "Waiting for payment"),
    "succeeded": ("付款成功", "Paid"),
    "failed": ("付款失败", "Payment failed"),
    "closed": ("订单已关闭", "Order closed"),
    "expired": ("订单已过期", "Order expired"),
    "refunded": ("已退款", "Refunded"),
    "partially_refunded": ("部分退款", "Partly refunded"),
}


@router.get("/pay/{store_code}/orders/{order_id}")
async def order_result(
    store_code: str, order_id: str, request: Request, runner: TxRunner, t: str = ""
) -> Response:
    """The payer's receipt: the order's status, refreshing itself while it is open."""
    key = _storefront_key(request)
    if not qr.token_matches(order_id, t, key):
        return message_page(404, "order_not_found", "找不到这笔订单", "请向店员确认付款结果。",
                            english="No such order.")  # fmt: skip

    def read(uow: UnitOfWork) -> OrderRow:
        return service.get_order(uow, order_id=order_id)

    order: OrderRow = await run_in_threadpool(runner.read, read)
    if order.metadata.get("store_code") != store_code.upper():
        return message_page(404, "order_not_found", "找不到这笔订单", "请向店员确认付款结果。",
                            english="No such order.")  # fmt: skip
    chinese, english = STATUS_TEXT.get(order.status.value, (order.status.value, ""))
    return page(
        "result.html", order=order, subject=order.subject, amount=format_yuan(order.amount),
        status=order.status.value, status_text=chinese, status_english=english,
        still_open=order.status in OPEN_STATUSES,
    )  # fmt: skip


# ----------------------------------------------------------------- the printed sign


@router.get("/pay/{store_code}/qr.{image_format}")
async def store_qr(
    store_code: str, image_format: str, request: Request, runner: TxRunner
) -> Response:
    """The store's static QR (PNG or SVG): the URL of this store's payment page."""
    store = await _active_store(runner, store_code)
    if store is None or image_format not in qr.FORMATS:
        return _store_missing()
    url = store_sign.store_pay_url(_base_url(request), store.store_code)
    image = await run_in_threadpool(store_sign.store_qr_image, url, image_format)
    return Response(image, media_type=qr.FORMATS[image_format],
                    headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


@router.get("/pay/{store_code}/sign")
async def printable_sign(store_code: str, request: Request, runner: TxRunner) -> Response:
    """An A6 card to print: store name, the QR inline, the wallets it takes, the store code."""
    store = await _active_store(runner, store_code)
    if store is None:
        return _store_missing()
    url = store_sign.store_pay_url(_base_url(request), store.store_code)
    return page("sign.html", store=store, qr_svg=store_sign.store_qr_inline_svg(url), url=url)
