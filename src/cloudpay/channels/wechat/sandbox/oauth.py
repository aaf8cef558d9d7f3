"""The sandbox's WeChat web OAuth: an authorize page that consents at once, and the code
exchange for an openid.

`GET /connect/oauth2/authorize` (open.weixin.qq.com in production) answers 302 straight back to
`redirect_uri` with a fresh `code` and the caller's `state`: the simulated payer consents.
`sandbox_user=NAME` (a sandbox extension) picks which simulated person is paying; the openid is
stable per (appid, person), as WeChat's is. `GET /sns/oauth2/access_token` (api.weixin.qq.com)
exchanges a code once, within 5 minutes, and answers HTTP 200 with the openid or an
`{"errcode", "errmsg"}`.
https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from cloudpay.channels.wechat.sandbox.state import Merchant, SandboxState

CODE_LIFETIME = timedelta(minutes=5)
TOKEN_LIFETIME_S = 7200
MAX_CODES_KEPT = 10_000
DEFAULT_USER = "sandbox-payer"
USER_PARAMETER = "sandbox_user"
SCOPES = frozenset({"snsapi_base", "snsapi_userinfo"})
MAX_FIELD_CHARS = 1024


@dataclass(frozen=True)
class _Grant:
    appid: str
    user: str
    scope: str
    issued_at: datetime
    used: bool = False  # a used code stays known, so a replay reads "code been used"


def openid_for(appid: str, user: str) -> str:
    """The same 28-character openid for the same (appid, person), another under another app."""
    digest = hashlib.sha256(f"{appid}\n{user}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


def _error(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg}


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


class OAuthDesk:
    """One-time codes under the state's lock; bounded, oldest forgotten first."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._grants: OrderedDict[str, _Grant] = OrderedDict()

    def _merchant_of(self, appid: str) -> Merchant | None:
        return next((m for m in self.state.merchants() if appid in m.appids), None)

    def issue(self, *, appid: str, user: str, scope: str) -> str:
        code = secrets.token_urlsafe(24)
        with self.state.lock:
            self._grants[code] = _Grant(appid, user, scope, self.state.clock.now())
            while len(self._grants) > MAX_CODES_KEPT:
                self._grants.popitem(last=False)
        return code

    def redeem(self, *, appid: str, secret: str, code: str) -> dict[str, Any]:
        merchant = self._merchant_of(appid)
        if merchant is None:
            return _error(40013, "invalid appid")
        expected = merchant.app_secret.reveal() if merchant.app_secret else None
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            return _error(40125, "invalid appsecret")
        with self.state.lock:
            grant = self._grants.get(code)
            if grant is None or grant.appid != appid:
                return _error(40029, "invalid code")
            if grant.used:
                return _error(40163, "code been used")
            if self.state.clock.now() - grant.issued_at > CODE_LIFETIME:
                return _error(40029, "invalid code, code expired")
            self._grants[code] = replace(grant, used=True)
        return {
            "access_token": secrets.token_urlsafe(32),
            "expires_in": TOKEN_LIFETIME_S,
            "refresh_token": secrets.token_urlsafe(32),
            "openid": openid_for(appid, grant.user),
            "scope": grant.scope,
        }

    # ------------------------------------------------------------ HTTP

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        appid, redirect_uri = query.get("appid", ""), query.get("redirect_uri", "")
        scope, state = query.get("scope", ""), query.get("state", "")
        user = query.get(USER_PARAMETER) or DEFAULT_USER
        if self._merchant_of(appid) is None:
            return PlainTextResponse("appid参数错误 (errcode 10003)", status_code=400)
        if not redirect_uri.startswith(("http://", "https://")) or len(redirect_uri) > 1024:
            return PlainTextResponse("redirect_uri参数错误 (errcode 10003)", status_code=400)
        if query.get("response_type") != "code" or scope not in SCOPES:
            return PlainTextResponse("scope或response_type参数错误", status_code=400)
        if len(state) > 128 or len(user) > MAX_FIELD_CHARS:
            return PlainTextResponse("state参数错误", status_code=400)
        code = self.issue(appid=appid, user=user, scope=scope)
        return RedirectResponse(_with_query(redirect_uri, {"code": code, "state": state}), 302)

    async def access_token(self, request: Request) -> Response:
        query = request.query_params
        if query.get("grant_type") != "authorization_code":
            return JSONResponse(_error(40002, "invalid grant_type"))
        fields = {name: query.get(name, "") for name in ("appid", "secret", "code")}
        if not all(0 < len(value) <= MAX_FIELD_CHARS for value in fields.values()):
            return JSONResponse(_error(41008, "missing appid, secret or code"))
        return JSONResponse(self.redeem(**fields))
