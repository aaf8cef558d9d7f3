"""The WeChat Pay sandbox refuses what WeChat refuses, and its control surface works.

Requests here are raw HTTP, signed by hand with `wire.py`, to reach the checks the adapter and
the SDK never trip: missing or forged signatures, bad bodies, refunds out of order.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudpay.channels.wechat import WeChatPayChannel, wire
from cloudpay.channels.wechat.sandbox import (
    RETRY_SCHEDULE_S,
    WeChatSandbox,
    customer_pay,
    start_wechat_sandbox,
)
from cloudpay.channels.wechat.sandbox.notifier import Delivery, Notifier
from cloudpay.channels.wechat.sandbox.server import adapter_config_from_credentials
from cloudpay.kernel.clock import SystemClock
from cloudpay.kernel.crypto import generate_rsa_key_pair
from tests.contract.receiver import NotificationReceiver


@pytest.fixture(scope="module")
def sandbox() -> Iterator[WeChatSandbox]:
    with start_wechat_sandbox(time_scale=0.001) as sandbox:
        yield sandbox


def call(
    sandbox: WeChatSandbox,
    method: str,
    path: str,
    body: dict[str, Any] | bytes | None = None,
    *,
    sign_body: bytes | None = None,
    private_key: Any = None,
    serial_no: str | None = None,
    mchid: str | None = None,
    authorization: str | None = None,
) -> httpx.Response:
    """A v3 request signed by hand; `sign_body` signs other bytes than those sent."""
    merchant = sandbox.merchant
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
    auth = wire.sign_request(
        method=method,
        url_path=path,
        body=raw if sign_body is None else sign_body,
        mchid=mchid or merchant.mchid,
        serial_no=serial_no or merchant.serial_no,
        private_key_pem=private_key or merchant.private_key_pem,
        timestamp=str(int(time.time())),
        nonce=wire.new_nonce(),
    )
    headers = {"Content-Type": "application/json"}
    if authorization != "":
        headers["Authorization"] = authorization or auth.header_value()
    return httpx.request(method, sandbox.base_url + path, content=raw, headers=headers)


def native_body(sandbox: WeChatSandbox, **changes: Any) -> dict[str, Any]:
    return {
        "appid": sandbox.merchant.appid,
        "mchid": sandbox.merchant.mchid,
        "description": "test",
        "out_trade_no": f"sbx{uuid.uuid4().hex[:20]}",
        "notify_url": "http://127.0.0.1:9/n",
        "amount": {"total": 100, "currency": "CNY"},
        **changes,
    }


def error_code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


QUERY = "/v3/pay/transactions/out-trade-no/sbx000001?mchid=1900000109"


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ({"authorization": ""}, (401, "SIGN_ERROR")),
        ({"authorization": "WECHATPAY2-SHA256-RSA2048 mchid=1900000109"}, (401, "SIGN_ERROR")),
        ({"mchid": "1234567890"}, (400, "MCH_NOT_EXISTS")),
        ({"serial_no": "0" * 40}, (401, "SIGN_ERROR")),
        ({"private_key": generate_rsa_key_pair().private_key_pem}, (401, "SIGN_ERROR")),
    ],
)
def test_requests_must_be_signed_by_the_merchant(
    sandbox: WeChatSandbox, tamper: dict[str, Any], expected: tuple[int, str]
) -> None:
    """Missing, malformed, foreign or forged Authorization is refused before anything else."""
    response = call(sandbox, "GET", QUERY, **tamper)
    assert error_code(response) == expected
    assert response.headers["Wechatpay-Signature"]  # errors are signed too


def test_body_altered_after_signing_is_refused(sandbox: WeChatSandbox) -> None:
    """The signature covers the body: other bytes than those signed get 401."""
    body = native_body(sandbox)
    signed = json.dumps({**body, "amount": {"total": 1}}).encode()
    response = call(sandbox, "POST", "/v3/pay/transactions/native", body, sign_body=signed)
    assert error_code(response) == (401, "SIGN_ERROR")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"mchid": "1900000999"}, (400, "PARAM_ERROR")),
        ({"appid": "wx_not_bound"}, (400, "APPID_MCHID_NOT_MATCH")),
        ({"amount": {"total": 0}}, (400, "PARAM_ERROR")),
        ({"amount": {"total": 1, "currency": "USD"}}, (400, "PARAM_ERROR")),
        ({"notify_url": "http://x.cn/n?a=1"}, (400, "PARAM_ERROR")),
        ({"out_trade_no": "no"}, (400, "PARAM_ERROR")),
    ],
)
def test_order_bodies_are_checked(
    sandbox: WeChatSandbox, changes: dict[str, Any], expected: tuple[int, str]
) -> None:
    """Caller, app, amount, currency, notify_url and order number are validated like WeChat."""
    response = call(sandbox, "POST", "/v3/pay/transactions/native", native_body(sandbox, **changes))
    assert error_code(response) == expected


def test_refund_rules(sandbox: WeChatSandbox) -> None:
    """No refund before payment, with another order total, or reusing a refund number."""
    body = native_body(sandbox)
    assert call(sandbox, "POST", "/v3/pay/transactions/native", body).status_code == 200
    refund = {
        "out_trade_no": body["out_trade_no"],
        "out_refund_no": f"r{body['out_trade_no']}",
        "amount": {"refund": 10, "total": 100, "currency": "CNY"},
    }
    path = "/v3/refund/domestic/refunds"
    assert error_code(call(sandbox, "POST", path, refund)) == (400, "INVALID_REQUEST")
    sandbox.pay(body["out_trade_no"])
    wrong_total = {**refund, "amount": {"refund": 10, "total": 99}}
    assert error_code(call(sandbox, "POST", path, wrong_total)) == (400, "INVALID_REQUEST")
    assert call(sandbox, "POST", path, refund).status_code == 200
    changed = {**refund, "amount": {"refund": 11, "total": 100}}
    assert error_code(call(sandbox, "POST", path, changed)) == (400, "INVALID_REQUEST")


def test_customer_pay_over_http(sandbox: WeChatSandbox) -> None:
    """The CLI's `customer_pay` pays an order, and explains why it cannot pay it twice."""
    body = native_body(sandbox)
    call(sandbox, "POST", "/v3/pay/transactions/native", body)
    result = customer_pay(sandbox.base_url, body["out_trade_no"], "success")
    assert (result["trade_state"], result["notifications"]) == ("SUCCESS", 1)
    with pytest.raises(ValueError, match="SUCCESS"):
        customer_pay(sandbox.base_url, body["out_trade_no"], "success")
    with pytest.raises(ValueError, match="no order"):
        customer_pay(sandbox.base_url, "sbx_unknown_order", "fail")
    url = f"{sandbox.base_url}/sandbox/notifications?out_trade_no={body['out_trade_no']}"
    deadline = time.monotonic() + 5
    while not (attempts := httpx.get(url).json()) and time.monotonic() < deadline:
        time.sleep(0.01)  # an attempt is recorded once it has ended
    assert attempts[0]["event_type"] == "TRANSACTION.SUCCESS"


