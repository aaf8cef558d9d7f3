"""The sandbox bank as an ASGI app: the bank's open API under `/api/v1` plus an unsigned
`/sandbox/*` control API for tests, the demo and the CLI.

Every `/api/v1` request is authenticated as the bank does: a registered `Bank-Client-Id`, the
key serial registered for it, a timestamp within 5 minutes, a signature over the exact method,
path, query and body, and a nonce never seen before in the window (401 otherwise). Every
answer, errors included, is signed with the bank key and bound to the request's nonce. Error
bodies are `{"ret_code", "ret_msg"}`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cloudpay.channels.bank import transformers as tf
from cloudpay.channels.bank import wire
from cloudpay.channels.bank.protocol import AccountClass, AccountStatus, OwnerKind
from cloudpay.channels.bank.sandbox.core import (
    BankCore,
    account_view,
    balance_view,
    transfer_view,
)
from cloudpay.channels.bank.sandbox.realname import RealNameRefused
from cloudpay.channels.bank.sandbox.state import BankRefusal, OpenCommand, TransferCommand
from cloudpay.channels.bank.statement import render_statement
from cloudpay.kernel.crypto import rsa_verify

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
DEFAULT_FAULT_HOLD_S = 30.0  # a "timeout" fault holds the answer longer than any client waits
MAX_BODY_BYTES = 64 * 1024

Payload = dict[str, Any] | bytes
Handler = Callable[[Request, dict[str, Any]], tuple[int, Payload]]


def _target(request: Request) -> str:
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    query: bytes = request.scope.get("query_string", b"")
    return (raw_path + (b"?" + query if query else b"")).decode("latin-1")


def _unauthorized(code: str, message: str) -> BankRefusal:
    return BankRefusal(401, code, message)


def _bad(field: str, message: str) -> BankRefusal:
    return BankRefusal(400, "invalid_request", f"{field}: {message}")


def _text(body: dict[str, Any], name: str, *, max_length: int = 64, optional: bool = False) -> str:
    value = body.get(name)
    if value is None and optional:
        return ""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise _bad(name, f"must be a string of 1..{max_length} characters")
    return value


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise _bad("body", "not JSON") from None
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    return body


def _corrupted(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")


class BankApi:
    def __init__(self, core: BankCore, *, fault_hold_s: float = DEFAULT_FAULT_HOLD_S) -> None:
        self.core, self.state, self.fault_hold_s = core, core.state, fault_hold_s

    # ------------------------------------------------------------ plumbing

    def authenticate(self, request: Request, raw: bytes) -> None:
        headers = request.headers
        client = self.core.clients.get(headers.get(wire.HEADER_CLIENT_ID, ""))
        if client is None:
            raise _unauthorized("client_unknown", "未登记的接入方")
        timestamp, nonce = headers.get(wire.HEADER_TIMESTAMP), headers.get(wire.HEADER_NONCE, "")
        signature = headers.get(wire.HEADER_SIGNATURE, "")
        if headers.get(wire.HEADER_SERIAL) != client.serial_no:
            raise _unauthorized("serial_unknown", "接入方证书序列号有误")
        if not wire.fresh(timestamp, self.core.now_s()):
            raise _unauthorized("timestamp_expired", "请求时间戳与当前时间相差超过5分钟")
        message = wire.request_message(request.method, _target(request), str(timestamp), nonce, raw)
        if not (nonce and signature and rsa_verify(client.public_key_pem, message, signature)):
            raise _unauthorized("signature_invalid", "验签失败")
        # Recorded only once the signature holds: nobody can burn a nonce they did not sign.
        if not self.core.nonces.first_use(nonce, self.core.now_s()):
            raise _unauthorized("nonce_replayed", "重复的请求随机串（重放）")

    def signed(
        self, status: int, payload: Payload, request_nonce: str, fault: str | None
    ) -> Response:
        is_file = isinstance(payload, bytes)
        body = (
            payload
            if isinstance(payload, bytes)
            else json.dumps(payload, ensure_ascii=False).encode()
        )
        headers = self.core.sign_answer(status, request_nonce, body)
        if fault == "bad_signature":
            headers[wire.HEADER_SIGNATURE] = _corrupted(headers[wire.HEADER_SIGNATURE])
        media_type = "text/csv; charset=utf-8" if is_file else JSON_MEDIA_TYPE
        return Response(body, status_code=status, headers=headers, media_type=media_type)

    def api(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            request_nonce = request.headers.get(wire.HEADER_NONCE, "")
            if not self.core.available:  # down: refuse before reading anything
                body = {"ret_code": "service_unavailable", "ret_msg": "系统维护中"}
                return self.signed(503, body, request_nonce, None)
            fault = self.state.take_fault()
            if fault == "server_error":  # refused before anything is done
                body = {"ret_code": "system_error", "ret_msg": "系统错误"}
                return self.signed(500, body, request_nonce, None)
            try:
                if len(raw) > MAX_BODY_BYTES:
                    raise BankRefusal(413, "body_too_large", "请求报文过大")
                self.authenticate(request, raw)
                status, payload = handler(request, _json_body(raw) if raw else {})
            except BankRefusal as refusal:
                status, payload = (
                    refusal.status,
                    {"ret_code": refusal.code, "ret_msg": refusal.message},
                )
            except RealNameRefused as refusal:
                status, payload = 422, {"ret_code": refusal.code, "ret_msg": refusal.message}
            response = self.signed(status, payload, request_nonce, fault)
            if fault == "timeout":  # done, but the answer never arrives in time
                await asyncio.sleep(self.fault_hold_s)
            return response

        return endpoint

    def _now_iso(self) -> str:
        return tf.format_time(self.state.clock.now())

    # ------------------------------------------------------------ the bank's API

    def open_account(self, request: Request, body: dict[str, Any]) -> tuple[int, Payload]:
        classes = {wire_class: ours for ours, wire_class in tf.CLASS_TO_WIRE.items()}
        owners = {kind.value.upper(): kind for kind in OwnerKind}
        if body.get("acct_class") not in classes:
            raise _bad("acct_class", "must be 2 or 3")
        if body.get("owner_type") not in owners or body.get("cert_type") != "01":
            raise _bad("owner_type/cert_type", "MERCHANT or CITIZEN with cert_type 01")
        command = OpenCommand(
            request_id=_text(body, "req_id"),
            account_class=AccountClass(classes[body["acct_class"]]),
            owner_kind=owners[body["owner_type"]],
            owner_reference=_text(body, "owner_ref"),
            name=_text(body, "cust_name"),
            id_number=_text(body, "cert_no", max_length=32),
            phone=_text(body, "mobile", max_length=32),
            bound_card=_text(body, "bind_card_no", max_length=32),
        )
        account = self.state.open_account(command)
        with self.state.lock:
            return 200, account_view(account)

    def account(self, request: Request, body: dict[str, Any]) -> tuple[int, Payload]:
        with self.state.lock:
            return 200, account_view(self.state.account(request.path_params["acct_no"]))

    def balance(self, request: Request, body: dict[str, Any]) -> tuple[int, Payload]:
        with self.state.lock:
            account = self.state.account(request.path_params["acct_no"])
            return 200, balance_view(account, self._now_iso())

    def transfer(self, request: Request, body: dict[str, Any]) -> tuple[int, Payload]:
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < 10**15:
            raise _bad("amount", "must be a positive integer of fen")
        memo = body.get("memo") or ""
        payee_name = body.get("payee_name")
        if not isinstance(memo, str) or len(memo) > 128:
            raise _bad("memo", "must be a string of at most 128 characters")
        if payee_name is not None and not isinstance(payee_name, str):
            raise _bad("payee_name", "must be a string")
        command = TransferCommand(
            transfer_id=_text(body, "req_id"),
            payer=_text(body, "payer_acct", max_length=32),
            payee=_text(body, "payee_acct", max_length=32),
            amount_fen=amount,
            currency=_text(body, "ccy", max_length=3),
            memo=memo,
            payee_name=payee_name,
        )
        transfer = self.core.transfer(command)
        with self.state.lock:
            return 200, transfer_view(transfer)

    def query_transfer(self, request: Request, body: dict[str, Any]) -> tuple[int, Payload]:
        with self.state.lock:
            return 200, transfer_view(self.state.find_transfer(request.path_params["req_id"]))

    def limits(self, request: Request, body: dict[str, Any]) -> tuple[int, Payload]:
        return 200, self.state.limits.as_dict()

    def statement(self, request: Request, body: dict[str, Any]) -> tuple[int, Payload]:
        account_no = request.query_params.get("acct_no", "")
        try:
            day = datetime.strptime(request.query_params.get("date", ""), "%Y%m%d").date()
        except ValueError:
            raise _bad("date", "must be YYYYMMDD") from None
        opening, lines = self.state.statement_lines(account_no, day)
        return 200, render_statement(
            bank_code=self.state.bank_code,
            account_no=account_no,
            statement_date=day,
            opening_balance_fen=opening,
            lines=lines,
        )

    # ------------------------------------------------------------ control API (unsigned)

    def control(
        self, action: Callable[[Request, dict[str, Any]], dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                raw = await request.body()
                body = json.loads(raw) if raw else {}
                if not isinstance(body, dict):
                    raise TypeError("body must be a JSON object")
                return JSONResponse(action(request, body))
            except BankRefusal as refusal:
                return JSONResponse(
                    {"error": refusal.message, "code": refusal.code}, refusal.status
                )
            except (ValueError, KeyError, TypeError) as error:
                return JSONResponse({"error": f"bad request: {error}"}, status_code=400)

        return endpoint

    def set_availability(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        available = body["available"]
        if not isinstance(available, bool):
            raise TypeError("available must be true or false")
        self.core.available = available
        return {"available": available}

    def inject_fault(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.state.inject_fault(str(body["kind"]), int(body.get("count", 1)))
        return {"ok": True}

    def set_account_status(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        self.state.set_status(request.path_params["acct_no"], AccountStatus(body["status"]))
        return {"ok": True}

    def settle_later(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        outcome = str(body.get("outcome", "succeeded"))
        self.state.settle_later(int(body.get("count", 1)), float(body.get("delay_s", 1.0)), outcome)
        return {"ok": True}

    def return_payout(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        reason = str(body.get("reason", "收款账户状态异常"))
        transfer = self.core.return_payout(request.path_params["req_id"], reason)
        with self.state.lock:
            return transfer_view(transfer)

    def external_credit(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        amount = body["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError("amount must be a positive integer of fen")
        transfer = self.core.credit_from_outside(
            str(body["acct_no"]), str(body["card_no"]), amount, body.get("req_id")
        )
        with self.state.lock:
            return transfer_view(transfer)

    def set_notify_url(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        url = body["url"]
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise ValueError("url must be http(s) or null")
        self.core.notify_url = url
        return {"url": url}

    async def notifications(self, request: Request) -> Response:
        attempts = self.core.notifier.attempts(request.query_params.get("req_id"))
        return JSONResponse(
            [
                {
                    "event_id": a.event_id,
                    "event_type": a.event_type,
                    "req_id": a.transfer_id,
                    "attempt": a.attempt,
                    "at": a.at.isoformat(),
                    "status_code": a.status_code,
                    "error": a.error,
                }
                for a in attempts
            ]
        )

    # ------------------------------------------------------------ routes

    def routes(self) -> list[Route]:
        api, control, accounts = self.api, self.control, tf.ACCOUNTS_PATH
        return [
            Route(accounts, api(self.open_account), methods=["POST"]),
            Route(f"{accounts}/{{acct_no}}", api(self.account), methods=["GET"]),
            Route(f"{accounts}/{{acct_no}}/balance", api(self.balance), methods=["GET"]),
            Route(tf.TRANSFERS_PATH, api(self.transfer), methods=["POST"]),
            Route(f"{tf.TRANSFERS_PATH}/{{req_id}}", api(self.query_transfer), methods=["GET"]),
            Route(tf.LIMITS_PATH, api(self.limits), methods=["GET"]),
            Route(tf.STATEMENTS_PATH, api(self.statement), methods=["GET"]),
            Route("/sandbox/availability", control(self.set_availability), methods=["POST"]),
            Route("/sandbox/faults", control(self.inject_fault), methods=["POST"]),
            Route(
                "/sandbox/accounts/{acct_no}/status",
                control(self.set_account_status),
                methods=["POST"],
            ),
            Route("/sandbox/settle-later", control(self.settle_later), methods=["POST"]),
            Route(
                "/sandbox/transfers/{req_id}/return", control(self.return_payout), methods=["POST"]
            ),
            Route("/sandbox/credits", control(self.external_credit), methods=["POST"]),
            Route("/sandbox/notify-url", control(self.set_notify_url), methods=["POST"]),
            Route("/sandbox/notifications", self.notifications, methods=["GET"]),
        ]


def build_app(core: BankCore, *, fault_hold_s: float = DEFAULT_FAULT_HOLD_S) -> Starlette:
    return Starlette(routes=BankApi(core, fault_hold_s=fault_hold_s).routes())
