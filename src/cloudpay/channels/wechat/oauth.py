"""WeChat web OAuth (网页授权) for JSAPI payments: who is the payer (openid).

The payer's browser goes to `/connect/oauth2/authorize` on open.weixin.qq.com; WeChat sends it
back to our `redirect_uri` with a one-time `code` and our `state`. We exchange the code at
`/sns/oauth2/access_token` on api.weixin.qq.com for the payer's openid under our appid. With
`scope=snsapi_base` the payer sees no consent page. Codes are single-use and expire after
5 minutes; errors come as HTTP 200 with `{"errcode", "errmsg"}`.
https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html

Pure functions only; `WeChatPayChannel` does the HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from cloudpay.channels.protocol import ChannelError, ChannelErrorKind

DEFAULT_AUTHORIZE_BASE_URL = "https://open.weixin.qq.com"
DEFAULT_API_BASE_URL = "https://api.weixin.qq.com"
AUTHORIZE_PATH = "/connect/oauth2/authorize"
ACCESS_TOKEN_PATH = "/sns/oauth2/access_token"  # noqa: S105 (a path, not a secret)
SCOPE_BASE = "snsapi_base"
# WeChat asks for at most 128 bytes of [a-zA-Z0-9]; we also let `-` and `_` through so that
# URL-safe random tokens work, as WeChat returns state untouched.
STATE_MAX_CHARS = 128
_STATE = re.compile(r"[A-Za-z0-9_\-]{0,128}")
CODE_MAX_CHARS = 128
# errcode → how the failure reads to our callers.
ERRCODE_INVALID_CODE = 40029  # unknown or expired code
ERRCODE_CODE_USED = 40163  # "code been used"
ERRCODE_INVALID_SECRET = 40125
ERRCODE_INVALID_APPID = 40013
ERRCODE_BUSY = -1  # system busy: retry
_AUTHENTICATION_ERRCODES = frozenset({ERRCODE_INVALID_SECRET, ERRCODE_INVALID_APPID, 40001})


def authorize_url(*, base_url: str, appid: str, redirect_uri: str, state: str) -> str:
    """Where to send the payer's browser (the `#wechat_redirect` fragment is required)."""
    if not redirect_uri.startswith(("http://", "https://")):
        raise ValueError("redirect_uri must be an http(s) URL")
    if not _STATE.fullmatch(state):
        raise ValueError(f"state must be 0..{STATE_MAX_CHARS} of [A-Za-z0-9_-]")
    query = urlencode(
        {
            "appid": appid,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": SCOPE_BASE,
            "state": state,
        }
    )
    return f"{base_url.rstrip('/')}{AUTHORIZE_PATH}?{query}#wechat_redirect"


def access_token_query(*, appid: str, secret: str, code: str) -> str:
    if not code or len(code) > CODE_MAX_CHARS or not code.isprintable():
        raise ValueError("the OAuth code is empty, too long or not printable")
    query = {"appid": appid, "secret": secret, "code": code, "grant_type": "authorization_code"}
    return f"{ACCESS_TOKEN_PATH}?{urlencode(query)}"


def openid_of(answer: Mapping[str, Any]) -> str:
    """The openid of an access_token answer; its `errcode` as a `ChannelError` otherwise."""
    errcode = answer.get("errcode")
    if errcode not in (None, 0):
        message = f"WeChat OAuth {errcode}: {answer.get('errmsg', '')}"
        if errcode == ERRCODE_BUSY:
            kind = ChannelErrorKind.UNAVAILABLE
        elif errcode in _AUTHENTICATION_ERRCODES:
            kind = ChannelErrorKind.AUTHENTICATION
        else:
            kind = ChannelErrorKind.REJECTED
        raise ChannelError(kind, message, code=str(errcode))
    openid = answer.get("openid")
    if not isinstance(openid, str) or not openid:
        raise ChannelError(ChannelErrorKind.INVALID_RESPONSE, "OAuth answer lacks openid")
    return openid
