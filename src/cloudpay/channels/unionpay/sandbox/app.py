"""The sandbox as an ASGI app: the 全渠道 gateway endpoints plus a `/sandbox/*` control API.

Every gateway request is checked first, as the gateway does: version 5.1.0, signMethod 01,
a registered merId whose certificate serial is the `certId`, and a valid signature (else
respCode 11); a request that creates something must carry a fresh `txnTime` (else 39).
Every answer and notification is signed with the sandbox's UnionPay signing certificate,
which travels in `signPubKeyCert`. The control API answers JSON in CloudPay's error shape.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from cloudpay.channels.unionpay import transformers as tf
from cloudpay.channels.unionpay import wire
from cloudpay.channels.unionpay.bill import render_bill
from cloudpay.channels.unionpay.client import BACK_PATH, FRONT_PATH, QUERY_PATH
from cloudpay.channels.unionpay.sandbox.notifier import Delivery, Notifier
from cloudpay.channels.unionpay.sandbox.pki import Hierarchy
from cloudpay.channels.unionpay.sandbox.state import (
    CustomerRefused,
    GatewayRefusal,
    Merchant,
    Notice,
    SandboxState,
    check_txn_time,
)
from cloudpay.kernel.errors import CloudPayError, Conflict, InvalidRequest

FILE_PATH = "/gateway/api/fileTransfer.do"
ANSWER_MEDIA_TYPE = "text/plain; charset=UTF-8"
DEFAULT_FAULT_HOLD_S = 30.0  # a "timeout" fault holds the answer longer than any client waits
DUPLICATE_SPACING_S = 1.0  # sandbox seconds between deliberate copies of one notification
_ECHOED = ("txnType", "txnSubType", "bizType", "accessType", "merId", "orderId", "txnTime")


def _corrupted(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")


def _error(error: CloudPayError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.http_status)


class Gateway:
    """Routes and handlers; the business decisions are `SandboxState`'s."""

    def __init__(
        self, state: SandboxState, notifier: Notifier, pki: Hierarchy, *, fault_hold_s: float
    ) -> None:
        self.state, self.notifier, self.pki = state, notifier, pki
        self.fault_hold_s = fault_hold_s

    # ------------------------------------------------------------ signing, notices

    def sign(self, fields: dict[str, str]) -> dict[str, str]:
        signer = self.pki.unionpay_signer
        full = {
            "version": wire.VERSION,
            "encoding": wire.ENCODING,
            "signMethod": wire.SIGN_METHOD_RSA,
            **fields,
            "certId": signer.cert_id,
            wire.SIGNER_CERT_FIELD: signer.cert_pem,
        }
        return wire.sign_fields(full, signer.private_key_pem)

    def dispatch(self, notices: list[Notice]) -> None:
        for notice in notices:
            body = wire.encode_form(self.sign(notice.fields))
            for copy in range(1, notice.copies + 1):
                delivery = Delivery(notice.url, body, notice.order_id, copy)
                self.notifier.submit(delivery, notice.delay_s + (copy - 1) * DUPLICATE_SPACING_S)

    # ------------------------------------------------------------ gateway

    def authenticate(self, fields: dict[str, str]) -> Merchant:
        if fields.get("version") != wire.VERSION or fields.get("signMethod") != "01":
            raise GatewayRefusal("10", "报文格式错误[version/signMethod]")
        if str(fields.get("encoding", "")).upper() != wire.ENCODING:
            raise GatewayRefusal("10", "报文格式错误[encoding]")
        merchant = self.state.merchant(fields.get("merId", ""))
        if merchant is None:
            raise GatewayRefusal("31", "商户状态不正确[merId]")
        if fields.get("certId") != merchant.cert_id:
            raise GatewayRefusal(tf.RESP_BAD_SIGNATURE, "验证签名失败[certId]")
        if not wire.signature_valid(fields, merchant.public_key_pem):
            raise GatewayRefusal(tf.RESP_BAD_SIGNATURE, "验证签名失败")
        return merchant

    def back(self, merchant: Merchant, fields: dict[str, str]) -> dict[str, str]:
        kind = (fields.get("txnType"), fields.get("txnSubType"))
        check_txn_time(fields, self.state.clock.now())
        if kind == (tf.TXN_CONSUME, tf.SUB_QR_APPLY):
            return self.state.apply_qr(merchant, fields)
        if kind == (tf.TXN_CONSUME, tf.SUB_MICROPAY):
            answer, notices = self.state.micropay(merchant, fields)
        elif kind[0] == tf.TXN_REFUND:
            answer, notices = self.state.refund(merchant, fields)
        elif kind[0] == tf.TXN_VOID:
            answer, notices = self.state.void(merchant, fields)
        elif kind[0] == tf.TXN_REVERSAL:
            return self.state.reverse(merchant, fields)
        else:
            raise GatewayRefusal("10", "报文格式错误[txnType/txnSubType]")
        self.dispatch(notices)
        return answer

    def query(self, merchant: Merchant, fields: dict[str, str]) -> dict[str, str]:
        if fields.get("txnType") != tf.TXN_QUERY:
            raise GatewayRefusal("10", "报文格式错误[txnType]")
        return self.state.query(merchant, fields)

    def file(self, merchant: Merchant, fields: dict[str, str]) -> dict[str, str]:
        check_txn_time(fields, self.state.clock.now())
        settle_date = fields.get("settleDate", "")
        if fields.get("txnType") != tf.TXN_FILE or fields.get("fileType") != "00":
            raise GatewayRefusal("10", "报文格式错误[txnType/fileType]")
        if len(settle_date) != 4 or not settle_date.isdigit():
            raise GatewayRefusal("10", "报文格式错误[settleDate]")
        day = self.state.settle_day(settle_date)
        lines = self.state.bill_lines(merchant.mer_id, day)
        if not lines:
            raise GatewayRefusal("98", "文件不存在")
        archive = render_bill(lines, settle_day=day, mer_id=merchant.mer_id)
        return {
            "txnType": tf.TXN_FILE,
            "txnSubType": "01",
            "bizType": "000000",
            "accessType": fields.get("accessType", "0"),
            "merId": merchant.mer_id,
            "txnTime": fields["txnTime"],
            "settleDate": settle_date,
            "fileType": "00",
            "fileName": f"{merchant.mer_id}_{day:%Y%m%d}.zip",
            "fileContent": base64.b64encode(zlib.compress(archive)).decode("ascii"),
            "respCode": "00",
            "respMsg": "成功[0000000]",
        }

    def answer(
        self, handler: Callable[[Merchant, dict[str, str]], dict[str, str]], raw: bytes
    ) -> dict[str, str]:
        try:
            fields = wire.decode_form(raw)
        except wire.WireFormatError:
            return {"respCode": "10", "respMsg": "报文格式错误"}
        try:
            return handler(self.authenticate(fields), fields)
        except GatewayRefusal as refusal:
            echoed = {name: fields[name] for name in _ECHOED if name in fields}
            return {**echoed, "respCode": refusal.code, "respMsg": refusal.message}

    def api(
        self, handler: Callable[[Merchant, dict[str, str]], dict[str, str]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            if not self.state.available:
                return Response("service unavailable", status_code=503)
            fault = self.state.take_fault()
            if fault == "server_error":  # refused before anything is done
                return Response("internal server error", status_code=500)
            signed = self.sign(self.answer(handler, raw))
            if fault == "bad_signature":
                signed[wire.SIGNATURE_FIELD] = _corrupted(signed[wire.SIGNATURE_FIELD])
            if fault == "timeout":  # done, but the answer never arrives in time
                await asyncio.sleep(self.fault_hold_s)
            return Response(wire.encode_answer(signed), media_type=ANSWER_MEDIA_TYPE)

        return endpoint

    async def front(self, request: Request) -> Response:
        """The payer's browser posts the merchant's signed form: the cashier page opens."""
        raw = await request.body()
        if not self.state.available:
            return Response("service unavailable", status_code=503)
        try:
            fields = wire.decode_form(raw)
            merchant = self.authenticate(fields)
            if (fields.get("txnType"), fields.get("bizType")) != (tf.TXN_CONSUME, tf.BIZ_WAP):
                raise GatewayRefusal("10", "报文格式错误[txnType/bizType]")
            check_txn_time(fields, self.state.clock.now())
            txn = self.state.front_submit(merchant, fields)
        except wire.WireFormatError:
            return HTMLResponse("<h1>报文格式错误</h1>", status_code=400)
        except GatewayRefusal as refusal:
            page = f"<h1>{html.escape(refusal.code)} {html.escape(refusal.message)}</h1>"
            return HTMLResponse(page, status_code=400)
        amount = f"{txn.amount_fen // 100}.{txn.amount_fen % 100:02d}"
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>银联在线支付 (sandbox)</title>"
            f"<h1>银联在线支付</h1><p>订单 {html.escape(txn.order_id)}</p>"
            f"<p>金额 ¥{amount}</p><p>POST /sandbox/customer/pay to pay.</p>"
        )

    # ------------------------------------------------------------ control API

    async def control_pay(self, request: Request) -> Response:
        try:
            body = await _json(request)
            order_id = tf.order_number(str(body["order_id"]))
            notices = self.state.customer_pay(
                order_id,
                str(body.get("outcome", "success")),
                duplicate_notifications=int(body.get("duplicate_notifications", 0)),
            )
        except CustomerRefused as refused:
            return _error(Conflict(str(refused), code="customer_refused"))
        except (ValueError, KeyError, TypeError) as error:
            return _error(InvalidRequest(f"bad request: {error}", code="bad_request"))
        self.dispatch(notices)
        return JSONResponse({"order_id": order_id, "notifications": len(notices)})

    async def control_auth_code(self, request: Request) -> Response:
        try:
            body = await _json(request)
            self.state.register_auth_code(str(body["auth_code"]), str(body["outcome"]))
        except (ValueError, KeyError, TypeError) as error:
            return _error(InvalidRequest(f"bad request: {error}", code="bad_request"))
        return JSONResponse({"ok": True})

    async def control_settle_auth_code(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ("confirm", "abandon"):
            return _error(InvalidRequest("action is confirm or abandon", code="bad_request"))
        try:
            notices = self.state.settle_auth_code(
                request.path_params["code"], confirm=action == "confirm"
            )
        except CustomerRefused as refused:
            return _error(Conflict(str(refused), code="customer_refused"))
        self.dispatch(notices)
        return JSONResponse({"ok": True})

    async def control_faults(self, request: Request) -> Response:
        try:
            body = await _json(request)
            self.state.inject_fault(str(body["kind"]), int(body.get("count", 1)))
        except (ValueError, KeyError, TypeError) as error:
            return _error(InvalidRequest(f"bad request: {error}", code="bad_request"))
        return JSONResponse({"ok": True})

    async def control_availability(self, request: Request) -> Response:
        try:
            available = (await _json(request))["available"]
            if not isinstance(available, bool):
                raise TypeError("available must be true or false")
        except (ValueError, KeyError, TypeError) as error:
            return _error(InvalidRequest(f"bad request: {error}", code="bad_request"))
        self.state.available = available
        return JSONResponse({"available": available})


async def _json(request: Request) -> dict[str, Any]:
    body = json.loads(await request.body())
    if not isinstance(body, dict):
        raise TypeError("the body must be a JSON object")
    return body


def build_app(gateway: Gateway) -> Starlette:
    return Starlette(
        routes=[
            Route(BACK_PATH, gateway.api(gateway.back), methods=["POST"]),
            Route(QUERY_PATH, gateway.api(gateway.query), methods=["POST"]),
            Route(FILE_PATH, gateway.api(gateway.file), methods=["POST"]),
            Route(FRONT_PATH, gateway.front, methods=["POST"]),
            Route("/sandbox/customer/pay", gateway.control_pay, methods=["POST"]),
            Route("/sandbox/auth_codes", gateway.control_auth_code, methods=["POST"]),
            Route(
                "/sandbox/auth_codes/{code}/{action}",
                gateway.control_settle_auth_code,
                methods=["POST"],
            ),
            Route("/sandbox/faults", gateway.control_faults, methods=["POST"]),
            Route("/sandbox/availability", gateway.control_availability, methods=["POST"]),
        ]
    )
