"""The real `wechatpayv3` SDK, used as a merchant would, against the WeChat Pay sandbox.

Public-key mode, gateway pointed at the loopback sandbox (ENVIRONMENT.md). The SDK signs
requests its own way and verifies every 2xx answer's `Wechatpay-*` signature, so each passing
call proves the sandbox speaks the SDK's dialect of API v3.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType

from cloudpay.channels.wechat.sandbox import WeChatSandbox, start_wechat_sandbox
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.crypto import generate_rsa_key_pair
from tests.contract.receiver import NotificationReceiver

SUB_MCHID = "1900000110"  # the sandbox's default merchant may act for this sub-merchant


@pytest.fixture(scope="module")
def receiver() -> Iterator[NotificationReceiver]:
    receiver = NotificationReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WeChatSandbox]:
    with start_wechat_sandbox(time_scale=0.001) as sandbox:
        yield sandbox


def sdk(
    sandbox: WeChatSandbox,
    notify_url: str,
    *,
    private_key: str | None = None,
    partner_mode: bool = False,
) -> WeChatPay:
    merchant = sandbox.merchant
    wxpay = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=merchant.mchid,
        private_key=private_key or merchant.private_key_pem.reveal(),
        cert_serial_no=merchant.serial_no,
        appid=merchant.appid,
        apiv3_key=merchant.apiv3_key.reveal(),
        notify_url=notify_url,
        public_key=sandbox.platform_public_key_pem,
        public_key_id=sandbox.platform_public_key_id,
        partner_mode=partner_mode,
        timeout=(5, 5),
    )
    wxpay._core._gate_way = sandbox.base_url
    return wxpay


def order_number() -> str:
    return f"sdk{uuid.uuid4().hex[:24]}"


def test_native_pay_query_refund_close(
    sandbox: WeChatSandbox, receiver: NotificationReceiver
) -> None:
    """The SDK pays a native order, sees it SUCCESS, refunds it, and closes another order."""
    wxpay = sdk(sandbox, f"{receiver.url}/sdk")
    number = order_number()
    code, body = wxpay.pay(description="牛肉面", out_trade_no=number, amount={"total": 1800})
    assert code == 200
    assert json.loads(body)["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")

    sandbox.pay(number, "success")
    code, body = wxpay.query(out_trade_no=number)
    paid = json.loads(body)
    assert (code, paid["trade_state"], paid["amount"]["total"]) == (200, "SUCCESS", 1800)
    code, body = wxpay.query(transaction_id=paid["transaction_id"])
    assert json.loads(body)["out_trade_no"] == number

    refund_no = f"r{number}"
    code, body = wxpay.refund(
        out_refund_no=refund_no,
        amount={"refund": 800, "total": 1800, "currency": "CNY"},
        out_trade_no=number,
    )
    assert code == 200
    assert json.loads(body)["status"] in ("PROCESSING", "SUCCESS")
    code, body = wxpay.query_refund(out_refund_no=refund_no)
    assert (code, json.loads(body)["amount"]["refund"]) == (200, 800)

    other = order_number()
    assert wxpay.pay(description="test", out_trade_no=other, amount={"total": 1})[0] == 200
    assert wxpay.close(out_trade_no=other) == (204, b"")
    assert json.loads(wxpay.query(out_trade_no=other)[1])["trade_state"] == "CLOSED"


@pytest.mark.parametrize("fault", ["bad_signature", "tampered_body"])
def test_sdk_refuses_an_answer_that_fails_verification(sandbox: WeChatSandbox, fault: str) -> None:
    """The SDK's own check rejects a sandbox answer whose signature or body was altered."""
    wxpay = sdk(sandbox, "http://127.0.0.1:9/unused")
    number = order_number()
    wxpay.pay(description="test", out_trade_no=number, amount={"total": 5})
    sandbox.inject_fault(fault)
    with pytest.raises(Exception, match="failed to verify the signature"):
        wxpay.query(out_trade_no=number)


def test_sdk_signed_with_another_key_is_refused(sandbox: WeChatSandbox) -> None:
    """A request signed with a key that is not the merchant's gets 401 SIGN_ERROR."""
    stranger = generate_rsa_key_pair().private_key_pem.reveal()
    code, body = sdk(sandbox, "http://127.0.0.1:9/x", private_key=stranger).query(
        out_trade_no=order_number()
    )
    assert (code, json.loads(body)["code"]) == (401, "SIGN_ERROR")


