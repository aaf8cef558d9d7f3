"""Bad input on the payments routes, over HTTP, signed with the SDK (or attacked by hand).

Every refusal must be a 4xx in the one error shape, signed by the platform (the SDK verifies
the signature before it reads the error; unsigned requests are checked by hand), and must
write nothing: the payment, ledger, outbox and idempotency tables keep their row counts.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cloudpay.kernel.crypto import generate_rsa_key_pair, rsa_sign
from cloudpay.sdk import CloudPayAPIError, CloudPayClient
from cloudpay.sdk.protocol import (
    RSA_SCHEME,
    format_authorization,
    request_signing_message,
    verify_platform_signature,
)
from tests.e2e.api_helpers import ANY_PARAM, assert_error
from tests.e2e.gateway import PAYMENT_TABLES, Gateway, RecordingTransport

VALID_ORDER: dict[str, Any] = {
    "out_trade_no": "B-1", "amount": 100, "subject": "煎饼", "method": "wechat_native",
}  # fmt: skip


def _refused(
    gateway: Gateway, method: str, path: str, body: Any, status: int, code: str,
    param: object = ANY_PARAM, *, as_app: tuple[CloudPayClient, RecordingTransport] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Send through the SDK (signed, response verified) as the merchant or `as_app`; check
    the raw error and that nothing was written."""
    client, transport = as_app or (gateway.client, gateway.transport)
    before = gateway.row_counts()
    with pytest.raises(CloudPayAPIError) as raised:
        client.request(method, path, json=body)
    assert transport.last is not None
    error = assert_error(transport.last, status, code, param)
    assert (raised.value.status, raised.value.code) == (status, code)
    assert gateway.row_counts() == before, f"{method} {path} {body!r} wrote something"
    return error


def _in(seconds: float, gateway: Gateway) -> str:
    return datetime.fromtimestamp(gateway.clock.timestamp() + seconds, UTC).isoformat()


def _paid_order(gateway: Gateway, out_trade_no: str, amount: int = 1_000) -> dict[str, Any]:
    order = gateway.client.create_order(**{**VALID_ORDER, "out_trade_no": out_trade_no,
                                           "amount": amount})  # fmt: skip
    gateway.pay(order["id"], "success")
    paid: dict[str, Any] = gateway.wait_for_order(order["id"], "succeeded")
    return paid


