"""The sandbox as an ASGI app: WeChat Pay v3 endpoints plus a `/sandbox/*` control API.

Every `/v3/*` request is authenticated first, as WeChat does: the `Authorization` header must
be `WECHATPAY2-SHA256-RSA2048` with all five fields, name a registered merchant and its
certificate serial, carry a timestamp within 5 minutes, and sign the exact method, path, query
and body; otherwise 401 SIGN_ERROR (400 MCH_NOT_EXISTS for an unknown mchid). Answers — errors
too — are signed with the platform key (`Wechatpay-*` headers); bill files are not, their SHA1
travels in the signed bill answer. Error bodies are WeChat's `{"code", "message", "detail"}`.
While the sandbox is switched unavailable every `/v3/*` call answers 503 SYSTEM_ERROR and does
nothing. The OAuth pages (`/connect/…`, `/sns/…`) live on other WeChat hosts in production.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cloudpay.channels.wechat import wire
from cloudpay.channels.wechat.bill import TradeBillRow, render_trade_bill
from cloudpay.channels.wechat.sandbox import payloads
from cloudpay.channels.wechat.sandbox.core import SandboxCore
from cloudpay.channels.wechat.sandbox.state import (
    BillTamper,
    CustomerRefused,
    Merchant,
    Order,
    SandboxState,
    WeChatError,
)
from cloudpay.kernel.business_time import SHANGHAI
from cloudpay.kernel.crypto import rsa_verify

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
DEFAULT_FAULT_HOLD_S = 30.0  # a "timeout" fault holds the answer longer than any client waits
UNAVAILABLE_BODY = {"code": "SYSTEM_ERROR", "message": "系统繁忙，服务不可用，请稍后重试"}
USERPAYING_BODY = {"code": "USERPAYING", "message": "需要用户输入支付密码"}

Answer = tuple[int, dict[str, Any] | None]


@dataclass(frozen=True)
class Call:
    request: Request
    merchant: Merchant
    raw: bytes

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)


def _target(request: Request) -> str:
    """The request's path and query exactly as sent: what the merchant signed."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    query: bytes = request.scope.get("query_string", b"")
    return (raw_path + (b"?" + query if query else b"")).decode("latin-1")


def _sign_error(message: str) -> WeChatError:
    return WeChatError(401, "SIGN_ERROR", message)