def test_sdk_callback_decrypts_a_sandbox_notification(
    sandbox: WeChatSandbox, receiver: NotificationReceiver
) -> None:
    """`callback()` verifies and decrypts the sandbox's TRANSACTION.SUCCESS notification."""
    wxpay = sdk(sandbox, f"{receiver.url}/callback")
    number = order_number()
    wxpay.pay(description="test", out_trade_no=number, amount={"total": 66})
    sandbox.pay(number, "success")
    (captured,) = receiver.wait_for("/callback", 1)
    result = wxpay.callback(captured.headers, captured.body)
    assert result["event_type"] == "TRANSACTION.SUCCESS"
    assert result["resource"]["out_trade_no"] == number
    assert result["resource"]["trade_state"] == "SUCCESS"
    assert result["resource"]["amount"]["total"] == 66
    assert (
        wxpay.callback(captured.headers, captured.body.replace(b"TRANSACTION", b"TRANSACTIOX"))
        is None
    )


def test_sdk_downloads_the_trade_bill(sandbox: WeChatSandbox) -> None:
    """The gzip bill the SDK downloads unpacks to a file whose SHA1 is the announced one."""
    wxpay = sdk(sandbox, "http://127.0.0.1:9/unused")
    number = order_number()
    wxpay.pay(description="bill", out_trade_no=number, amount={"total": 250})
    sandbox.pay(number, "success")
    code, body = wxpay.trade_bill(bill_date=datetime.now(SHANGHAI).date().isoformat())
    info = json.loads(body)
    assert (code, info["hash_type"]) == (200, "SHA1")
    code, content = wxpay.download_bill(info["download_url"])
    plain = gzip.decompress(content)
    assert code == 200
    assert hashlib.sha1(plain).hexdigest() == info["hash_value"]  # noqa: S324
    assert f"`{number}".encode() in plain


def test_sdk_partner_mode(sandbox: WeChatSandbox, receiver: NotificationReceiver) -> None:
    """A service provider (服务商) pays, queries and closes for its sub-merchant."""
    wxpay = sdk(sandbox, f"{receiver.url}/partner", partner_mode=True)
    number = order_number()
    code, _ = wxpay.pay(
        description="partner", out_trade_no=number, amount={"total": 30}, sub_mchid=SUB_MCHID
    )
    assert code == 200
    sandbox.pay(number, "success")
    code, body = wxpay.query(out_trade_no=number, sub_mchid=SUB_MCHID)
    assert (code, json.loads(body)["sub_mchid"]) == (200, SUB_MCHID)
    (captured,) = receiver.wait_for("/partner", 1)
    assert wxpay.callback(captured.headers, captured.body)["resource"]["sp_mchid"]
    other = order_number()
    wxpay.pay(description="p", out_trade_no=other, amount={"total": 1}, sub_mchid=SUB_MCHID)
    assert wxpay.close(out_trade_no=other, sub_mchid=SUB_MCHID)[0] == 204


def test_sdk_codepay_and_reverse(sandbox: WeChatSandbox) -> None:
    """The SDK's CODEPAY pays with a payment code; `codepay_reverse` then revokes the payment."""
    wxpay = sdk(sandbox, "http://127.0.0.1:9/unused")
    number = order_number()
    code, body = wxpay.pay(
        description="便利店",
        out_trade_no=number,
        amount={"total": 420},
        payer={"auth_code": "134567890123456789"},
        scene_info={"device_id": "POS-01"},
        pay_type=WeChatPayType.CODEPAY,
    )
    paid = json.loads(body)
    assert (code, paid["trade_type"], paid["trade_state"]) == (200, "MICROPAY", "SUCCESS")
    assert paid["amount"]["total"] == 420
    code, body = wxpay.codepay_reverse(out_trade_no=number)
    assert (code, json.loads(body)["out_trade_no"]) == (200, number)
    assert json.loads(wxpay.query(out_trade_no=number)[1])["trade_state"] == "REVOKED"


def test_sdk_codepay_waiting_for_the_password(sandbox: WeChatSandbox) -> None:
    """A pending payment answers 202 USERPAYING (signed, so the SDK accepts it) until confirmed."""
    wxpay = sdk(sandbox, "http://127.0.0.1:9/unused", partner_mode=True)
    number, auth_code = order_number(), "104567890123456789"
    sandbox.expect_micropay(auth_code, "password_pending")
    code, body = wxpay.pay(
        description="partner",
        out_trade_no=number,
        amount={"total": 99},
        payer={"auth_code": auth_code},
        scene_info={"device_id": "POS-02"},
        sub_mchid=SUB_MCHID,
        pay_type=WeChatPayType.CODEPAY,
    )
    assert (code, json.loads(body)["code"]) == (202, "USERPAYING")
    sandbox.pay(number, "confirm")
    code, body = wxpay.query(out_trade_no=number, sub_mchid=SUB_MCHID)
    assert (code, json.loads(body)["trade_state"]) == (200, "SUCCESS")
    assert wxpay.codepay_reverse(out_trade_no=number, sub_mchid=SUB_MCHID)[0] == 200