def test_invalid_orders_are_refused_with_nothing_written(gateway: Gateway) -> None:
    """Each malformed create-order body gets a precise 4xx code and param, signed, and no row."""
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        ({"amount": 0}, 400, "amount_invalid", "amount"),
        ({"amount": -100}, 400, "amount_invalid", "amount"),
        ({"amount": 1_000_000_001}, 400, "amount_invalid", "amount"),
        ({"amount": 10**30}, 400, "amount_invalid", "amount"),
        ({"amount": 1.5}, 400, "parameter_invalid", "amount"),
        ({"amount": 100.0}, 400, "parameter_invalid", "amount"),
        ({"amount": "100"}, 400, "parameter_invalid", "amount"),
        ({"amount": True}, 400, "parameter_invalid", "amount"),
        ({"amount": None}, 400, "parameter_invalid", "amount"),
        ({"method": "paypal_qr"}, 400, "method_unknown", "method"),
        ({"method": "alipay_qr"}, 400, "method_not_enabled", "method"),
        ({"method": "micropay"}, 400, "parameter_missing", "auth_code"),
        (
            {"method": "micropay", "auth_code": "9912345678901234"},
            400,
            "payment_code_unknown",
            "auth_code",
        ),
        ({"method": "aggregated_qr", "wallet": "paypal"}, 400, "wallet_invalid", "wallet"),
        ({"method": "wechat_jsapi"}, 400, "parameter_missing", "payer_id"),
        ({"currency": "USD"}, 400, "currency_unsupported", "currency"),
        ({"currency": "cny"}, 400, "currency_unsupported", "currency"),
        ({"subject": "面" * 128}, 400, "parameter_invalid", "subject"),
        ({"subject": "   "}, 400, "parameter_invalid", "subject"),
        ({"out_trade_no": "订单1"}, 400, "parameter_invalid", "out_trade_no"),
        ({"out_trade_no": "a b"}, 400, "parameter_invalid", "out_trade_no"),
        ({"out_trade_no": "../x"}, 400, "parameter_invalid", "out_trade_no"),
        ({"out_trade_no": "x" * 33}, 400, "parameter_invalid", "out_trade_no"),
        ({"out_trade_no": ""}, 400, "parameter_invalid", "out_trade_no"),
        ({"expire_at": _in(-60, gateway)}, 400, "expire_at_out_of_range", "expire_at"),
        ({"expire_at": _in(30, gateway)}, 400, "expire_at_out_of_range", "expire_at"),
        ({"expire_at": _in(8 * 86_400, gateway)}, 400, "expire_at_out_of_range", "expire_at"),
        ({"expire_at": "2030-01-01T12:00:00"}, 400, "parameter_invalid", "expire_at"),
        ({"expire_at": "tomorrow"}, 400, "parameter_invalid", "expire_at"),
        ({"notify_url": "ftp://shop.example/hook"}, 400, "parameter_invalid", "notify_url"),
        ({"notify_url": "javascript:alert(1)"}, 400, "parameter_invalid", "notify_url"),
        ({"notify_url": "https://"}, 400, "parameter_invalid", "notify_url"),
        ({"metadata": {f"k{i}": "v" for i in range(21)}}, 400, "parameter_invalid", "metadata"),
        ({"metadata": {"note": "x" * 501}}, 400, "parameter_invalid", "metadata"),
        ({"metadata": {"k" * 41: "v"}}, 400, "parameter_invalid", "metadata"),
        ({"metadata": {"nested": {"a": 1}}}, 400, "parameter_invalid", "metadata.nested"),
        ({"payer_id": "o" * 129}, 400, "parameter_invalid", "payer_id"),
        ({"surprise": 1}, 400, "parameter_invalid", "surprise"),
    ]
    for change, status, code, param in cases:
        _refused(gateway, "POST", "/v1/orders", {**VALID_ORDER, **change}, status, code, param)
    for missing in ("out_trade_no", "amount", "subject", "method"):
        body = {k: v for k, v in VALID_ORDER.items() if k != missing}
        _refused(gateway, "POST", "/v1/orders", body, 400, "parameter_missing", missing)
    for not_an_object in ([VALID_ORDER], "order", 42):
        _refused(gateway, "POST", "/v1/orders", not_an_object, 400, "body_invalid", None)
    _refused(gateway, "POST", "/v1/orders", None, 400, "body_missing", None)
    assert gateway.client.list_orders()["data"] == []


def test_nul_in_text_is_bad_input_on_both_databases(gateway: Gateway) -> None:
    """A NUL character in a text field is refused as bad input, never a 500 or a row."""
    for change in ({"subject": "a\x00b"}, {"metadata": {"note": "a\x00"}},
                   {"metadata": {"k\x00": "v"}}, {"payer_id": "o\x00"}):  # fmt: skip
        _refused(gateway, "POST", "/v1/orders", {**VALID_ORDER, **change}, 400,
                 "parameter_invalid")  # fmt: skip
    refund = {"order_id": "ord_x", "out_refund_no": "RF-1", "amount": 1, "reason": "a\x00"}
    _refused(gateway, "POST", "/v1/refunds", refund, 400, "parameter_invalid", "reason")


def test_method_must_be_enabled_for_the_app(gateway: Gateway) -> None:
    """An app enabled for native QR payments only cannot take JSAPI orders."""
    native_only = gateway.onboard(methods=("wechat_native",))
    spy = RecordingTransport()
    with gateway.sdk(native_only, transport=spy) as client:
        jsapi = {**VALID_ORDER, "method": "wechat_jsapi", "payer_id": "o123"}
        _refused(gateway, "POST", "/v1/orders", jsapi, 400, "method_not_enabled", "method",
                 as_app=(client, spy))  # fmt: skip
        assert client.create_order(**VALID_ORDER)["status"] == "paying"


