"""python-alipay-sdk, the reference merchant client, against the Alipay sandbox: proof that the
sandbox speaks the dialect real merchants' code speaks (signing, answers, notifications)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay  # type: ignore[import-untyped]

from cloudpay.channels.alipay.sandbox import AlipaySandbox, start_alipay_sandbox
from cloudpay.kernel.crypto import generate_rsa_key_pair
from tests.contract.harness_alipay import AlipayNotifyReceiver


@pytest.fixture(scope="module")
def sandbox() -> Iterator[AlipaySandbox]:
    with start_alipay_sandbox(time_scale=0.001) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def receiver() -> Iterator[AlipayNotifyReceiver]:
    receiver = AlipayNotifyReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(autouse=True)
def beijing_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The SDK stamps `timestamp` with the host's local time, which Alipay reads as Beijing
    time: merchants run it on Beijing time, and so do these tests."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def sdk(sandbox: AlipaySandbox, receiver: AlipayNotifyReceiver) -> AliPay:
    client = AliPay(
        appid=sandbox.app.app_id,
        app_notify_url=f"{receiver.url}/sdk",
        app_private_key_string=sandbox.app.private_key_pem.reveal(),
        alipay_public_key_string=sandbox.alipay_public_key_pem,
        sign_type="RSA2",
    )
    client._gateway = sandbox.gateway_url  # the SDK has no base URL setting
    return client


def _order_id() -> str:
    return f"ord_{uuid.uuid4().hex[:20]}"


def _precreate(sdk: AliPay, order_id: str, amount: str = "12.34") -> dict[str, Any]:
    answer: dict[str, Any] = sdk.api_alipay_trade_precreate(
        subject="Noodles 牛肉面", out_trade_no=order_id, total_amount=amount
    )
    return answer


def test_precreate_and_query(sdk: AliPay, sandbox: AlipaySandbox) -> None:
    """The SDK's precreate gets a signed QR answer it verifies, and its query follows payment."""
    order_id = _order_id()
    created = _precreate(sdk, order_id)
    assert created["code"] == "10000"
    assert created["qr_code"].startswith("https://qr.alipay.com/")
    assert sdk.api_alipay_trade_query(out_trade_no=order_id)["trade_status"] == "WAIT_BUYER_PAY"
    sandbox.pay(order_id, "success")
    queried = sdk.api_alipay_trade_query(out_trade_no=order_id)
    assert (queried["trade_status"], queried["total_amount"]) == ("TRADE_SUCCESS", "12.34")


def test_refund_and_close(sdk: AliPay, sandbox: AlipaySandbox) -> None:
    """The SDK refunds a paid trade (idempotent by out_request_no) and closes an unpaid one."""
    paid, unpaid = _order_id(), _order_id()
    _precreate(sdk, paid, "10.00")
    _precreate(sdk, unpaid)
    sandbox.pay(paid, "success")
    first = sdk.api_alipay_trade_refund("4.00", out_trade_no=paid, out_request_no="r1")
    again = sdk.api_alipay_trade_refund("4.00", out_trade_no=paid, out_request_no="r1")
    assert (first["fund_change"], first["refund_fee"]) == ("Y", "4.00")
    assert (again["fund_change"], again["refund_fee"]) == ("N", "4.00")
    over = sdk.api_alipay_trade_refund("6.01", out_trade_no=paid, out_request_no="r2")
    assert over["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert sdk.api_alipay_trade_close(out_trade_no=unpaid)["code"] == "10000"
    assert sdk.api_alipay_trade_query(out_trade_no=unpaid)["trade_status"] == "TRADE_CLOSED"


def test_wrong_key_is_refused(sdk: AliPay, sandbox: AlipaySandbox) -> None:
    """A request signed with a key Alipay does not hold for the app is isv.invalid-signature."""
    other = AliPay(
        appid=sandbox.app.app_id,
        app_private_key_string=_other_private_key(),
        alipay_public_key_string=sandbox.alipay_public_key_pem,
    )
    other._gateway = sandbox.gateway_url
    answer = other.api_alipay_trade_query(out_trade_no=_order_id())
    assert (answer["code"], answer["sub_code"]) == ("40002", "isv.invalid-signature")


def _other_private_key() -> str:
    return generate_rsa_key_pair().private_key_pem.reveal()


def _notification_for(receiver: AlipayNotifyReceiver, order_id: str) -> dict[str, str]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for post in receiver.posts("/sdk"):
            params = dict(parse_qsl(post.body.decode()))
            if params.get("out_trade_no") == order_id:
                return params
        time.sleep(0.01)
    raise AssertionError(f"no notification for {order_id}")


def test_sdk_verifies_notifications(
    sdk: AliPay, sandbox: AlipaySandbox, receiver: AlipayNotifyReceiver
) -> None:
    """`AliPay.verify` accepts a notification the sandbox sent and rejects a tampered one."""
    order_id = _order_id()
    _precreate(sdk, order_id, "8.88")
    sandbox.pay(order_id, "success")
    params = _notification_for(receiver, order_id)
    assert params["trade_status"] == "TRADE_SUCCESS"
    assert params["total_amount"] == "8.88"
    signature = params.pop("sign")
    assert sdk.verify(dict(params), signature)
    assert not sdk.verify({**params, "total_amount": "0.01"}, signature)
