"""Pure WeChat Pay v3 mapping, wire rules and bill format, without HTTP.

Where the `wechatpayv3` SDK computes the same thing (request signature, JSAPI paySign, AEAD
decryption), our result is compared with the SDK's, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import aes_decrypt
from wechatpayv3.utils import rsa_sign as sdk_rsa_sign

from cloudpay.channels.protocol import (
    ChannelError,
    ChannelErrorKind,
    ChannelPaymentStatus,
    ChannelRefundStatus,
    CreatePayment,
    RefundRequest,
)
from cloudpay.channels.wechat import bill, oauth, wire
from cloudpay.channels.wechat import transformers as tf
from cloudpay.kernel.crypto import generate_rsa_key_pair
from cloudpay.kernel.masking import Secret

KEYS = generate_rsa_key_pair()
APIV3_KEY = Secret("0123456789abcdef0123456789abcdef")
DIRECT = tf.MerchantIds("1900000109", "wxd678efh567hg6787")
PARTNER = tf.MerchantIds("1900000109", "wxd678efh567hg6787", "1900000110", "wxsub0000001")
NOW = datetime(2026, 5, 20, 4, 29, 35, tzinfo=UTC)  # 12:29:35 in Beijing


def create(method: str = "wechat_native", **changes: object) -> CreatePayment:
    fields: dict[str, object] = {
        "order_id": "ord_01HZX3Q2W8",
        "amount_fen": 1234,
        "currency": "CNY",
        "subject": "牛肉面",
        "method": method,
        "notify_url": "https://pay.example.cn/wechat/notify",
        "expire_at": NOW + timedelta(minutes=30),
        "payer_id": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        **changes,
    }
    return CreatePayment(**fields)  # type: ignore[arg-type]


def sdk_client() -> WeChatPay:
    return WeChatPay(
        wechatpay_type=WeChatPayType.JSAPI,
        mchid=DIRECT.mchid,
        private_key=KEYS.private_key_pem.reveal(),
        cert_serial_no="SERIAL",
        appid=DIRECT.appid,
        apiv3_key=APIV3_KEY.reveal(),
        public_key=KEYS.public_key_pem,
        public_key_id="PUB_KEY_ID_0001",
    )


# ---------------------------------------------------------------- statuses and times


@pytest.mark.parametrize(
    ("trade_state", "expected"),
    [
        ("SUCCESS", ChannelPaymentStatus.SUCCEEDED),
        ("REFUND", ChannelPaymentStatus.REFUNDED),
        ("NOTPAY", ChannelPaymentStatus.NOT_PAID),
        ("CLOSED", ChannelPaymentStatus.CLOSED),
        ("REVOKED", ChannelPaymentStatus.CLOSED),
        ("USERPAYING", ChannelPaymentStatus.PAYING),
        ("PAYERROR", ChannelPaymentStatus.FAILED),
    ],
)
def test_every_trade_state_maps(trade_state: str, expected: ChannelPaymentStatus) -> None:
    """Each of WeChat's seven trade_state values maps to one of our payment statuses."""
    status = tf.payment_status({"out_trade_no": "ord_1", "trade_state": trade_state})
    assert status.status is expected


def test_unknown_trade_state_is_refused() -> None:
    """A trade_state we do not know is an unexpected answer, never a guess."""
    with pytest.raises(tf.UnexpectedField):
        tf.payment_status({"out_trade_no": "ord_1", "trade_state": "MYSTERY"})


def test_paid_transaction_maps_amounts_time_and_payer() -> None:
    """A paid transaction gives fen, the UTC success time and the payer's openid."""
    status = tf.payment_status(
        {
            "out_trade_no": "ord_1",
            "transaction_id": "4200000991202103266853086457",
            "trade_state": "SUCCESS",
            "success_time": "2026-05-20T12:29:35+08:00",
            "payer": {"openid": "oUser"},
            "amount": {"total": 1234, "payer_total": 1200, "currency": "CNY"},
        }
    )
    assert (status.amount_fen, status.currency, status.payer_id) == (1234, "CNY", "oUser")
    assert status.paid_at == NOW
    assert status.channel_transaction_id == "4200000991202103266853086457"


