"""The UnionPay full-channel (全渠道 5.1.0) adapter: HTTP, signing, certificates.

Every call is a signed form POST (backTransReq.do, queryTrans.do, fileTransfer.do); the
mobile web payment is a signed form the payer's browser posts to frontTransReq.do. Answers
are verified before anything is read: `signPubKeyCert` must chain to the configured root
through the middle certificate, and sign the answer (`wire.py`). Mapping is in
`transformers.py`.

Errors, as `channels/wechat/client.py` defines the kinds:
- no connection / connect timeout / HTTP 429 or 5xx → `UNAVAILABLE` (nothing was done);
- read timeout, a connection lost mid-answer, or respCode 03/04/05 on a call that changes
  something → `TIMEOUT` (outcome unknown: query later, as the specification says);
- an answer whose certificate chain or signature fails, or that cannot be read →
  `INVALID_RESPONSE`;
- respCode 11 (验证签名失败: our certificate or signature was refused) → `AUTHENTICATION`;
- any other respCode → `REJECTED` with the respCode as `code`.

UnionPay has no "close order" call. Integrators let `payTimeout` expire the order, and reverse
(冲正) one whose outcome they no longer want; `close_payment` does the reversal for an order
that is not paid, and refuses a paid one (refund it instead). `cancel_payment` voids a paid
order the same day (消费撤销) and refunds it in full afterwards.

A query names the original transaction by `orderId` and the `txnTime` it was sent with. Our
`txnTime` is the instant our order or refund id was made (ids are time-ordered), so the API that
created a payment and a worker that polls it after a restart name the same transaction; the
adapter also remembers what it sent (bounded), and `PaymentCreated.channel_reference` carries it.
"""

from __future__ import annotations

import base64
import binascii
import threading
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

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
from cloudpay.channels.unionpay import transformers as tf
from cloudpay.channels.unionpay import wire
from cloudpay.channels.unionpay.bill import MAX_BILL_BYTES
from cloudpay.kernel.business_time import business_date
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.ids import is_valid_id, timestamp_ms_of
from cloudpay.kernel.masking import Secret

DEFAULT_GATEWAY_URL = "https://gateway.95516.com"
DEFAULT_FILE_URL = "https://filedownload.95516.com/"
FRONT_PATH = "/gateway/api/frontTransReq.do"
BACK_PATH = "/gateway/api/backTransReq.do"
QUERY_PATH = "/gateway/api/queryTrans.do"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
REMEMBERED_TXN_TIMES = 100_000
USER_AGENT = "cloudpay-unionpay/1 (httpx)"


@dataclass(frozen=True)
class UnionPayConfig:
    """A merchant's UnionPay credentials: its signing key and the certificate id (certId) of
    the certificate UnionPay issued for it, and UnionPay's root and middle certificates."""

    mer_id: str
    signing_private_key_pem: Secret[str] = field(repr=False)
    signing_cert_id: str
    root_cert_pem: str = field(repr=False)
    middle_cert_pem: str = field(repr=False)
    gateway_url: str = DEFAULT_GATEWAY_URL
    file_url: str = DEFAULT_FILE_URL
    timeout_s: float = 10.0
    access_type: str = "0"  # 0 merchant, 1 acquirer / service provider (收单机构)
    acq_ins_code: str | None = None  # the acquirer's institution code when access_type is 1

    def __post_init__(self) -> None:
        if not self.mer_id.isalnum() or not self.signing_cert_id.isdigit():
            raise ValueError("mer_id is alphanumeric and signing_cert_id a decimal serial")
        if self.access_type not in ("0", "1"):
            raise ValueError("access_type is 0 (merchant) or 1 (acquirer)")
        if (self.access_type == "1") != bool(self.acq_ins_code):
            raise ValueError("acq_ins_code is required with access_type 1, and only then")
        gateway = httpx.URL(self.gateway_url)
        if gateway.scheme not in ("http", "https") or gateway.path not in ("", "/"):
            raise ValueError("gateway_url is a scheme and host only, e.g. https://gateway…")
        if httpx.URL(self.file_url).scheme not in ("http", "https"):
            raise ValueError("file_url must be an http(s) URL")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        wire.load_certificate(self.root_cert_pem)
        wire.load_certificate(self.middle_cert_pem)

    @property
    def ids(self) -> tf.MerchantIds:
        return tf.MerchantIds(self.mer_id, self.access_type, self.acq_ins_code)


