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
    expect_micropay,
    set_available,
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


def codepay_body(sandbox: WeChatSandbox, auth_code: str, **changes: Any) -> dict[str, Any]:
    return {
        "appid": sandbox.merchant.appid,
        "mchid": sandbox.merchant.mchid,
        "description": "test",
        "out_trade_no": f"sbx{uuid.uuid4().hex[:20]}",
        "payer": {"auth_code": auth_code},
        "amount": {"total": 100, "currency": "CNY"},
        "scene_info": {"device_id": "POS-1"},
        **changes,
    }


CODEPAY = "/v3/pay/transactions/codepay"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"payer": {}}, (400, "PARAM_ERROR")),
        ({"scene_info": None}, (400, "PARAM_ERROR")),
        ({"scene_info": {}}, (400, "PARAM_ERROR")),
        ({"payer": {"auth_code": "281234567890123456"}}, (400, "AUTH_CODE_INVALID")),
        ({"payer": {"auth_code": "12345"}}, (400, "AUTH_CODE_INVALID")),
    ],
)
def test_codepay_bodies_are_checked(
    sandbox: WeChatSandbox, changes: dict[str, Any], expected: tuple[int, str]
) -> None:
    """A payment-code order needs payer.auth_code (a WeChat code) and scene_info.device_id."""
    body = codepay_body(sandbox, "134000000000000001", **changes)
    assert error_code(call(sandbox, "POST", CODEPAY, body)) == expected


def test_codepay_controls_over_http_and_notify_extension(sandbox: WeChatSandbox) -> None:
    """`expect_micropay` scripts a code over HTTP; a codepay with notify_url gets notified."""
    receiver = NotificationReceiver()
    try:
        expect_micropay(sandbox.base_url, "114000000000000002", "password_pending")
        with pytest.raises(ValueError, match="outcome"):
            expect_micropay(sandbox.base_url, "114000000000000003", "lucky")
        body = codepay_body(sandbox, "114000000000000002", notify_url=f"{receiver.url}/mp")
        response = call(sandbox, "POST", CODEPAY, body)
        assert error_code(response) == (202, "USERPAYING")
        assert response.headers["Wechatpay-Signature"]
        other = {**body, "amount": {"total": 101, "currency": "CNY"}}
        assert error_code(call(sandbox, "POST", CODEPAY, other)) == (403, "OUT_TRADE_NO_USED")
        assert receiver.captured("/mp") == []
        result = customer_pay(sandbox.base_url, body["out_trade_no"], "confirm")
        assert result["trade_state"] == "SUCCESS"
        (notice,) = receiver.wait_for("/mp", 1)
        assert json.loads(notice.body)["event_type"] == "TRANSACTION.SUCCESS"
        with pytest.raises(ValueError, match="is SUCCESS"):
            customer_pay(sandbox.base_url, body["out_trade_no"], "abandon")
        native = native_body(sandbox)
        call(sandbox, "POST", "/v3/pay/transactions/native", native)
        with pytest.raises(ValueError, match="USERPAYING"):
            customer_pay(sandbox.base_url, native["out_trade_no"], "confirm")
    finally:
        receiver.close()


def test_reverse_rules(sandbox: WeChatSandbox) -> None:
    """Unknown orders 404; partner reverse needs its sub_mchid; a partly refunded order refuses."""
    path = "/v3/pay/transactions/out-trade-no/{}/reverse"
    caller = {"appid": sandbox.merchant.appid, "mchid": sandbox.merchant.mchid}
    assert error_code(call(sandbox, "POST", path.format("sbx_unknown_1"), caller)) == (
        404,
        "ORDER_NOT_EXIST",
    )
    partner = "/v3/pay/partner/transactions/out-trade-no/sbx_unknown_1/reverse"
    partner_caller = {"sp_mchid": sandbox.merchant.mchid}
    assert error_code(call(sandbox, "POST", partner, partner_caller)) == (400, "PARAM_ERROR")
    body = codepay_body(sandbox, "124000000000000004")
    assert call(sandbox, "POST", CODEPAY, body).status_code == 200
    refund = {
        "out_trade_no": body["out_trade_no"],
        "out_refund_no": f"r{body['out_trade_no']}",
        "amount": {"refund": 10, "total": 100, "currency": "CNY"},
    }
    assert call(sandbox, "POST", "/v3/refund/domestic/refunds", refund).status_code == 200
    reverse = call(sandbox, "POST", path.format(body["out_trade_no"]), caller)
    assert error_code(reverse) == (400, "INVALID_REQUEST")


def test_availability_switch_over_http(sandbox: WeChatSandbox) -> None:
    """Switched off, every /v3 call gets a signed 503 SYSTEM_ERROR and nothing is created."""
    bad = httpx.post(f"{sandbox.base_url}/sandbox/availability", json={"available": "no"})
    assert bad.status_code == 400
    body = native_body(sandbox)
    set_available(sandbox.base_url, False)
    try:
        response = call(sandbox, "POST", "/v3/pay/transactions/native", body)
        assert error_code(response) == (503, "SYSTEM_ERROR")
        assert response.headers["Wechatpay-Signature"]
        assert call(sandbox, "GET", QUERY, authorization="").status_code == 503
    finally:
        set_available(sandbox.base_url, True)
    number = body["out_trade_no"]
    query = f"/v3/pay/transactions/out-trade-no/{number}?mchid={sandbox.merchant.mchid}"
    assert error_code(call(sandbox, "GET", query)) == (404, "ORDER_NOT_EXIST")
    assert call(sandbox, "POST", "/v3/pay/transactions/native", body).status_code == 200
