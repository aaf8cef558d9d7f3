"""The Alipay OpenAPI adapter: HTTP, RSA2 signing and secrets behind `PaymentChannel`.

Transport: httpx with our own RSA2 signing (`wire.py`, on `cloudpay.kernel.crypto`), not
python-alipay-sdk. The SDK stays the reference merchant client in the contract tests, but it
does not fit as our transport: it calls `urlopen` (a new connection per call, urllib's error
types, so a read timeout cannot be told from a refused connection), puts the whole signed
request into a GET query string, stamps `timestamp` with the host's local time (wrong unless
the host runs on Beijing time), raises one `AliPayException` with only the code for every
refusal, finds the signed `_response` text by counting braces (fooled by a brace inside a
string value), has no base URL setting (only the private `_gateway`) and is untyped.

Errors (public codes: https://opendocs.alipay.com/common/02km9f):
- no connection / connect timeout / HTTP 5xx or 429 → `UNAVAILABLE` (nothing was done);
- read timeout or a connection lost mid-answer → `TIMEOUT` (outcome unknown: query);
- an answer without a valid `sign` over its raw `_response` text → `INVALID_RESPONSE`;
- 20001/40006 and signature, app id or timestamp refusals → `AUTHENTICATION`;
- 40004 business refusals → `REJECTED` with the `sub_code` (e.g. ACQ.TRADE_STATUS_ERROR);
- 20000 (service unavailable) → `UNAVAILABLE`, or `TIMEOUT` on pay/refund/cancel, where
  Alipay asks to query because the money may have moved.
A micropay (trade.pay) refused because of the payer (bad payment code, balance not enough, …)
is not an error: `PaymentCreated.status` is FAILED with the sub_code as reason, because the
attempt is over and the cashier asks for another payment code; refusals that are the
merchant's doing (bad parameters, trade state) stay `ChannelError(REJECTED)`.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

import httpx

from cloudpay.channels.alipay import transformers as tf
from cloudpay.channels.alipay import wire
from cloudpay.channels.alipay.bill import MAX_BILL_BYTES
from cloudpay.channels.http import HttpAdapter
from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelNotification,
    ChannelPaymentStatus,
    CreatePayment,
    NotificationAck,
    NotificationKind,
    NotificationRejected,
    PaymentCreated,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.masking import Secret

DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
DEFAULT_OAUTH_URL = "https://openauth.alipay.com/oauth2/publicAppAuthorize.htm"
USER_AGENT = "cloudpay-alipay/1 (httpx)"
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
CANCEL_ATTEMPTS = 3  # trade.cancel answers retry_flag=Y when a retry may still succeed
REFUND_ORDERS_KEPT = 100_000
T = TypeVar("T")


@dataclass(frozen=True)
class AlipayConfig:
    """An app's Alipay OpenAPI credentials (public-key mode, RSA2).

    Set `app_auth_token` to call on behalf of a merchant who authorised our app (第三方应用
    授权, service-provider mode) and `sys_service_provider_id` to earn the provider's rebate.
    """

    app_id: str
    app_private_key_pem: Secret[str] = field(repr=False)
    alipay_public_key_pem: str = field(repr=False)
    gateway_url: str = DEFAULT_GATEWAY_URL
    oauth_url: str = DEFAULT_OAUTH_URL
    timeout_s: float = 10.0
    app_auth_token: Secret[str] | None = field(default=None, repr=False)
    sys_service_provider_id: str | None = None

    def __post_init__(self) -> None:
        for url in (self.gateway_url, self.oauth_url):
            parsed = httpx.URL(url)
            if parsed.scheme not in ("http", "https") or not parsed.host or parsed.query:
                raise ValueError(f"{url!r} must be an http(s) URL without a query")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


def _mapped(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except (tf.UnexpectedField, wire.WireFormatError, KeyError, TypeError, ValueError) as error:
        raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, str(error)) from error


class AlipayChannel(HttpAdapter):
    """`PaymentChannel` and `PayerIdentityProvider` for Alipay. Thread-safe."""

    code = "alipay"
    methods = frozenset({tf.METHOD_QR, tf.METHOD_WAP, tf.METHOD_JSAPI, tf.METHOD_MICROPAY})

    def __init__(
        self, config: AlipayConfig, *, clock: Clock | None = None, http: httpx.Client | None = None
    ) -> None:
        super().__init__(
            channel="Alipay", user_agent=USER_AGENT, timeout_s=config.timeout_s, http=http
        )
        self._config = config
        self._clock = clock or SystemClock()
        # fastpay.refund.query needs the trade: remember which order each refund was for.
        self._refund_orders: OrderedDict[str, str] = OrderedDict()
        self._refund_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"AlipayChannel(app_id={self._config.app_id!r}, gateway={self._config.gateway_url!r})"
        )

    # ------------------------------------------------------------ payments

    def create_payment(self, request: CreatePayment) -> PaymentCreated:
        biz = tf.create_biz(request)  # a request we cannot express is a caller bug: ValueError
        extra = {"notify_url": request.notify_url}
        if self._config.sys_service_provider_id:
            biz["extend_params"] = {"sys_service_provider_id": self._config.sys_service_provider_id}
        if request.method == tf.METHOD_WAP:
            # The payer's browser carries the signed request; no server call (as the SDKs do).
            params = self._signed(
                tf.WAP_PAY, biz, {**extra, "return_url": request.return_url or ""}
            )
            return PaymentCreated(redirect_url=f"{self._config.gateway_url}?{urlencode(params)}")
        if request.method == tf.METHOD_MICROPAY:
            return self._micropay(request.order_id, biz, extra)
        content = self._call(tf.API_OF_METHOD[request.method], biz, extra)
        if request.method == tf.METHOD_QR:
            return PaymentCreated(
                code_url=_mapped(lambda: tf.required_text(content, "qr_code")), raw=content
            )
        trade_no = _mapped(lambda: tf.required_text(content, "trade_no"))
        return PaymentCreated(
            channel_reference=trade_no, pay_params={"tradeNO": trade_no}, raw=content
        )

    def _micropay(
        self, order_id: str, biz: dict[str, Any], extra: dict[str, str]
    ) -> PaymentCreated:
        content = self._call(tf.PAY, biz, extra, accept=tf.is_payer_decline)
        status = _mapped(lambda: tf.micropay_status(order_id, content))
        if (
            status.status is not ChannelPaymentStatus.FAILED
            and content.get("out_trade_no") != order_id
        ):
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "answer is for another order")
        return PaymentCreated(
            channel_reference=status.channel_transaction_id, status=status, raw=content
        )

    def query_payment(self, order_id: str) -> PaymentStatus:
        try:
            content = self._call(tf.QUERY, {"out_trade_no": order_id})
        except ChannelError as error:
            if error.code == TRADE_NOT_EXIST:
                return PaymentStatus(order_id=order_id, status=ChannelPaymentStatus.NOT_FOUND)
            raise
        status = _mapped(lambda: tf.payment_status(content))
        if status.order_id != order_id:
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "answer is for another order")
        return status

    def close_payment(self, order_id: str) -> None:
        """Close an unpaid trade; closing a closed trade again is fine (Alipay refuses it
        with ACQ.TRADE_STATUS_ERROR, so the state decides), closing a paid one is REJECTED.
        A precreated QR that no payer scanned is unknown to Alipay (ACQ.TRADE_NOT_EXIST):
        there is nothing to close. Its `time_expire` still stops payment at the order's
        expiry; a payer who scans it before then pays an order we closed, and our
        notification handler refuses that news (reconciliation raises it)."""
        try:
            self._call(tf.CLOSE, {"out_trade_no": order_id})
        except ChannelError as error:
            if error.code == TRADE_NOT_EXIST:
                return
            if error.code != "ACQ.TRADE_STATUS_ERROR":
                raise
            if self.query_payment(order_id).status is not ChannelPaymentStatus.CLOSED:
                raise

    def cancel_payment(self, order_id: str) -> None:
        """trade.cancel: closes an unpaid trade, refunds a paid one. Retried while Alipay
        answers retry_flag=Y; a trade Alipay never saw needs nothing."""
        for attempt in range(1, CANCEL_ATTEMPTS + 1):
            try:
                content = self._call(tf.CANCEL, {"out_trade_no": order_id})
            except ChannelError as error:
                if error.code == TRADE_NOT_EXIST:
                    return
                raise
            if content.get("retry_flag") != "Y":
                return
            if attempt == CANCEL_ATTEMPTS:
                raise ChannelError(ChannelErrorKind.UNAVAILABLE, "cancel still asks for a retry")

    # ------------------------------------------------------------ refunds

    def refund(self, request: RefundRequest) -> RefundStatus:
        biz = tf.refund_biz(request.refund_id, request.order_id, request.amount_fen, request.reason)
        content = self._call(tf.REFUND, biz)
        if content.get("out_trade_no") != request.order_id:
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "answer is for another order")
        self._remember_refund(request.refund_id, request.order_id)
        return _mapped(lambda: tf.refund_status(request.refund_id, request.amount_fen, content))

    def query_refund(self, refund_id: str, *, order_id: str | None = None) -> RefundStatus:
        """fastpay.refund.query needs the trade as well as `out_request_no`: the caller's
        `order_id`, else the order of a refund this adapter made."""
        with self._refund_lock:
            order_id = order_id or self._refund_orders.get(refund_id)
        if order_id is None:
            raise ChannelError(
                ChannelErrorKind.REJECTED, "Alipay needs the refund's order", code="ORDER_UNKNOWN"
            )
        biz = {
            "out_trade_no": order_id,
            "out_request_no": refund_id,
            "query_options": ["gmt_refund_pay"],
        }
        content = self._call(tf.REFUND_QUERY, biz)
        status = _mapped(lambda: tf.queried_refund(refund_id, content))
        if status is None:
            raise ChannelError(ChannelErrorKind.REJECTED, "no such refund", code="REFUND_NOT_EXIST")
        return status

    def _remember_refund(self, refund_id: str, order_id: str) -> None:
        with self._refund_lock:
            self._refund_orders[refund_id] = order_id
            self._refund_orders.move_to_end(refund_id)
            while len(self._refund_orders) > REFUND_ORDERS_KEPT:
                self._refund_orders.popitem(last=False)

    # ------------------------------------------------------------ notifications

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        params = _form(body)
        if not wire.verify_params(
            params, self._config.alipay_public_key_pem, exclude=wire.NOTIFICATION_EXCLUDED
        ):
            raise NotificationRejected("notification signature does not verify")
        if params.get("sign_type", wire.SIGN_TYPE) != wire.SIGN_TYPE:
            raise NotificationRejected(f"unsupported sign_type {params.get('sign_type')!r}")
        if params.get("app_id") != self._config.app_id:
            raise NotificationRejected(f"notification is for app {params.get('app_id')!r}")
        try:
            notification_id = tf.required_text(params, "notify_id")
            if tf.is_refund_notification(params):
                return ChannelNotification(
                    kind=NotificationKind.REFUND,
                    notification_id=notification_id,
                    refund=tf.notified_refund(params),
                    merchant_id=params.get("seller_id"),
                    app_id=params["app_id"],
                )
            return ChannelNotification(
                kind=NotificationKind.PAYMENT,
                notification_id=notification_id,
                payment=tf.payment_status(params),
                merchant_id=params.get("seller_id"),
                app_id=params["app_id"],
            )
        except (tf.UnexpectedField, wire.WireFormatError) as error:
            raise NotificationRejected(f"unreadable notification: {error}") from error

    def acknowledge(self, *, accepted: bool, message: str = "") -> NotificationAck:
        # Alipay stops retrying only when the body is exactly the 7 characters `success`.
        # https://opendocs.alipay.com/open/270/105902
        if accepted:
            return NotificationAck(status_code=200, body=b"success", content_type="text/plain")
        return NotificationAck(status_code=500, body=b"fail", content_type="text/plain")

    # ------------------------------------------------------------ bill

    def download_bill(self, bill_date: date) -> bytes:
        """The zipped trade bill (GBK CSVs) of `bill_date`; parse with `bill.parse_trade_bill`."""
        biz = {"bill_type": "trade", "bill_date": bill_date.isoformat()}
        content = self._call(tf.BILL_URL, biz)
        url = httpx.URL(_mapped(lambda: tf.required_text(content, "bill_download_url")))
        if url.scheme != "https" and url.scheme != httpx.URL(self._config.gateway_url).scheme:
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "bill URL is not https")
        # The file is not signed (its URL came in a signed answer and lives 30 s).
        response = self._send("GET", url)
        if response.status_code != 200:
            raise ChannelError(
                ChannelErrorKind.UNAVAILABLE, f"bill download {response.status_code}"
            )
        if len(response.content) > MAX_BILL_BYTES:
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "bill file too large")
        return response.content

    # ------------------------------------------------------------ payer identity (OAuth)

    def payer_authorize_url(self, *, redirect_uri: str, state: str) -> str:
        """Silent `auth_base` authorisation: Alipay returns to `redirect_uri` with `auth_code`.
        https://opendocs.alipay.com/open/284/web"""
        query = {
            "app_id": self._config.app_id,
            "scope": "auth_base",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{self._config.oauth_url}?{urlencode(query)}"

    def resolve_payer(self, code: str) -> str:
        content = self._call(
            tf.OAUTH_TOKEN, None, {"grant_type": "authorization_code", "code": code}
        )
        return _mapped(lambda: tf.required_text(content, "user_id"))

    # ------------------------------------------------------------ plumbing

    def _signed(
        self, api_method: str, biz: Mapping[str, Any] | None, extra: Mapping[str, str]
    ) -> dict[str, str]:
        params = {
            "app_id": self._config.app_id,
            "method": api_method,
            "format": wire.FORMAT,
            "charset": wire.CHARSET,
            "sign_type": wire.SIGN_TYPE,
            "timestamp": wire.beijing_time(self._clock.now()),
            "version": wire.VERSION,
            **{key: value for key, value in extra.items() if value},
        }
        if biz is not None:
            params["biz_content"] = wire.compact_json(biz)
        if self._config.app_auth_token is not None:
            params["app_auth_token"] = self._config.app_auth_token.reveal()
        return wire.signed_request(params, self._config.app_private_key_pem)

    def _call(
        self,
        api_method: str,
        biz: Mapping[str, Any] | None,
        extra: Mapping[str, str] | None = None,
        *,
        accept: Callable[[Mapping[str, Any]], bool] = lambda content: False,
    ) -> dict[str, Any]:
        """POST one signed request; the verified `_response` object of a 10000/10003 answer
        (or of a refusal `accept` takes), else the matching `ChannelError`."""
        params = self._signed(api_method, biz, extra or {})
        response = self._send(
            "POST",
            self._config.gateway_url,
            content=urlencode(params).encode(),
            headers={"Content-Type": f"application/x-www-form-urlencoded;charset={wire.CHARSET}"},
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise ChannelError(ChannelErrorKind.UNAVAILABLE, f"Alipay HTTP {response.status_code}")
        if response.status_code != 200:
            raise ChannelError(
                ChannelErrorKind.INVALID_RESPONSE, f"Alipay HTTP {response.status_code}"
            )
        content = self._verified(api_method, response.content)
        code = str(content.get("code", ""))
        if code == wire.SUCCESS_CODE or (code == wire.PENDING_CODE and api_method == tf.PAY):
            return content
        if accept(content):
            return content
        raise tf.error_of(api_method, content)

    def _verified(self, api_method: str, body: bytes) -> dict[str, Any]:
        """The `_response` object, its signature checked over its exact text in `body`."""
        invalid = ChannelErrorKind.INVALID_RESPONSE
        try:
            raw = body.decode(wire.CHARSET)
            envelope = json.loads(raw)
            key = wire.response_key(api_method)
            key = key if key in envelope else wire.ERROR_RESPONSE_KEY
            text = wire.response_content(raw, key)
            content = json.loads(text) if text is not None else None
        except (UnicodeDecodeError, ValueError, TypeError) as error:
            raise ChannelError(invalid, f"answer is not Alipay JSON: {error}") from error
        if not isinstance(envelope, dict) or not isinstance(content, dict):
            raise ChannelError(invalid, "answer has no response object")
        signature = envelope.get("sign")
        if not signature:
            # Alipay leaves some gateway refusals unsigned; a success must always be signed.
            if str(content.get("code")) in (wire.SUCCESS_CODE, wire.PENDING_CODE):
                raise ChannelError(invalid, "answer is not signed")
            return content
        if not wire.rsa_verify_text(self._config.alipay_public_key_pem, text or "", str(signature)):
            raise ChannelError(invalid, "answer signature does not verify")
        return content


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode(wire.CHARSET), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError) as error:
        raise NotificationRejected(f"notification is not a utf-8 form: {error}") from error
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise NotificationRejected(f"parameter {key!r} appears twice")
        params[key] = value
    return params