def test_refunds_beyond_paid_of_unpaid_and_malformed_are_refused(gateway: Gateway) -> None:
    """Refunds never exceed what was paid, need a paid order, and take well-formed input."""
    paid = _paid_order(gateway, "R-PAID", amount=1_000)
    unpaid = gateway.client.create_order(**{**VALID_ORDER, "out_trade_no": "R-OPEN"})
    refund = {"order_id": paid["id"], "out_refund_no": "RF-1", "amount": 400}
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        ({"amount": 1_001}, 400, "refund_exceeds_paid", "amount"),
        ({"amount": 0}, 400, "amount_invalid", "amount"),
        ({"amount": -1}, 400, "amount_invalid", "amount"),
        ({"amount": 1.5}, 400, "parameter_invalid", "amount"),
        ({"amount": "400"}, 400, "parameter_invalid", "amount"),
        ({"order_id": unpaid["id"]}, 409, "order_not_paid", "order_id"),
        ({"out_trade_no": "R-PAID"}, 400, "parameter_invalid", "order_id"),  # both given
        ({"order_id": None}, 400, "parameter_invalid", "order_id"),  # neither given
        ({"order_id": "ord_nope"}, 404, "order_not_found", "id"),
        ({"order_id": None, "out_trade_no": "NOPE"}, 404, "order_not_found", "out_trade_no"),
        ({"out_refund_no": "退款1"}, 400, "parameter_invalid", "out_refund_no"),
        ({"out_refund_no": "x" * 65}, 400, "parameter_invalid", "out_refund_no"),
        ({"reason": "r" * 81}, 400, "parameter_invalid", "reason"),
    ]
    for change, status, code, param in cases:
        _refused(gateway, "POST", "/v1/refunds", {**refund, **change}, status, code, param)
    first = gateway.client.create_refund(**refund)
    gateway.wait_for_refund(first["id"])
    _refused(gateway, "POST", "/v1/refunds", {**refund, "out_refund_no": "RF-2", "amount": 601},
             400, "refund_exceeds_paid", "amount")  # fmt: skip
    _refused(gateway, "POST", "/v1/refunds", {**refund, "amount": 401},
             409, "out_refund_no_used", "out_refund_no")  # fmt: skip
    assert gateway.client.get_order(paid["id"])["amount_refunded"] == 400
    gateway.assert_books_balance()


def test_closing_a_paid_order_is_refused(gateway: Gateway) -> None:
    """Only open orders close: a paid one answers 409 and stays paid."""
    paid = _paid_order(gateway, "C-PAID")
    _refused(gateway, "POST", f"/v1/orders/{paid['id']}/close", None, 409, "order_succeeded")
    assert gateway.client.get_order(paid["id"])["status"] == "succeeded"
    open_order = gateway.client.create_order(**{**VALID_ORDER, "out_trade_no": "C-OPEN"})
    closed = gateway.client.close_order(open_order["id"])
    assert closed["status"] == "closed"
    assert gateway.client.close_order(open_order["id"])["status"] == "closed"  # idempotent


def test_another_apps_objects_are_not_found_and_never_leak(gateway: Gateway) -> None:
    """Another app's order, refund and event ids answer exactly like ids that do not exist."""
    theirs = _paid_order(gateway, "THEIRS-1")
    refund = {"order_id": theirs["id"], "out_refund_no": "TR-1", "amount": 100}
    their_refund = gateway.client.create_refund(**refund)
    gateway.run_worker()
    their_event = gateway.client.list_events()["data"][0]
    unknown_id = "ord_00000000000000000000000000"
    spy = RecordingTransport()
    with gateway.sdk(gateway.onboard(), transport=spy) as intruder:
        for method, path, body in (
            ("GET", "/v1/orders/{id}", None),
            ("GET", "/v1/orders/{id}/refunds", None),
            ("POST", "/v1/orders/{id}/close", None),
            ("POST", "/v1/refunds", {**refund, "out_refund_no": "X1"}),
        ):
            stolen, unknown = (
                _refused(gateway, method, path.format(id=oid), _with_id(body, oid), 404,
                         "order_not_found", as_app=(intruder, spy))
                for oid in (theirs["id"], unknown_id)
            )  # fmt: skip
            assert stolen["message"].replace(theirs["id"], unknown_id) == unknown["message"]
            assert "THEIRS" not in json.dumps(stolen)
        for path, code in (
            ("/v1/orders?out_trade_no=THEIRS-1", "order_not_found"),
            (f"/v1/refunds/{their_refund['id']}", "refund_not_found"),
            (f"/v1/events/{their_event['id']}", "event_not_found"),
        ):
            _refused(gateway, "GET", path, None, 404, code, as_app=(intruder, spy))
        resend = f"/v1/events/{their_event['id']}/resend"
        _refused(gateway, "POST", resend, None, 404, "event_not_found", as_app=(intruder, spy))
        assert intruder.list_orders()["data"] == []
        assert intruder.list_events()["data"] == []
    assert gateway.client.get_order(theirs["id"])["amount_refunded"] == 100