def test_notifier_gives_up_after_the_whole_schedule() -> None:
    """A notify_url that never answers 2xx gets the first try plus 15 retries, then silence."""
    receiver = NotificationReceiver(answer=lambda index: 503)
    notifier = Notifier(sign=lambda body: {}, clock=SystemClock(), time_scale=0.00001)
    try:
        notifier.submit(Delivery(f"{receiver.url}/never", b"{}", "id-1", "T", "o", None, 1), 0)
        receiver.wait_for("/never", 1 + len(RETRY_SCHEDULE_S), timeout_s=10)
        time.sleep(0.3)
        assert len(receiver.captured("/never")) == 16
        assert notifier.pending() == 0
    finally:
        notifier.stop()
        receiver.close()


def test_credentials_file_keeps_keys_across_restarts(tmp_path: Path) -> None:
    """A sandbox restarted on its credentials file serves the same merchant and platform key."""
    path = tmp_path / "wechat-sandbox.json"
    with start_wechat_sandbox(credentials_path=path) as first:
        key_id = first.platform_public_key_id
    assert path.stat().st_mode & 0o777 == 0o600
    with start_wechat_sandbox(credentials_path=path) as second:
        assert second.platform_public_key_id == key_id
        config = adapter_config_from_credentials(path, base_url=second.base_url)
        with WeChatPayChannel(config) as channel:
            assert channel.query_payment("sbx_unknown_order").status.value == "not_found"
