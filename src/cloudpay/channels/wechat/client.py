"""The WeChat Pay API v3 adapter: HTTP, signing and secrets behind `PaymentChannel`.

Transport: httpx with our own v3 signing (`wire.py`, on `cloudpay.kernel.crypto`), not the
`wechatpayv3` SDK. The SDK is the reference merchant client in the contract tests, proving the
sandbox speaks its dialect, but it does not fit as our transport: it raises bare `Exception`s
(a bad signature is indistinguishable from anything else), opens a new connection per call,
has no base URL setting (only a private attribute), skips the 5-minute freshness check on
answers, and is untyped. Mapping lives in `transformers.py`; this module only moves bytes.

Errors, per https://pay.weixin.qq.com/doc/global/v3/zh/4012354972 (HTTP status codes):
- no connection / connect timeout / 429 / 5xx → `UNAVAILABLE` (nothing was done, retry is
  safe; WeChat asks for a retry with the same parameters on SYSTEM_ERROR);
- read timeout or a connection lost mid-answer → `TIMEOUT` (outcome unknown: query);
- a 2xx whose `Wechatpay-*` signature fails, is stale or unparseable → `INVALID_RESPONSE`;
- 401 (SIGN_ERROR) → `AUTHENTICATION`; any other 4xx → `REJECTED` with WeChat's `code`.

Payment-code pay (`wechat_micropay`) answers at once, so its errors are outcomes (see
`_micropay_status`): a definite refusal is FAILED, an open outcome (USERPAYING = 202,
SYSTEMERROR, BANKERROR, 500/502/504) is PAYING for the caller to poll; only 429/503 (refused
before any processing: overload protection, 服务不可用) stays `UNAVAILABLE`.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import httpx

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
from cloudpay.channels.wechat import oauth, wire
from cloudpay.channels.wechat import transformers as tf
from cloudpay.channels.wechat.bill import MAX_BILL_BYTES
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.masking import Secret

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"
USER_AGENT = "cloudpay-wechatpay/1 (httpx)"
ORDER_NOT_FOUND_CODES = frozenset({"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"})
DEFAULT_DEVICE_ID = "cloudpay"
# 撤销: WeChat handles the first reverse of an order and answers repeats the same, so one whose
# answer was lost or a 5xx is sent again at once (v2 told the caller so with `recall=Y`).
MAX_REVERSE_ATTEMPTS = 3
# Refused before processing: nothing happened, even for a payment code.
_REFUSED_UNPROCESSED_STATUSES = frozenset({429, 503})
T = TypeVar("T")


@dataclass(frozen=True)
class WeChatPayConfig:
    """A merchant's WeChat Pay v3 credentials in public-key mode (微信支付公钥).

    `merchant_serial_no` is the serial of the merchant API certificate whose private key signs
    requests; `platform_public_key_id` (`PUB_KEY_ID_…`) names the WeChat Pay public key that
    verifies answers and notifications. Set `sub_mchid` (and `sub_appid`) to act as a service
    provider (服务商) for that sub-merchant through the partner API.

    `app_secret` (AppSecret of the app whose openids we pay with: `sub_appid` if set, else
    `appid`) enables payer OAuth; `oauth_base_url` serves the authorize page
    (open.weixin.qq.com) and `oauth_api_base_url` the code exchange (api.weixin.qq.com).
    `micropay_device_id` is sent as `scene_info.device_id` of payment-code payments.
    """

    mchid: str
    appid: str
    apiv3_key: Secret[str] = field(repr=False)
    merchant_private_key_pem: Secret[str] = field(repr=False)
    merchant_serial_no: str
    platform_public_key_pem: str = field(repr=False)
    platform_public_key_id: str
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = 10.0
    sub_mchid: str | None = None
    sub_appid: str | None = None
    bill_gzip: bool = True  # ask for `tar_type=GZIP` bills (smaller on the wire)
    app_secret: Secret[str] | None = field(default=None, repr=False)
    oauth_base_url: str = oauth.DEFAULT_AUTHORIZE_BASE_URL
    oauth_api_base_url: str = oauth.DEFAULT_API_BASE_URL
    micropay_device_id: str = DEFAULT_DEVICE_ID

    def __post_init__(self) -> None:
        if len(self.apiv3_key.reveal().encode()) != wire.APIV3_KEY_BYTES:
            raise ValueError(f"the APIv3 key must be {wire.APIV3_KEY_BYTES} bytes")
        for name in ("base_url", "oauth_base_url", "oauth_api_base_url"):
            url = httpx.URL(getattr(self, name))
            if url.scheme not in ("http", "https") or url.path not in ("", "/") or url.query:
                raise ValueError(f"{name} is a scheme and host only, e.g. https://api.mch…")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if not 0 < len(self.micropay_device_id) <= tf.DEVICE_ID_MAX_CHARS:
            raise ValueError(f"micropay_device_id is 1..{tf.DEVICE_ID_MAX_CHARS} characters")

    @property
    def ids(self) -> tf.MerchantIds:
        return tf.MerchantIds(self.mchid, self.appid, self.sub_mchid, self.sub_appid)


@dataclass(frozen=True)
class _Answer:
    status_code: int
    body: bytes

    def json(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.body)
        except ValueError as error:
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "answer is not JSON") from error
        if not isinstance(payload, dict):
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "answer is not a JSON object")
        return payload


def _error_payload(answer: _Answer) -> dict[str, Any]:
    try:
        payload = json.loads(answer.body) if answer.body else {}
    except ValueError:
        payload = {}
    return payload if isinstance(payload, dict) else {}


def _status_error(answer: _Answer) -> ChannelError:
    payload = _error_payload(answer)
    code = str(payload.get("code") or f"HTTP_{answer.status_code}")
    message = f"WeChat Pay {answer.status_code} {code}: {payload.get('message', '')}"
    if answer.status_code == 401:
        kind = ChannelErrorKind.AUTHENTICATION
    elif answer.status_code == 429 or answer.status_code >= 500:
        kind = ChannelErrorKind.UNAVAILABLE
    else:
        kind = ChannelErrorKind.REJECTED
    return ChannelError(kind, message, code=code)


def _mapped(parse: Callable[[], T]) -> T:
    """Run a transformer over an answer; a missing or unknown field is an invalid answer."""
    try:
        return parse()
    except (tf.UnexpectedField, KeyError, TypeError, ValueError) as error:
        raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, str(error)) from error


class WeChatPayChannel(HttpAdapter):
    """`PaymentChannel` and `PayerIdentityProvider` for WeChat Pay v3 (native QR, JSAPI and
    payment code). Thread-safe."""

    code = "wechat"
    methods = frozenset({tf.METHOD_NATIVE, tf.METHOD_JSAPI, tf.METHOD_MICROPAY})

    def __init__(
        self,
        config: WeChatPayConfig,
        *,
        clock: Clock | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            channel="WeChat Pay", user_agent=USER_AGENT, timeout_s=config.timeout_s, http=http
        )
        self._config = config
        self._ids = config.ids
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"WeChatPayChannel(mchid={self._config.mchid!r}, base_url={self._config.base_url!r})"

    # ------------------------------------------------------------ PaymentChannel

    def create_payment(self, request: CreatePayment) -> PaymentCreated:
        if request.method == tf.METHOD_MICROPAY:
            return self._micropay(request)
        path = tf.create_path(self._ids, request.method)
        answer = self._call("POST", path, tf.create_body(self._ids, request)).json()
        if request.method == tf.METHOD_NATIVE:
            return PaymentCreated(code_url=_mapped(lambda: str(answer["code_url"])), raw=answer)
        prepay_id = _mapped(lambda: str(answer["prepay_id"]))
        pay_params = wire.jsapi_pay_params(
            # The payer's wallet opens under the app the openid belongs to.
            appid=self._ids.sub_appid or self._ids.appid,
            prepay_id=prepay_id,
            private_key_pem=self._config.merchant_private_key_pem,
            timestamp=str(self._now_s()),
            nonce=wire.new_nonce(),
        )
        return PaymentCreated(channel_reference=prepay_id, pay_params=pay_params, raw=answer)

    def query_payment(self, order_id: str) -> PaymentStatus:
        answer = self._call("GET", tf.query_path(self._ids, order_id), not_found_ok=True)
        if answer.status_code == 404:
            # Only WeChat's own "no such order" counts: a 404 from a proxy or a wrong base_url
            # must not make an order look unknown.
            error = _status_error(answer)
            if error.code not in ORDER_NOT_FOUND_CODES:
                raise error
            return PaymentStatus(order_id=order_id, status=ChannelPaymentStatus.NOT_FOUND)
        status = _mapped(lambda: tf.payment_status(answer.json()))
        if status.order_id != order_id:
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "answer is for another order")
        return status

    def close_payment(self, order_id: str) -> None:
        self._call("POST", tf.close_path(self._ids, order_id), tf.close_body(self._ids))

    def cancel_payment(self, order_id: str) -> None:
        """撤销 (reverse): closes an unpaid order, refunds a paid one in full (within 7 days).

        An unknown order raises `REJECTED` (ORDER_NOT_EXIST): there is nothing to revoke.
        https://pay.weixin.qq.com/docs/merchant/apis/code-payment-v3/direct/reverse.html
        """
        path, body = tf.reverse_path(self._ids, order_id), tf.reverse_body(self._ids)
        for attempt in range(1, MAX_REVERSE_ATTEMPTS + 1):
            try:
                self._call("POST", path, body)
                return
            except ChannelError as error:
                retryable = error.kind in (ChannelErrorKind.UNAVAILABLE, ChannelErrorKind.TIMEOUT)
                if not retryable or attempt == MAX_REVERSE_ATTEMPTS:
                    raise

    def refund(self, request: RefundRequest) -> RefundStatus:
        body = tf.refund_body(self._ids, request)
        answer = self._call("POST", tf.REFUNDS_PATH, body).json()
        return _same_refund(request.refund_id, _mapped(lambda: tf.refund_status(answer)))

    def query_refund(self, refund_id: str, *, order_id: str | None = None) -> RefundStatus:
        answer = self._call("GET", tf.refund_query_path(self._ids, refund_id)).json()
        return _same_refund(refund_id, _mapped(lambda: tf.refund_status(answer)))

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        reason = wire.verify_signed(
            headers,
            body,
            public_key_pem=self._config.platform_public_key_pem,
            public_key_id=self._config.platform_public_key_id,
            now_s=self._now_s(),
        )
        if reason is not None:
            raise NotificationRejected(reason)
        try:
            envelope, resource = self._open_notification(body)
            return self._notification(envelope, resource)
        except (wire.WireFormatError, tf.UnexpectedField, KeyError, TypeError, ValueError) as e:
            raise NotificationRejected(f"unreadable notification: {e}") from e

    def acknowledge(self, *, accepted: bool, message: str = "") -> NotificationAck:
        # v3: 200/204 stops the retries; 4xx/5xx with {"code": "FAIL", …} asks for another go.
        # https://developers.weixin.qq.com/community/pay/doc/00068e32ce46184b499b3d28c57800
        if accepted:
            return NotificationAck(status_code=204, body=b"")
        body = {"code": "FAIL", "message": message or "失败"}
        return NotificationAck(status_code=500, body=json.dumps(body).encode())

    def download_bill(self, bill_date: date) -> bytes:
        """The uncompressed ALL trade bill of `bill_date`, its SHA1 checked.

        A day without transactions raises `ChannelError(REJECTED, code="NO_STATEMENT_EXIST")`.
        """
        gzipped = self._config.bill_gzip
        path = tf.trade_bill_path(self._ids, bill_date.isoformat(), gzip=gzipped)
        info = self._call("GET", path).json()
        download_path = self._download_path(_mapped(lambda: str(info["download_url"])))
        # The file itself is not signed: its integrity is the hash in the signed answer above.
        raw = self._call("GET", download_path, verify_answer=False).body
        if len(raw) > MAX_BILL_BYTES:
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "bill file too large")
        data = _gunzip(raw) if gzipped else raw
        if str(info.get("hash_type", "")).upper() != "SHA1":
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "bill hash_type is not SHA1")
        if hashlib.sha1(data).hexdigest() != str(info.get("hash_value", "")).lower():  # noqa: S324
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "bill SHA1 does not match")
        return data

    # ------------------------------------------------------------ PayerIdentityProvider

    def payer_authorize_url(self, *, redirect_uri: str, state: str) -> str:
        return oauth.authorize_url(
            base_url=self._config.oauth_base_url,
            appid=self._oauth_appid,
            redirect_uri=redirect_uri,
            state=state,
        )

    def resolve_payer(self, code: str) -> str:
        """The payer's openid for a one-time OAuth `code` (REJECTED `40163` if reused)."""
        secret = self._config.app_secret
        if secret is None:
            raise ChannelError(ChannelErrorKind.AUTHENTICATION, "no app_secret configured")
        query = oauth.access_token_query(appid=self._oauth_appid, secret=secret.reveal(), code=code)
        response = self._send("GET", self._config.oauth_api_base_url.rstrip("/") + query)
        answer = _Answer(response.status_code, response.content)
        if answer.status_code != 200:
            raise _status_error(answer)
        return oauth.openid_of(answer.json())

    @property
    def _oauth_appid(self) -> str:
        # An openid belongs to one app: the one the JSAPI payment will name.
        return self._ids.sub_appid or self._ids.appid

    # ------------------------------------------------------------ payment code

    def _micropay(self, request: CreatePayment) -> PaymentCreated:
        if not tf.is_wechat_auth_code(request.auth_code or ""):
            # What WeChat would answer; refused here without spending a round trip.
            reason = "not a WeChat payment code (18 digits starting 10-15)"
            return PaymentCreated(
                status=tf.micropay_refused(request.order_id, "AUTH_CODE_INVALID", reason)
            )
        body = tf.codepay_body(self._ids, request, device_id=self._config.micropay_device_id)
        path = tf.create_path(self._ids, request.method)
        answer = self._call("POST", path, body, errors_returned=True)
        status = self._micropay_status(request.order_id, answer)
        return PaymentCreated(
            channel_reference=status.channel_transaction_id, status=status, raw=status.raw
        )

    def _micropay_status(self, order_id: str, answer: _Answer) -> PaymentStatus:
        """200 → the transaction; 202 (USERPAYING) → PAYING; a code of
        `tf.MICROPAY_REFUSED_CODES` → FAILED; of `tf.MICROPAY_PENDING_CODES` or another 5xx →
        PAYING (poll); ORDERPAID (a resend) → what a query says; anything else raises."""
        if answer.status_code == 202:  # accepted: the payer is confirming (any body)
            return tf.micropay_pending(order_id, "USERPAYING")
        if 200 <= answer.status_code < 300:
            payload = answer.json()
            if payload.get("trade_state") == "USERPAYING":
                return tf.micropay_pending(order_id, "USERPAYING")
            status = _mapped(lambda: tf.payment_status(payload))
            if status.order_id != order_id:
                raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "answer is for another order")
            return status
        error = _status_error(answer)
        if answer.status_code in _REFUSED_UNPROCESSED_STATUSES or answer.status_code == 401:
            raise error
        if error.code in ("ORDERPAID", "ORDER_PAID"):  # a resent payment: report the first
            return self.query_payment(order_id)
        if error.code in tf.MICROPAY_REFUSED_CODES:
            message = str(_error_payload(answer).get("message", ""))
            return tf.micropay_refused(order_id, str(error.code), message)
        if error.code in tf.MICROPAY_PENDING_CODES or answer.status_code >= 500:
            return tf.micropay_pending(order_id, str(error.code))
        raise error

    # ------------------------------------------------------------ plumbing

    def _now_s(self) -> int:
        return self._clock.now_ns() // 1_000_000_000

    def _call(
        self,
        method: str,
        url_path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        verify_answer: bool = True,
        not_found_ok: bool = False,
        errors_returned: bool = False,
    ) -> _Answer:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        response = self._send(
            method,
            self._config.base_url.rstrip("/") + url_path,
            content=body or None,
            headers=self._headers(method, url_path, body),
        )
        answer = _Answer(response.status_code, response.content)
        if not 200 <= answer.status_code < 300:
            if errors_returned or (not_found_ok and answer.status_code == 404):
                return answer
            raise _status_error(answer)
        if verify_answer:
            self._verify(response.headers, answer.body)
        return answer

    def _headers(self, method: str, url_path: str, body: bytes) -> dict[str, str]:
        authorization = wire.sign_request(
            method=method,
            url_path=url_path,
            body=body,
            mchid=self._config.mchid,
            serial_no=self._config.merchant_serial_no,
            private_key_pem=self._config.merchant_private_key_pem,
            timestamp=str(self._now_s()),
            nonce=wire.new_nonce(),
        )
        return {
            "Authorization": authorization.header_value(),
            "Accept": "application/json",
            "Content-Type": "application/json",
            # Public-key mode: name the WeChat Pay key we expect answers to be signed with.
            wire.HEADER_SERIAL: self._config.platform_public_key_id,
        }

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        reason = wire.verify_signed(
            headers,
            body,
            public_key_pem=self._config.platform_public_key_pem,
            public_key_id=self._config.platform_public_key_id,
            now_s=self._now_s(),
        )
        if reason is not None:
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, f"answer refused: {reason}")

    def _open_notification(self, body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        envelope = json.loads(body)
        if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
            raise tf.UnexpectedField("notification is not a JSON object with a resource")
        if envelope.get("resource_type") != "encrypt-resource":
            raise tf.UnexpectedField("resource_type must be encrypt-resource")
        plaintext = wire.decrypt_resource(envelope["resource"], apiv3_key=self._config.apiv3_key)
        resource = json.loads(plaintext)
        if not isinstance(resource, dict):
            raise tf.UnexpectedField("decrypted resource is not a JSON object")
        return envelope, resource

    def _notification(
        self, envelope: Mapping[str, Any], resource: Mapping[str, Any]
    ) -> ChannelNotification:
        merchant, app = tf.caller_ids_of(resource)
        if merchant != self._ids.mchid or resource.get("sub_mchid") != self._ids.sub_mchid:
            raise NotificationRejected(f"notification is for merchant {merchant!r}")
        event_type, notification_id = str(envelope["event_type"]), str(envelope["id"])
        if event_type.startswith("TRANSACTION."):
            return ChannelNotification(
                kind=NotificationKind.PAYMENT,
                notification_id=notification_id,
                payment=tf.payment_status(resource),
                merchant_id=merchant,
                app_id=app,
            )
        if event_type.startswith("REFUND."):
            return ChannelNotification(
                kind=NotificationKind.REFUND,
                notification_id=notification_id,
                refund=tf.refund_status(resource),
                merchant_id=merchant,
                app_id=app,
            )
        raise NotificationRejected(f"unsupported event_type {event_type!r}")

    def _download_path(self, download_url: str) -> str:
        # Our Authorization header must only ever go to the WeChat host we are configured for.
        url, base = httpx.URL(download_url), httpx.URL(self._config.base_url)
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "bill URL on another host")
        return url.raw_path.decode("ascii")


def _same_refund(refund_id: str, status: RefundStatus) -> RefundStatus:
    if status.refund_id != refund_id:
        raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "answer is for another refund")
    return status


def _gunzip(raw: bytes) -> bytes:
    """Decompress at most `MAX_BILL_BYTES`: a hostile or broken file must not fill memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, MAX_BILL_BYTES + 1)
    except zlib.error as error:
        raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "bill is not gzip") from error
    if len(data) > MAX_BILL_BYTES or not inflater.eof:
        raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "bill too large or truncated")
    return data