def refusal(answer: Mapping[str, str], *, mutating: bool) -> ChannelError:
    """The error for an answer whose respCode is not 00."""
    code = answer.get("respCode", "")
    message = f"UnionPay {code}: {answer.get('respMsg', '')}"
    if code in tf.RESP_UNKNOWN:
        kind = ChannelErrorKind.TIMEOUT if mutating else ChannelErrorKind.UNAVAILABLE
    elif code == tf.RESP_BAD_SIGNATURE:
        kind = ChannelErrorKind.AUTHENTICATION
    else:
        kind = ChannelErrorKind.REJECTED
    return ChannelError(kind, message, code=code or None)


def _invalid(message: str) -> ChannelError:
    return ChannelError(ChannelErrorKind.INVALID_RESPONSE, message)


class UnionPayChannel(HttpAdapter):
    """`PaymentChannel` for UnionPay: QR (主扫), payment code (被扫) and mobile web. Thread-safe."""

    code = "unionpay"
    methods = tf.METHODS

    def __init__(
        self,
        config: UnionPayConfig,
        *,
        clock: Clock | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            channel="UnionPay", user_agent=USER_AGENT, timeout_s=config.timeout_s, http=http
        )
        self._config, self._ids = config, config.ids
        self._clock = clock or SystemClock()
        self._txn_times: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UnionPayChannel(mer_id={self._config.mer_id!r})"

    # ------------------------------------------------------------ PaymentChannel

    def create_payment(self, request: CreatePayment) -> PaymentCreated:
        fields = tf.create_fields(self._ids, request, self._sent_at(request.order_id))
        self._remember(request.order_id, fields["txnTime"])
        if request.method == tf.METHOD_WAP:
            # No server call: the payer's browser posts this signed form to the gateway.
            return PaymentCreated(
                channel_reference=fields["txnTime"],
                redirect_url=self._gateway(tf_path=FRONT_PATH),
                redirect_method="POST",
                pay_params=self._signed(fields),
            )
        answer = self._post(self._gateway(tf_path=BACK_PATH), fields)
        code = answer.get("respCode", "")
        if request.method == tf.METHOD_MICROPAY and (
            code in (tf.RESP_OK, *tf.RESP_UNKNOWN, *tf.RESP_DECLINED)
        ):
            # 03/04/05: the payer is entering a PIN or the outcome is not known yet.
            outcome = "04" if code in tf.RESP_UNKNOWN else code
            status = self._mapped_payment(answer, outcome, request.order_id)
            return PaymentCreated(channel_reference=fields["txnTime"], status=status, raw=answer)
        if code != tf.RESP_OK:
            raise refusal(answer, mutating=True)
        qr_code = answer.get("qrCode")
        if not qr_code:
            raise _invalid("QR answer without qrCode")
        return PaymentCreated(channel_reference=fields["txnTime"], code_url=qr_code, raw=answer)

    def query_payment(self, order_id: str) -> PaymentStatus:
        answer = self._query(order_id)
        if answer.get("respCode") == tf.RESP_NOT_FOUND:
            return PaymentStatus(order_id=order_id, status=ChannelPaymentStatus.NOT_FOUND)
        if answer.get("respCode") != tf.RESP_OK:
            raise refusal(answer, mutating=False)
        if answer.get("txnType") != tf.TXN_CONSUME:
            raise _invalid("query answer is not about a consumption")
        return self._mapped_payment(answer, answer.get("origRespCode", ""), order_id)

    def close_payment(self, order_id: str) -> None:
        status = self.query_payment(order_id)
        if status.status is ChannelPaymentStatus.SUCCEEDED:
            raise ChannelError(
                ChannelErrorKind.REJECTED, "a paid order cannot close: refund it", code="PAID"
            )
        if status.status in (ChannelPaymentStatus.NOT_PAID, ChannelPaymentStatus.PAYING):
            self._reverse(status)

    def cancel_payment(self, order_id: str) -> None:
        status = self.query_payment(order_id)
        if status.status in (ChannelPaymentStatus.NOT_PAID, ChannelPaymentStatus.PAYING):
            self._reverse(status)
        elif status.status is ChannelPaymentStatus.SUCCEEDED:
            assert status.paid_at is not None
            assert status.amount_fen is not None
            if business_date(status.paid_at) == business_date(self._clock.now()):
                self._void(status)
            else:
                amount = status.amount_fen
                cancel_id = tf.derived_id(order_id, tf.CANCEL_REFUND_SUFFIX)
                refund = RefundRequest(cancel_id, order_id, amount, amount, "CNY")
                self.refund(refund)

    def refund(self, request: RefundRequest) -> RefundStatus:
        paid = self.query_payment(request.order_id)
        if paid.status is not ChannelPaymentStatus.SUCCEEDED or not paid.channel_transaction_id:
            raise ChannelError(
                ChannelErrorKind.REJECTED, f"order is {paid.status}, not paid", code="35"
            )
        biz = str(paid.raw.get("bizType", tf.BIZ_QR))
        fields = tf.refund_fields(
            self._ids, request, paid.channel_transaction_id, biz, self._sent_at(request.refund_id)
        )
        self._remember(request.refund_id, fields["txnTime"])
        answer = self._post(self._gateway(tf_path=BACK_PATH), fields)
        if answer.get("respCode") != tf.RESP_OK:
            raise refusal(answer, mutating=True)
        # 00 means accepted (受理); the outcome comes by notification or query.
        return self._mapped_refund(answer, "05", request.refund_id)

    def query_refund(self, refund_id: str, *, order_id: str | None = None) -> RefundStatus:
        answer = self._query(refund_id)
        if answer.get("respCode") != tf.RESP_OK:
            raise refusal(answer, mutating=False)
        if answer.get("txnType") != tf.TXN_REFUND:
            raise _invalid("query answer is not about a refund")
        return self._mapped_refund(answer, answer.get("origRespCode", ""), refund_id)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ChannelNotification:
        try:
            fields = self._verified(wire.decode_form(body))
        except (wire.WireFormatError, ChannelError) as error:
            raise NotificationRejected(str(error)) from error
        if fields.get("merId") != self._config.mer_id:
            raise NotificationRejected(f"notification is for merchant {fields.get('merId')!r}")
        try:
            return _notification(fields)
        except (tf.UnexpectedField, ValueError) as error:
            raise NotificationRejected(f"unreadable notification: {error}") from error

    def acknowledge(self, *, accepted: bool, message: str = "") -> NotificationAck:
        # UnionPay takes HTTP 200 as delivered and retries anything else; the body is ignored.
        if accepted:
            return NotificationAck(status_code=200, body=b"ok", content_type="text/plain")
        return NotificationAck(
            status_code=500, body=(message or "fail").encode(), content_type="text/plain"
        )

    def download_bill(self, bill_date: date) -> bytes:
        """The day's reconciliation zip (`bill.parse_bill` reads it), from fileTransfer.do."""
        fields = tf.file_fields(self._ids, bill_date.strftime("%m%d"), self._clock.now())
        answer = self._post(self._config.file_url, fields)
        if answer.get("respCode") != tf.RESP_OK:
            raise refusal(answer, mutating=False)
        return _inflated_file(answer.get("fileContent", ""))

    # ------------------------------------------------------------ plumbing

    def _gateway(self, *, tf_path: str) -> str:
        return self._config.gateway_url.rstrip("/") + tf_path

    def _sent_at(self, our_id: str) -> datetime:
        """The `txnTime` of our order or refund: the instant its id was made (ids are
        time-ordered), so any process — the API that created it, the worker that polls it
        after a restart — names the same original transaction. Foreign ids: now."""
        if is_valid_id(our_id):
            return datetime.fromtimestamp(timestamp_ms_of(our_id) / 1000, tz=UTC)
        return self._clock.now()

    def _remember(self, our_id: str, txn_time: str) -> None:
        with self._lock:
            self._txn_times[our_id] = txn_time
            self._txn_times.move_to_end(our_id)
            while len(self._txn_times) > REMEMBERED_TXN_TIMES:
                self._txn_times.popitem(last=False)

    def _query(self, our_id: str) -> dict[str, str]:
        with self._lock:
            txn_time = self._txn_times.get(our_id)
        txn_time = txn_time or tf.format_txn_time(self._sent_at(our_id))
        fields = tf.query_fields(self._ids, our_id, txn_time)
        return self._post(self._gateway(tf_path=QUERY_PATH), fields)

    def _reverse(self, status: PaymentStatus) -> None:
        orig_time = str(status.raw.get("txnTime", ""))
        fields = tf.reversal_fields(self._ids, status.order_id, orig_time, self._clock.now())
        answer = self._post(self._gateway(tf_path=BACK_PATH), fields)
        if answer.get("respCode") not in (tf.RESP_OK, tf.RESP_DUPLICATE):
            raise refusal(answer, mutating=True)

    def _void(self, paid: PaymentStatus) -> None:
        biz = str(paid.raw.get("bizType", tf.BIZ_QR))
        fields = tf.void_fields(self._ids, paid, biz, self._clock.now())
        answer = self._post(self._gateway(tf_path=BACK_PATH), fields)
        if answer.get("respCode") != tf.RESP_OK:
            raise refusal(answer, mutating=True)

    def _signed(self, fields: Mapping[str, str]) -> dict[str, str]:
        with_cert = {**fields, "certId": self._config.signing_cert_id}
        return wire.sign_fields(with_cert, self._config.signing_private_key_pem)

    def _post(self, url: str, fields: Mapping[str, str]) -> dict[str, str]:
        body = wire.encode_form(self._signed(fields))
        response = self._send(
            "POST", url, content=body, headers={"Content-Type": FORM_CONTENT_TYPE}
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise ChannelError(
                ChannelErrorKind.UNAVAILABLE, f"UnionPay HTTP {response.status_code}"
            )
        if response.status_code != 200:
            raise ChannelError(
                ChannelErrorKind.REJECTED,
                f"UnionPay HTTP {response.status_code}",
                code=f"HTTP_{response.status_code}",
            )
        try:
            answer = wire.decode_answer(response.content)
        except wire.WireFormatError as error:
            raise _invalid(str(error)) from error
        return self._verified(answer)

    def _verified(self, fields: dict[str, str]) -> dict[str, str]:
        try:
            key = wire.verified_signer_key(
                fields.get(wire.SIGNER_CERT_FIELD, ""),
                middle_pem=self._config.middle_cert_pem,
                root_pem=self._config.root_cert_pem,
                now=self._clock.now(),
            )
        except wire.CertificateRejected as error:
            raise _invalid(f"answer refused: {error}") from error
        if not wire.signature_valid(fields, key):
            raise _invalid("answer refused: bad signature")
        return fields

    def _mapped_payment(
        self, answer: Mapping[str, str], outcome: str, order_id: str
    ) -> PaymentStatus:
        try:
            status = tf.payment_status(answer, outcome_code=outcome)
        except (tf.UnexpectedField, ValueError) as error:
            raise _invalid(str(error)) from error
        if status.order_id != order_id:
            raise _invalid("answer is for another order")
        return status

    def _mapped_refund(
        self, answer: Mapping[str, str], outcome: str, refund_id: str
    ) -> RefundStatus:
        try:
            status = tf.refund_status(answer, outcome_code=outcome)
        except (tf.UnexpectedField, ValueError) as error:
            raise _invalid(str(error)) from error
        if status.refund_id != refund_id:
            raise _invalid("answer is for another refund")
        return status


def _notification(fields: Mapping[str, str]) -> ChannelNotification:
    txn_type = fields.get("txnType", "")
    notification_id = f"{fields.get('queryId', '')}:{txn_type}"
    outcome = fields.get("respCode", "")
    if txn_type == tf.TXN_CONSUME:
        payment = tf.payment_status(fields, outcome_code=outcome)
        return ChannelNotification(
            kind=NotificationKind.PAYMENT,
            notification_id=notification_id,
            payment=payment,
            merchant_id=fields.get("merId"),
        )
    if txn_type in (tf.TXN_REFUND, tf.TXN_VOID):
        refund = tf.refund_status(fields, outcome_code=outcome)
        return ChannelNotification(
            kind=NotificationKind.REFUND,
            notification_id=notification_id,
            refund=refund,
            merchant_id=fields.get("merId"),
        )
    raise tf.UnexpectedField(f"unsupported txnType {txn_type!r}")


def _inflated_file(file_content: str) -> bytes:
    """acp_sdk's `deCodeFileContent`: base64, then zlib inflate, gives the zip file."""
    try:
        deflated = base64.b64decode(file_content, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _invalid("fileContent is not base64") from error
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(deflated, MAX_BILL_BYTES + 1)
    except zlib.error as error:
        raise _invalid("fileContent is not deflated") from error
    if len(data) > MAX_BILL_BYTES or not inflater.eof:
        raise _invalid("bill file too large or truncated")
    return data