def _with_id(body: dict[str, Any] | None, order_id: str) -> dict[str, Any] | None:
    return None if body is None else {**body, "order_id": order_id}


def test_bad_list_parameters_are_400(gateway: Gateway) -> None:
    """Pagination limits outside 1–100 or not a number are the caller's mistake."""
    for limit in (0, 101, "ten"):
        _refused(gateway, "GET", f"/v1/orders?limit={limit}", None, 400, "parameter_invalid",
                 "limit")  # fmt: skip


# ---------------------------------------------------------------- unsigned and forged requests


def _by_hand(
    gateway: Gateway, body: bytes, *, key: str | None = None, nonce: str | None = None,
    skew_s: int = 0, sent: bytes | None = None,
) -> tuple[httpx.Request, httpx.Response]:  # fmt: skip
    """POST /v1/orders signed by hand, so each part can be made wrong on purpose."""
    app = gateway.merchant
    timestamp = int(gateway.clock.timestamp()) + skew_s
    the_nonce = nonce or secrets.token_hex(16)
    message = request_signing_message("POST", b"/v1/orders", timestamp, the_nonce, body)
    authorization = format_authorization(
        RSA_SCHEME, app_id=app.app_id, nonce_str=the_nonce, timestamp=timestamp,
        serial_no=app.serial_no, signature=rsa_sign(key or app.private_key, message),
    )  # fmt: skip
    request = gateway.http.build_request(
        "POST", "/v1/orders", content=body if sent is None else sent,
        headers={"Authorization": authorization, "Content-Type": "application/json"},
    )  # fmt: skip
    return request, gateway.http.send(request)


def _platform_keys(gateway: Gateway) -> dict[str, str]:
    listing = gateway.http.get("/v1/platform/keys").json()["data"]
    return {key["serial_no"]: key["public_key"] for key in listing}


def _refused_unsigned(gateway: Gateway, response: httpx.Response, code: str) -> None:
    assert_error(response, 401, code)
    verify_platform_signature(response.headers, response.content, _platform_keys(gateway))


def test_unsigned_forged_and_replayed_order_requests_are_401_and_write_nothing(
    gateway: Gateway,
) -> None:
    """No signature, a wrong key, a tampered body, a stale timestamp or a replayed nonce:
    401 in the error shape, signed by the platform, and not a row written (nonces included)."""
    body = json.dumps({**VALID_ORDER, "out_trade_no": "A-1"}).encode()
    everything = (*PAYMENT_TABLES, "api_nonces")
    before = gateway.row_counts(everything)
    unsigned = gateway.http.post("/v1/orders", content=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    _refused_unsigned(gateway, unsigned, "signature_missing")
    garbage = gateway.http.post("/v1/orders", content=b"{not json",
                                headers={"Authorization": "Bearer nope"})  # fmt: skip
    _refused_unsigned(gateway, garbage, "signature_malformed")
    other_key = generate_rsa_key_pair().private_key_pem.reveal()
    _refused_unsigned(gateway, _by_hand(gateway, body, key=other_key)[1], "signature_invalid")
    tampered = body.replace(b'"amount": 100', b'"amount": 1')
    assert tampered != body
    _refused_unsigned(gateway, _by_hand(gateway, body, sent=tampered)[1], "signature_invalid")
    stale = _by_hand(gateway, body, skew_s=-301)[1]
    _refused_unsigned(gateway, stale, "timestamp_out_of_window")
    assert gateway.row_counts(everything) == before

    request, accepted = _by_hand(gateway, body)
    assert accepted.status_code == 201, accepted.text
    after_first = gateway.row_counts(everything)
    replayed = gateway.http.send(request)
    _refused_unsigned(gateway, replayed, "nonce_reused")
    again_new_body = _by_hand(gateway, body.replace(b"A-1", b"A-2"), nonce=_nonce_of(request))
    _refused_unsigned(gateway, again_new_body[1], "nonce_reused")
    assert gateway.row_counts(everything) == after_first
    assert [o["out_trade_no"] for o in gateway.client.list_orders()["data"]] == ["A-1"]


def _nonce_of(request: httpx.Request) -> str:
    header = request.headers["Authorization"]
    return header.split('nonce_str="', 1)[1].split('"', 1)[0]