@pytest.mark.parametrize(
    ("wechat", "expected"),
    [
        ("SUCCESS", ChannelRefundStatus.SUCCEEDED),
        ("CLOSED", ChannelRefundStatus.CLOSED),
        ("PROCESSING", ChannelRefundStatus.PROCESSING),
        ("ABNORMAL", ChannelRefundStatus.ABNORMAL),
    ],
)
def test_refund_statuses_map_from_answer_and_notification(
    wechat: str, expected: ChannelRefundStatus
) -> None:
    """`status` (API answers) and `refund_status` (notifications) map alike."""
    answer = tf.refund_status({"out_refund_no": "rfd_1", "status": wechat})
    notice = tf.refund_status({"out_refund_no": "rfd_1", "refund_status": wechat})
    assert answer.status is notice.status is expected


def test_times_are_beijing_on_the_wire_and_utc_inside() -> None:
    """We send +08:00 RFC 3339 and read any offset (or Z) into aware UTC."""
    assert tf.format_time(NOW) == "2026-05-20T12:29:35+08:00"
    assert tf.parse_time("2026-05-20T12:29:35+08:00") == NOW
    assert tf.parse_time("2026-05-20T04:29:35Z") == NOW
    with pytest.raises(tf.UnexpectedField):
        tf.parse_time("2026-05-20T12:29:35")


# ---------------------------------------------------------------- request bodies and paths


def test_native_body() -> None:
    """A native order body carries caller, amount in fen, Beijing expiry and notify_url."""
    body = tf.create_body(DIRECT, create(attach="shop=1", client_ip="10.0.0.1"))
    assert body == {
        "appid": DIRECT.appid,
        "mchid": DIRECT.mchid,
        "description": "牛肉面",
        "out_trade_no": "ord_01HZX3Q2W8",
        "time_expire": "2026-05-20T12:59:35+08:00",
        "notify_url": "https://pay.example.cn/wechat/notify",
        "amount": {"total": 1234, "currency": "CNY"},
        "attach": "shop=1",
        "scene_info": {"payer_client_ip": "10.0.0.1"},
    }
    assert tf.create_path(DIRECT, "wechat_native") == "/v3/pay/transactions/native"


def test_jsapi_and_partner_bodies() -> None:
    """JSAPI needs a payer; the partner API names sp_/sub_ ids and the sub_openid."""
    assert tf.create_body(DIRECT, create("wechat_jsapi"))["payer"] == {
        "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    }
    partner = tf.create_body(PARTNER, create("wechat_jsapi"))
    assert {k: partner[k] for k in ("sp_appid", "sp_mchid", "sub_mchid", "sub_appid")} == {
        "sp_appid": PARTNER.appid,
        "sp_mchid": PARTNER.mchid,
        "sub_mchid": "1900000110",
        "sub_appid": "wxsub0000001",
    }
    assert partner["payer"] == {"sub_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
    assert tf.create_path(PARTNER, "wechat_jsapi") == "/v3/pay/partner/transactions/jsapi"
    with pytest.raises(ValueError, match="openid"):
        tf.create_body(DIRECT, create("wechat_jsapi", payer_id=None))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"currency": "USD"}, "CNY"),
        ({"amount_fen": 0}, "positive"),
        ({"order_id": "bad id!"}, "out_trade_no"),
    ],
)
def test_invalid_orders_refused_before_sending(changes: dict[str, object], reason: str) -> None:
    """Currency, amount and order number are checked before anything is sent."""
    request = create(**changes)
    with pytest.raises(ValueError, match=reason):
        tf.create_body(DIRECT, request)


def test_other_channels_methods_refused() -> None:
    """A method WeChat does not serve has no path."""
    with pytest.raises(ValueError, match="does not serve"):
        tf.create_path(DIRECT, "alipay_qr")


def test_long_subject_truncated_to_127_characters() -> None:
    """description is string(127): a longer subject is cut, not refused."""
    assert len(tf.create_body(DIRECT, create(subject="面" * 200))["description"]) == 127


def test_paths_and_refund_body() -> None:
    """Query paths carry mchid (or sp_/sub_mchid); a refund names the order total."""
    assert tf.query_path(DIRECT, "ord_000001") == (
        "/v3/pay/transactions/out-trade-no/ord_000001?mchid=1900000109"
    )
    assert tf.query_path(PARTNER, "ord_000001").endswith(
        "?sp_mchid=1900000109&sub_mchid=1900000110"
    )
    assert tf.close_body(PARTNER) == {"sp_mchid": "1900000109", "sub_mchid": "1900000110"}
    assert tf.trade_bill_path(DIRECT, "2026-05-20", gzip=True) == (
        "/v3/bill/tradebill?bill_date=2026-05-20&bill_type=ALL&tar_type=GZIP"
    )
    request = RefundRequest("rfd_1", "ord_000001", 300, 1000, "CNY", reason="缺货")
    assert tf.refund_body(DIRECT, request) == {
        "out_trade_no": "ord_000001",
        "out_refund_no": "rfd_1",
        "amount": {"refund": 300, "total": 1000, "currency": "CNY"},
        "reason": "缺货",
    }
    with pytest.raises(ValueError, match="at most the order total"):
        tf.refund_body(DIRECT, RefundRequest("rfd_1", "ord_000001", 1001, 1000, "CNY"))


