"""The sandbox as an ASGI app: Alipay's `/gateway.do`, the OAuth page, a `/sandbox/*` API.

`/gateway.do` takes GET (the SDKs, the payer's browser for wap.pay) and POST forms (our
adapter; system parameters may also sit in the query string). Each call is checked as Alipay
does: known `app_id` and `method`, `charset` utf-8, `sign_type` RSA2, `timestamp` Beijing time
within 30 minutes, then the RSA2 signature over the sorted parameters with the app's
registered public key; refusals are 40001/40002 answers. Answers are
`{"<method>_response": {...}, "sign": "..."}`, signed with the sandbox's Alipay key over the
exact `_response` text (https://opendocs.alipay.com/common/02mse7). Control endpoints answer
bad input with a 400/409 in CloudPay's error shape.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from cloudpay.channels.alipay import transformers as tf
from cloudpay.channels.alipay import wire
from cloudpay.channels.alipay.sandbox.core import SandboxCore
from cloudpay.channels.alipay.sandbox.grants import GrantRefused
from cloudpay.channels.alipay.sandbox.state import AlipayError, App, CustomerRefused, invalid
from cloudpay.kernel.errors import CloudPayError, Conflict, InvalidRequest

DEFAULT_FAULT_HOLD_S = 30.0  # a "timeout" fault holds the answer longer than any client waits
MAX_FORM_BYTES = 64 * 1024
Handler = Callable[[App, dict[str, str], dict[str, Any]], dict[str, Any]]


def _corrupted(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")


def _problem(error: CloudPayError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.http_status)


class SandboxApi:
    """Routes and handlers; the business decisions are `SandboxState`'s."""

    def __init__(self, core: SandboxCore, *, fault_hold_s: float = DEFAULT_FAULT_HOLD_S) -> None:
        self.core, self.state, self.fault_hold_s = core, core.state, fault_hold_s
        self.handlers: dict[str, Handler] = {
            tf.PRECREATE: self.precreate,
            tf.CREATE: self.create,
            tf.PAY: self.pay,
            tf.QUERY: lambda app, params, biz: self.state.query_view(self.state.trade(app, biz)),
            tf.CLOSE: self.with_notices(self.state.close),
            tf.CANCEL: self.with_notices(self.state.cancel),
            tf.REFUND: self.with_notices(self.state.refund),
            tf.REFUND_QUERY: lambda app, params, biz: self.state.refund_query(app, biz),
            tf.BILL_URL: self.bill_url,
            tf.OAUTH_TOKEN: self.oauth_token,
        }

    # ------------------------------------------------------------ gateway

    async def gateway(self, request: Request) -> Response:
        if not self.state.available:  # the switch: refuse before doing anything
            return PlainTextResponse("Service Unavailable", status_code=503)
        fault = self.state.take_fault()
        if fault == "server_error":
            return PlainTextResponse("Internal Server Error", status_code=500)
        params = await self._params(request)
        method = params.get("method", "")
        if method == tf.WAP_PAY:
            return self._cashier_page(params)
        key = wire.response_key(method) if method in self.handlers else wire.ERROR_RESPONSE_KEY
        if method == tf.OAUTH_TOKEN:
            key = wire.ERROR_RESPONSE_KEY  # OAuth refusals come as error_response
        try:
            app, biz = self._authenticate(params)
            content = {"code": wire.SUCCESS_CODE, "msg": "Success"}
            content.update(self.handlers[method](app, params, biz))
            key = wire.response_key(method)
        except AlipayError as error:
            content = error.content()
        response = self._signed(key, content, fault)
        if fault == "timeout":  # done, but the answer never arrives in time
            await asyncio.sleep(self.fault_hold_s)
        return response

    async def _params(self, request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        if request.method == "POST":
            raw = await request.body()
            if len(raw) > MAX_FORM_BYTES:
                return {}
            try:
                params.update(parse_qsl(raw.decode(wire.CHARSET), keep_blank_values=True))
            except UnicodeDecodeError:
                return {}
        return params

    def _authenticate(self, params: dict[str, str]) -> tuple[App, dict[str, Any]]:
        app = self.state.app(params.get("app_id", ""))
        if app is None:
            raise invalid("isv.invalid-app-id", "无效的AppID参数")
        if params.get("method") not in self.handlers and params.get("method") != tf.WAP_PAY:
            raise invalid("isv.invalid-method", "不存在的方法名")
        if params.get("charset", wire.CHARSET).lower() != wire.CHARSET:
            raise invalid("isv.invalid-charset", "字符集错误 (sandbox: utf-8 only)")
        if params.get("sign_type") != wire.SIGN_TYPE:
            raise invalid("isv.invalid-signature-type", "无效的签名类型")
        self._check_timestamp(params.get("timestamp", ""))
        if not params.get("sign"):
            raise AlipayError("40001", "isv.missing-signature", "缺少签名参数")
        if not wire.verify_params(params, app.public_key_pem, exclude=wire.REQUEST_EXCLUDED):
            raise invalid(
                "isv.invalid-signature", "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配"
            )
        self._check_app_auth_token(app, params.get("app_auth_token"))
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            raise invalid("isv.invalid-parameter", "biz_content 不是合法的JSON") from None
        if not isinstance(biz, dict):
            raise invalid("isv.invalid-parameter", "biz_content 必须是JSON对象")
        return app, biz

    def _check_app_auth_token(self, app: App, token: str | None) -> None:
        """Service-provider calls name the merchant's grant; a bad one is 20001."""
        if token is None:
            return
        try:
            self.core.grants.check_app_auth_token(app.app_id, token)
        except GrantRefused as refusal:
            raise AlipayError("20001", "aop.invalid-app-auth-token", str(refusal)) from None

    def _check_timestamp(self, text: str) -> None:
        try:
            sent = wire.parse_beijing_time(text)
        except wire.WireFormatError:
            raise invalid("isv.invalid-timestamp", "非法的时间戳参数") from None
        skew = abs((self.state.clock.now() - sent).total_seconds())
        if skew > wire.MAX_TIMESTAMP_SKEW_S:
            raise invalid("isv.invalid-timestamp", "请求时间戳与服务器时间相差超过30分钟")

    def _signed(self, key: str, content: dict[str, Any], fault: str | None) -> Response:
        text = wire.compact_json(content)
        body = wire.signed_response_body(key, text, self.core.key.private_key_pem)
        if fault == "bad_signature":
            signature = json.loads(body)["sign"]
            body = body.replace(signature, _corrupted(signature))
        return Response(body.encode(), media_type="text/html;charset=utf-8")

    def _cashier_page(self, params: dict[str, str]) -> Response:
        """wap.pay opened in the payer's browser: the trade is created and the cashier shown."""
        try:
            app, biz = self._authenticate(params)
            trade = self.state.create_trade(app, tf.WAP_PAY, biz, params.get("notify_url"))
        except AlipayError as error:
            reason = html.escape(f"{error.sub_code}: {error.sub_msg}")
            page = f"<h1>支付宝 – 错误</h1><p>{reason}</p>"
            return HTMLResponse(page, status_code=200)
        page = (
            f"<h1>支付宝收银台 (sandbox)</h1><p>{html.escape(trade.subject)}</p>"
            f"<p>¥{wire.yuan(trade.total_fen)}</p><p>{html.escape(trade.out_trade_no)}</p>"
        )
        return HTMLResponse(page)

    # ------------------------------------------------------------ API handlers

    def with_notices(
        self, operation: Callable[[App, dict[str, Any]], tuple[dict[str, Any], list[Any]]]
    ) -> Handler:
        def handler(app: App, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
            content, notices = operation(app, biz)
            self.core.dispatch(notices)
            return content

        return handler

    def precreate(self, app: App, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        trade = self.state.create_trade(app, tf.PRECREATE, biz, params.get("notify_url"))
        return {
            "out_trade_no": trade.out_trade_no,
            "qr_code": f"https://qr.alipay.com/{trade.trade_no}",
        }

    def create(self, app: App, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        trade = self.state.create_trade(app, tf.CREATE, biz, params.get("notify_url"))
        return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}

    def pay(self, app: App, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        content, notices = self.state.pay_with_code(app, biz, params.get("notify_url"))
        self.core.dispatch(notices)
        return content

    def oauth_token(self, app: App, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        if params.get("grant_type") != "authorization_code":
            raise invalid("isv.grant-type-invalid", "不支持的grant_type")
        try:
            return self.core.grants.exchange_oauth_code(app.app_id, params.get("code", ""))
        except GrantRefused as refusal:
            raise invalid("isv.code-invalid", str(refusal)) from None

    def bill_url(self, app: App, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        token = self.state.keep_bill(self.state.bill(app, biz))
        return {"bill_download_url": f"{self.base_url}/sandbox/billdownload?token={token}"}

    base_url = ""  # set by the server once the port is known

    # ------------------------------------------------------------ pages and control API

    async def authorize(self, request: Request) -> Response:
        """The simulated user consents at once: back to redirect_uri with auth_code and state."""
        query = request.query_params
        redirect_uri = query.get("redirect_uri", "")
        if self.state.app(query.get("app_id", "")) is None or not redirect_uri.startswith("http"):
            return _problem(InvalidRequest("unknown app_id or bad redirect_uri", param="app_id"))
        code = self.core.grants.issue_oauth_code(query["app_id"])
        back = {
            "app_id": query["app_id"],
            "source": "alipay_wallet",
            "scope": query.get("scope", "auth_base"),
            "auth_code": code,
            "state": query.get("state", ""),
        }
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(back)}", status_code=302)

    async def download_bill(self, request: Request) -> Response:
        data = self.state.kept_bill(request.query_params.get("token", ""))
        if data is None:
            return PlainTextResponse("bill URL expired or unknown", status_code=404)
        return Response(data, media_type="application/zip")

    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise InvalidRequest("body must be a JSON object") from None
        if not isinstance(body, dict):
            raise InvalidRequest("body must be a JSON object")
        return body

    async def control(self, request: Request) -> Response:
        try:
            body = await self._json(request)
            return JSONResponse(self._control(request.url.path, body))
        except CustomerRefused as refusal:
            return _problem(Conflict(str(refusal), code="customer_refused"))
        except CloudPayError as error:
            return _problem(error)
        except (ValueError, KeyError, TypeError) as error:
            return _problem(InvalidRequest(f"bad request: {error}"))

    def _control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/customer/pay"):
            return self.core.customer_pay(
                str(body["out_trade_no"]), str(body.get("outcome", "success")),
                app_id=body.get("app_id"), notify_delay_s=float(body.get("notify_delay_s", 0.0)),
                duplicate_notifications=int(body.get("duplicate_notifications", 0)),
            )  # fmt: skip
        if path.endswith("/micropay/auth_codes"):
            self.state.register_auth_code(str(body["auth_code"]), str(body["outcome"]))
        elif path.endswith("/faults"):
            self.state.inject_fault(str(body["kind"]), int(body.get("count", 1)))
        elif path.endswith("/availability"):
            if not isinstance(body.get("available"), bool):
                raise InvalidRequest("available must be true or false", param="available")
            self.state.available = body["available"]
        return {"ok": True}

    async def notifications(self, request: Request) -> Response:
        attempts = self.core.notifier.attempts(request.query_params.get("out_trade_no"))
        fields = ("notify_id", "trade_status", "out_trade_no", "out_biz_no", "copy", "attempt")
        return JSONResponse(
            [
                {
                    **{name: getattr(a, name) for name in fields},
                    "at": a.at.isoformat(),
                    "status_code": a.status_code,
                    "error": a.error,
                }
                for a in attempts
            ]
        )

    def routes(self) -> list[Route]:
        control = ["/sandbox/customer/pay", "/sandbox/micropay/auth_codes", "/sandbox/faults",
                   "/sandbox/availability"]  # fmt: skip
        return [
            Route("/gateway.do", self.gateway, methods=["GET", "POST"]),
            Route("/oauth2/publicAppAuthorize.htm", self.authorize, methods=["GET"]),
            Route("/sandbox/billdownload", self.download_bill, methods=["GET"]),
            Route("/sandbox/notifications", self.notifications, methods=["GET"]),
            *(Route(path, self.control, methods=["POST"]) for path in control),
        ]


def build_app(api: SandboxApi) -> Starlette:
    return Starlette(routes=api.routes())