def _corrupted(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")


class SandboxApi:
    """Routes and handlers; all business decisions are `SandboxState`'s."""

    def __init__(self, core: SandboxCore, *, fault_hold_s: float = DEFAULT_FAULT_HOLD_S) -> None:
        self.core, self.state, self.fault_hold_s = core, core.state, fault_hold_s

    # ------------------------------------------------------------ plumbing

    def authenticate(self, request: Request, raw: bytes) -> Merchant:
        header = request.headers.get("authorization")
        if not header:
            raise _sign_error("缺少Authorization请求头")
        try:
            auth = wire.parse_authorization(header)
        except wire.WireFormatError as error:
            raise _sign_error(f"Authorization格式错误: {error}") from None
        merchant = self.state.merchant(auth.mchid)
        if merchant is None:
            raise WeChatError(400, "MCH_NOT_EXISTS", "商户号不存在")
        if auth.serial_no.upper() != merchant.serial_no.upper():
            raise _sign_error("商户证书序列号有误")
        if not auth.timestamp.isdigit():
            raise _sign_error("timestamp格式错误")
        if abs(self.core.now_s() - int(auth.timestamp)) > wire.MAX_CLOCK_SKEW_S:
            raise _sign_error("请求时间戳与当前时间相差超过5分钟")
        message = wire.request_message(
            request.method, _target(request), auth.timestamp, auth.nonce_str, raw
        )
        if not rsa_verify(merchant.public_key_pem, message, auth.signature):
            raise _sign_error("错误的签名，验签失败")
        return merchant

    def signed(self, status: int, payload: dict[str, Any] | None, fault: str | None) -> Response:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        headers = {**self.core.signed_headers(body), "Request-ID": str(uuid.uuid4())}
        if fault == "bad_signature":
            headers[wire.HEADER_SIGNATURE] = _corrupted(headers[wire.HEADER_SIGNATURE])
        if fault == "tampered_body" and payload is not None:
            body = json.dumps({**payload, "tampered": True}, ensure_ascii=False).encode()
        media_type = JSON_MEDIA_TYPE if body else None
        return Response(body, status_code=status, headers=headers, media_type=media_type)

    def api(self, handler: Callable[[Call], Answer]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            if not self.state.available:
                return self.signed(503, UNAVAILABLE_BODY, None)
            fault = self.state.take_fault()
            if fault == "server_error":  # refused before anything is done
                return self.signed(500, {"code": "SYSTEM_ERROR", "message": "系统错误"}, None)
            try:
                status, payload = handler(Call(request, self.authenticate(request, raw), raw))
            except WeChatError as error:
                status, payload = error.status, error.body()
            response = self.signed(status, payload, fault)
            if fault == "timeout":  # done, but the answer never arrives in time
                await asyncio.sleep(self.fault_hold_s)
            return response

        return endpoint

    def _mchid_query(self, call: Call, partner: bool) -> str | None:
        """Check the caller named in the query string; the partner API's sub_mchid."""
        name = "sp_mchid" if partner else "mchid"
        if call.query(name) != call.merchant.mchid:
            raise payloads.param_error(f"{name}", "query parameter must be the caller's mchid")
        if not partner:
            return None
        sub_mchid = call.query("sub_mchid")
        if sub_mchid not in call.merchant.sub_mchids:
            raise WeChatError(403, "NO_AUTH", "服务商与特约商户未建立受理关系")
        return sub_mchid

    # ------------------------------------------------------------ payments

    def create(self, trade_type: str, *, partner: bool) -> Callable[[Call], Answer]:
        def handler(call: Call) -> Answer:
            command = payloads.parse_create(
                call.merchant, call.raw, trade_type=trade_type, partner=partner
            )
            order = self.state.create_order(call.merchant, command)
            if trade_type == "NATIVE":
                return 200, {"code_url": order.code_url}
            return 200, {"prepay_id": order.prepay_id}

        return handler

    def query(self, *, partner: bool) -> Callable[[Call], Answer]:
        def handler(call: Call) -> Answer:
            sub_mchid = self._mchid_query(call, partner)
            with self.state.lock:
                order = self.state.find_order(call.merchant, sub_mchid, call.path("out_trade_no"))
                return 200, payloads.transaction_view(order)

        return handler

    def query_by_transaction_id(self, call: Call) -> Answer:
        self._mchid_query(call, partner=False)
        with self.state.lock:
            order = self.state.find_by_transaction_id(call.merchant, call.path("transaction_id"))
            return 200, payloads.transaction_view(order)

    def close(self, *, partner: bool) -> Callable[[Call], Answer]:
        def handler(call: Call) -> Answer:
            sub_mchid = payloads.parse_close(call.merchant, call.raw, partner=partner)
            self.state.close_order(call.merchant, sub_mchid, call.path("out_trade_no"))
            return 204, None

        return handler

    def codepay(self, *, partner: bool) -> Callable[[Call], Answer]:
        def handler(call: Call) -> Answer:
            command = payloads.parse_codepay(call.merchant, call.raw, partner=partner)
            answer = self.core.micropay.pay(call.merchant, command)
            self.core.dispatch(answer.notices)
            if answer.pending:  # 202: accepted, the payer is entering the password
                return 202, dict(USERPAYING_BODY)
            with self.state.lock:
                return 200, payloads.transaction_view(answer.order)

        return handler

    def reverse(self, *, partner: bool) -> Callable[[Call], Answer]:
        def handler(call: Call) -> Answer:
            sub_mchid = payloads.parse_reverse(call.merchant, call.raw, partner=partner)
            order = self.core.micropay.reverse(call.merchant, sub_mchid, call.path("out_trade_no"))
            with self.state.lock:
                return 200, payloads.reverse_view(order)

        return handler

    # ------------------------------------------------------------ refunds

    def refund(self, call: Call) -> Answer:
        command = payloads.parse_refund(call.merchant, call.raw)
        refund, notices = self.state.refund(call.merchant, command)
        self.core.dispatch(notices)
        with self.state.lock:
            return 200, payloads.refund_view(refund, self.state.clock.now())

    def query_refund(self, call: Call) -> Answer:
        sub_mchid = call.query("sub_mchid")
        with self.state.lock:
            refund = self.state.find_refund(call.merchant, sub_mchid, call.path("out_refund_no"))
            return 200, payloads.refund_view(refund, self.state.clock.now())

    # ------------------------------------------------------------ bills

    def trade_bill(self, call: Call) -> Answer:
        today = self.state.clock.now().astimezone(SHANGHAI).date()
        bill_date = payloads.parse_bill_date(call.query("bill_date"), today)
        if call.query("bill_type") not in (None, "ALL"):
            raise payloads.param_error("bill_type", "the sandbox produces ALL bills only")
        tar_type = call.query("tar_type")
        if tar_type not in (None, "GZIP"):
            raise payloads.param_error("tar_type", "must be GZIP or absent")
        rows = day_bill_rows(self.state, call.merchant, call.query("sub_mchid"), bill_date)
        if not rows:
            raise WeChatError(400, "NO_STATEMENT_EXIST", "当日无交易，账单不存在")
        plain = render_trade_bill(rows)
        served = gzip.compress(plain, mtime=0) if tar_type == "GZIP" else plain
        token = self.state.keep_bill(call.merchant.mchid, served)
        base = str(call.request.base_url).rstrip("/")
        return 200, {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(plain).hexdigest(),  # noqa: S324 (WeChat's choice)
            "download_url": f"{base}/v3/billdownload/file?token={token}",
        }

    async def download_bill(self, request: Request) -> Response:
        raw = await request.body()
        if not self.state.available:
            return self.signed(503, UNAVAILABLE_BODY, None)
        try:
            merchant = self.authenticate(request, raw)
            data = self.state.bill(merchant.mchid, request.query_params.get("token", ""))
        except WeChatError as error:
            return self.signed(error.status, error.body(), None)
        return Response(data, media_type="application/octet-stream")

    # ------------------------------------------------------------ control API (unsigned)

    async def control_pay(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            result = self.core.customer_pay(
                str(body["out_trade_no"]),
                str(body.get("outcome", "success")),
                mchid=body.get("mchid"),
                notify_delay_s=float(body.get("notify_delay_s", 0.0)),
                duplicate_notifications=int(body.get("duplicate_notifications", 0)),
            )
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": f"bad request: {error}"}, status_code=400)
        except CustomerRefused as refusal:
            return JSONResponse({"error": str(refusal)}, status_code=409)
        return JSONResponse(result)

    async def control_faults(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            self.state.inject_fault(str(body["kind"]), int(body.get("count", 1)))
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"ok": True})

    async def control_availability(self, request: Request) -> Response:
        try:
            available = json.loads(await request.body())["available"]
            if not isinstance(available, bool):
                raise TypeError("available must be true or false")
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": f"bad request: {error}"}, status_code=400)
        self.state.set_available(available)
        return JSONResponse({"available": available})

    async def control_expect_micropay(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            self.core.micropay.expect(str(body["auth_code"]), str(body["outcome"]))
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": f"bad request: {error}"}, status_code=400)
        return JSONResponse({"ok": True})

    async def control_notifications(self, request: Request) -> Response:
        attempts = self.core.notifier.attempts(request.query_params.get("out_trade_no"))
        return JSONResponse(
            [
                {
                    "notification_id": a.notification_id,
                    "event_type": a.event_type,
                    "out_trade_no": a.out_trade_no,
                    "out_refund_no": a.out_refund_no,
                    "copy": a.copy,
                    "attempt": a.attempt,
                    "at": a.at.isoformat(),
                    "status_code": a.status_code,
                    "error": a.error,
                }
                for a in attempts
            ]
        )

    async def control_orders(self, request: Request) -> Response:
        with self.state.lock:
            orders = self.state.orders_snapshot(request.query_params.get("out_trade_no"))
            views = [payloads.transaction_view(order) for order in orders]
        return JSONResponse(views)

    # ------------------------------------------------------------ routes

    def routes(self) -> list[Route]:
        direct, partner = "/v3/pay/transactions", "/v3/pay/partner/transactions"
        by_number = "/out-trade-no/{out_trade_no}"
        api = self.api
        return [
            Route(f"{direct}/native", api(self.create("NATIVE", partner=False)), methods=["POST"]),
            Route(f"{direct}/jsapi", api(self.create("JSAPI", partner=False)), methods=["POST"]),
            Route(f"{partner}/native", api(self.create("NATIVE", partner=True)), methods=["POST"]),
            Route(f"{partner}/jsapi", api(self.create("JSAPI", partner=True)), methods=["POST"]),
            Route(f"{direct}/codepay", api(self.codepay(partner=False)), methods=["POST"]),
            Route(f"{partner}/codepay", api(self.codepay(partner=True)), methods=["POST"]),
            Route(f"{direct}{by_number}", api(self.query(partner=False)), methods=["GET"]),
            Route(f"{partner}{by_number}", api(self.query(partner=True)), methods=["GET"]),
            Route(f"{direct}/id/{{transaction_id}}", api(self.query_by_transaction_id)),
            Route(f"{direct}{by_number}/close", api(self.close(partner=False)), methods=["POST"]),
            Route(f"{partner}{by_number}/close", api(self.close(partner=True)), methods=["POST"]),
            Route(
                f"{direct}{by_number}/reverse", api(self.reverse(partner=False)), methods=["POST"]
            ),
            Route(
                f"{partner}{by_number}/reverse", api(self.reverse(partner=True)), methods=["POST"]
            ),
            Route("/v3/refund/domestic/refunds", api(self.refund), methods=["POST"]),
            Route("/v3/refund/domestic/refunds/{out_refund_no}", api(self.query_refund)),
            Route("/v3/bill/tradebill", api(self.trade_bill), methods=["GET"]),
            Route("/v3/billdownload/file", self.download_bill, methods=["GET"]),
            Route("/sandbox/customer/pay", self.control_pay, methods=["POST"]),
            Route("/sandbox/faults", self.control_faults, methods=["POST"]),
            Route("/sandbox/notifications", self.control_notifications, methods=["GET"]),
            Route("/sandbox/orders", self.control_orders, methods=["GET"]),
            Route("/sandbox/availability", self.control_availability, methods=["POST"]),
            Route("/sandbox/micropay/expect", self.control_expect_micropay, methods=["POST"]),
            Route("/connect/oauth2/authorize", self.core.oauth.authorize, methods=["GET"]),
            Route("/sns/oauth2/access_token", self.core.oauth.access_token, methods=["GET"]),
        ]


def build_app(core: SandboxCore, *, fault_hold_s: float = DEFAULT_FAULT_HOLD_S) -> Starlette:
    return Starlette(routes=SandboxApi(core, fault_hold_s=fault_hold_s).routes())


def day_bill_rows(
    state: SandboxState, merchant: Merchant, sub_mchid: str | None, bill_date: date
) -> list[TradeBillRow]:
    """The merchant's trade bill rows of `bill_date`, as served (test tampering included)."""
    with state.lock:
        paid, refunds, revoked = state.day_activity(merchant, sub_mchid, bill_date)
        now = state.clock.now()
        rate_bp = state.fee_rate_bp
        rows = [
            r for o in paid for r in _payment_rows(o, state.bill_tamper(o.out_trade_no), rate_bp)
        ]
        rows += [payloads.refund_row(r, now, rate_bp) for r in refunds]
        rows += [payloads.revoked_row(o, rate_bp) for o in revoked]
    return sorted(rows, key=lambda row: row.traded_at)


def _payment_rows(order: Order, tamper: BillTamper | None, rate_bp: int) -> list[TradeBillRow]:
    """The order's bill row, misreported as a test asked (`SandboxState.tamper_bill`)."""
    row = payloads.payment_row(order, rate_bp)
    if tamper is None:
        return [row]
    amount = row.order_total_fen + tamper.amount_delta_fen
    row = dataclasses.replace(
        row, order_total_fen=amount, settlement_total_fen=amount,
        fee_yuan=row.fee_yuan + Decimal(tamper.fee_delta_fen) / 100,
        traded_at=tamper.traded_at or row.traded_at,
    )  # fmt: skip
    return [row, row] if tamper.duplicate else [row]