# ---------------------------------------------------------------- payment code, reverse, OAuth


def test_codepay_bodies_direct_and_partner() -> None:
    """A payment-code order carries payer.auth_code and scene_info, no expiry or notify_url."""
    request = create("wechat_micropay", auth_code="134567890123456789", client_ip="10.1.1.1")
    assert tf.create_path(DIRECT, "wechat_micropay") == "/v3/pay/transactions/codepay"
    assert tf.codepay_body(DIRECT, request, device_id="POS-7") == {
        "appid": DIRECT.appid,
        "mchid": DIRECT.mchid,
        "description": "牛肉面",
        "out_trade_no": "ord_01HZX3Q2W8",
        "payer": {"auth_code": "134567890123456789"},
        "amount": {"total": 1234, "currency": "CNY"},
        "scene_info": {"device_id": "POS-7", "device_ip": "10.1.1.1"},
    }
    partner = tf.codepay_body(PARTNER, request, device_id="POS-7")
    assert tf.create_path(PARTNER, "wechat_micropay") == "/v3/pay/partner/transactions/codepay"
    assert (partner["sp_mchid"], partner["sub_mchid"], partner["sub_appid"]) == (
        "1900000109",
        "1900000110",
        "wxsub0000001",
    )
    with pytest.raises(ValueError, match="auth_code"):
        tf.codepay_body(DIRECT, create("wechat_micropay"), device_id="POS-7")
    with pytest.raises(ValueError, match="codepay_body"):
        tf.create_body(DIRECT, request)


@given(st.text(alphabet="0123456789", min_size=0, max_size=20))
def test_payment_codes_are_18_digits_starting_10_to_15(code: str) -> None:
    """Only 18-digit codes whose first two digits are 10..15 are WeChat payment codes."""
    expected = len(code) == 18 and 10 <= int(code[:2]) <= 15
    assert tf.is_wechat_auth_code(code) is expected


def test_reverse_paths_and_bodies() -> None:
    """Reverse posts the caller ids to …/out-trade-no/{no}/reverse (partner: sp_/sub_ ids)."""
    assert tf.reverse_path(DIRECT, "ord_000001") == (
        "/v3/pay/transactions/out-trade-no/ord_000001/reverse"
    )
    assert tf.reverse_path(PARTNER, "ord_000001").startswith("/v3/pay/partner/transactions/")
    assert tf.reverse_body(DIRECT) == {"appid": DIRECT.appid, "mchid": DIRECT.mchid}
    assert tf.reverse_body(PARTNER)["sub_mchid"] == "1900000110"


def test_revoked_after_payment_is_refunded_before_payment_closed() -> None:
    """REVOKED with a success time means the money went back: REFUNDED; without it, CLOSED."""
    revoked = {"out_trade_no": "ord_1", "trade_state": "REVOKED"}
    assert tf.payment_status(revoked).status is ChannelPaymentStatus.CLOSED
    paid = {**revoked, "success_time": "2026-05-20T12:29:35+08:00", "transaction_id": "42"}
    assert tf.payment_status(paid).status is ChannelPaymentStatus.REFUNDED


def test_micropay_refusal_and_pending_codes_do_not_overlap() -> None:
    """A code is either a definite refusal (FAILED) or an open outcome (PAYING), never both."""
    assert not tf.MICROPAY_REFUSED_CODES & tf.MICROPAY_PENDING_CODES
    refused = tf.micropay_refused("ord_1", "NOTENOUGH", "余额不足")
    assert (refused.status, refused.failure_reason) == (
        ChannelPaymentStatus.FAILED,
        "NOTENOUGH: 余额不足",
    )
    assert tf.micropay_pending("ord_1", "USERPAYING").status is ChannelPaymentStatus.PAYING


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ({"errcode": 40163, "errmsg": "code been used"}, ChannelErrorKind.REJECTED),
        ({"errcode": 40125, "errmsg": "invalid appsecret"}, ChannelErrorKind.AUTHENTICATION),
        ({"errcode": -1, "errmsg": "system error"}, ChannelErrorKind.UNAVAILABLE),
        ({"access_token": "t"}, ChannelErrorKind.INVALID_RESPONSE),
    ],
)
def test_oauth_errors_map_to_channel_errors(answer: dict[str, object], kind: object) -> None:
    """WeChat OAuth errcodes become REJECTED / AUTHENTICATION / UNAVAILABLE; no openid is bad."""
    with pytest.raises(ChannelError) as failure:
        oauth.openid_of(answer)
    assert failure.value.kind is kind
    assert oauth.openid_of({"openid": "oX", "errcode": 0}) == "oX"


def test_oauth_urls() -> None:
    """The authorize URL is WeChat's; the exchange query names the grant and refuses no code."""
    url = oauth.authorize_url(
        base_url="https://open.weixin.qq.com", appid="wx1", redirect_uri="https://a.cn/r", state="s"
    )
    assert url == (
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1"
        "&redirect_uri=https%3A%2F%2Fa.cn%2Fr&response_type=code&scope=snsapi_base&state=s"
        "#wechat_redirect"
    )
    with pytest.raises(ValueError, match="redirect_uri"):
        oauth.authorize_url(base_url="https://x", appid="wx1", redirect_uri="/r", state="s")
    assert oauth.access_token_query(appid="wx1", secret="k", code="c").endswith(
        "grant_type=authorization_code"
    )
    with pytest.raises(ValueError, match="code"):
        oauth.access_token_query(appid="wx1", secret="k", code="")


# ---------------------------------------------------------------- wire rules vs the SDK


def test_request_signature_matches_the_sdk() -> None:
    """Our Authorization signs exactly the string the SDK signs (RSA PKCS#1 v1.5 is
    deterministic, so equal strings give equal signatures)."""
    body = json.dumps({"mchid": "1900000109"}).encode()
    auth = wire.sign_request(
        method="POST",
        url_path="/v3/pay/transactions/native",
        body=body,
        mchid="1900000109",
        serial_no="SERIAL",
        private_key_pem=KEYS.private_key_pem,
        timestamp="1554208460",
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    sign_string = (
        "POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n"
        + body.decode()
        + "\n"
    )
    assert auth.signature == sdk_rsa_sign(sdk_client()._core._private_key, sign_string)
    assert wire.parse_authorization(auth.header_value()) == auth


@pytest.mark.parametrize(
    "header",
    [
        'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="n",signature="s",timestamp="1"',
        'OTHER mchid="1",nonce_str="n",signature="s",timestamp="1",serial_no="x"',
        'WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="n",signature="s",timestamp="1"',
        "WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str=n,signature=s,timestamp=1,serial_no=x",
    ],
)
def test_malformed_authorization_refused(header: str) -> None:
    """Missing, duplicated or unquoted fields and other schemes are not v3 Authorization."""
    with pytest.raises(wire.WireFormatError):
        wire.parse_authorization(header)


def test_jsapi_pay_sign_matches_the_sdk() -> None:
    """paySign equals the SDK's `sign([appId, timeStamp, nonceStr, package])`."""
    params = wire.jsapi_pay_params(
        appid=DIRECT.appid,
        prepay_id="wx201410272009395522657a690389285100",
        private_key_pem=KEYS.private_key_pem,
        timestamp="1414561699",
        nonce="5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    )
    expected = sdk_client().sign(
        [DIRECT.appid, "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", params["package"]]
    )
    assert params["paySign"] == expected


def test_resource_encryption_decrypts_with_the_sdk_and_detects_tampering() -> None:
    """Our AEAD_AES_256_GCM resource is what the SDK decrypts; an altered one is refused."""
    resource = wire.encrypt_resource(b'{"a":1}', apiv3_key=APIV3_KEY, associated_data="transaction")
    assert (
        aes_decrypt(
            resource["nonce"],
            resource["ciphertext"],
            resource["associated_data"],
            APIV3_KEY.reveal(),
        )
        == '{"a":1}'
    )
    assert wire.decrypt_resource(resource, apiv3_key=APIV3_KEY) == b'{"a":1}'
    with pytest.raises(wire.WireFormatError):
        wire.decrypt_resource({**resource, "associated_data": "refund"}, apiv3_key=APIV3_KEY)


def test_signed_answers_verify_only_when_fresh_whole_and_ours() -> None:
    """verify_signed accepts a fresh answer and names why others fail."""
    body = b'{"ok":true}'
    headers = wire.signed_headers(
        body=body, private_key_pem=KEYS.private_key_pem, public_key_id="PUB_1", timestamp="1000"
    )

    def check(headers: dict[str, str], body: bytes, now_s: int = 1000) -> str | None:
        return wire.verify_signed(
            headers, body, public_key_pem=KEYS.public_key_pem, public_key_id="PUB_1", now_s=now_s
        )

    assert check(headers, body) is None
    assert check({k.lower(): v for k, v in headers.items()}, body) is None
    assert check(headers, body, now_s=1000 + 301) is not None
    assert check(headers, body + b" ") == "signature does not verify"
    assert check({**headers, "Wechatpay-Serial": "PUB_2"}, body) is not None
    probe = {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc"}
    assert check(probe, body) == "signature probe"


# ---------------------------------------------------------------- the bill format


def row(**changes: object) -> bill.TradeBillRow:
    fields: dict[str, object] = {
        "traded_at": NOW, "appid": DIRECT.appid, "mchid": DIRECT.mchid, "sub_mchid": "0",
        "device_info": "", "transaction_id": "4200000991202103266853086457",
        "out_trade_no": "ord_1", "openid": "oUser", "trade_type": "NATIVE",
        "trade_state": "SUCCESS", "bank_type": "OTHERS", "currency": "CNY",
        "settlement_total_fen": 1234, "coupon_fen": 0, "refund_id": "0", "out_refund_no": "0",
        "refund_fen": 0, "coupon_refund_fen": 0, "refund_type": "", "refund_status": "",
        "description": "面, with comma", "attach": "", "fee_yuan": Decimal("0.07000"),
        "fee_rate": "0.60%", "order_total_fen": 1234, "refund_requested_fen": 0,
        "fee_rate_note": "", **changes,
    }  # fmt: skip
    return bill.TradeBillRow(**fields)  # type: ignore[arg-type]


def test_bill_renders_the_real_layout_and_parses_back() -> None:
    """Header, backtick-prefixed rows in yuan, summary; parsing gives the rows back."""
    refund = row(
        trade_state="REFUND", settlement_total_fen=0, refund_id="503", out_refund_no="rfd_1",
        refund_fen=234, refund_type="ORIGINAL", refund_status="SUCCESS",
        fee_yuan=Decimal("-0.01000"), order_total_fen=0, refund_requested_fen=234,
    )  # fmt: skip
    data = bill.render_trade_bill([row(), refund])
    lines = data.decode("utf-8-sig").split("\r\n")
    assert lines[0].startswith("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号")
    assert lines[1].startswith("`2026-05-20 12:29:35,`wxd678efh567hg6787,`1900000109,`0,`,")
    assert "`12.34,`0.00," in lines[1]
    assert "`0.07000,`0.60%" in lines[1]
    assert lines[3].split(",") == list(bill.SUMMARY_COLUMNS)
    assert lines[3].startswith("总交易单数,应结订单总金额,退款总金额,充值券退款总金额")
    assert lines[4] == "`2,`12.34,`2.34,`0.00,`0.06000,`12.34,`2.34"
    parsed = bill.parse_trade_bill(data)
    # A comma in free text would shift columns (the format has no quoting): it becomes "，".
    plain = "面， with comma"
    assert parsed.rows == (row(description=plain), dataclasses.replace(refund, description=plain))
    assert parsed.summary.trade_count == 2


def test_bill_with_wrong_summary_or_shape_refused() -> None:
    """A summary counting other rows, or a file that is not a bill, is refused."""
    data = bill.render_trade_bill([row()]).replace(b"`1,`12.34", b"`2,`12.34")
    with pytest.raises(bill.BillFormatError):
        bill.parse_trade_bill(data)
    with pytest.raises(bill.BillFormatError):
        bill.parse_trade_bill(b"not,a,bill\r\n")


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_yuan_text_round_trips_exactly(amount_fen: int) -> None:
    """Fen → yuan text → fen is exact for any amount, negative too."""
    assert bill.fen_from_yuan(bill.yuan_text(amount_fen)) == amount_fen


def test_amount_finer_than_a_fen_refused() -> None:
    """`0.001` yuan is not an amount a bill can hold."""
    with pytest.raises(bill.BillFormatError):
        bill.fen_from_yuan("0.001")
