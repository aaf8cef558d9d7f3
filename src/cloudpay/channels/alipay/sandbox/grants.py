"""What the sandbox's simulated users grant: OAuth codes (网页授权) and app authorisation
tokens (第三方应用授权, `app_auth_token`, for service-provider calls)."""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

from cloudpay.channels.alipay import wire
from cloudpay.kernel.clock import Clock

OAUTH_CODE_LIFETIME = timedelta(minutes=3)  # an auth_code is single-use and short-lived
ACCESS_TOKEN_LIFETIME_S = 15 * 24 * 3600
REFRESH_TOKEN_LIFETIME_S = 30 * 24 * 3600


class GrantRefused(Exception):
    """The code or token is unknown, used, expired or for another app."""


def sandbox_user_id(app_id: str) -> str:
    """The deterministic payer every OAuth consent of `app_id` resolves to (2088 + 12)."""
    digest = int(hashlib.sha256(f"sandbox-user:{app_id}".encode()).hexdigest(), 16)
    return f"2088{digest % 10**12:012d}"


class Grants:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._oauth_codes: dict[str, tuple[str, datetime]] = {}
        self._app_auth_tokens: dict[str, str] = {}  # token → the app it lets act

    def issue_oauth_code(self, app_id: str) -> str:
        code = secrets.token_hex(16)
        with self._lock:
            self._oauth_codes[code] = (app_id, self._clock.now() + OAUTH_CODE_LIFETIME)
        return code

    def exchange_oauth_code(self, app_id: str, code: str) -> dict[str, Any]:
        """alipay.system.oauth.token with grant_type=authorization_code: the user id."""
        with self._lock:
            issued = self._oauth_codes.pop(code, None)
        if issued is None or issued[0] != app_id or issued[1] < self._clock.now():
            raise GrantRefused("授权码code无效")
        return {
            "user_id": sandbox_user_id(app_id),
            "access_token": secrets.token_hex(16),
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "refresh_token": secrets.token_hex(16),
            "re_expires_in": REFRESH_TOKEN_LIFETIME_S,
            "auth_start": wire.beijing_time(self._clock.now()),
        }

    def issue_app_auth_token(self, app_id: str) -> str:
        """A merchant authorises the service provider's app `app_id` to act for it."""
        token = f"{secrets.token_hex(4)}{app_id[-6:]}{secrets.token_hex(12)}"
        with self._lock:
            self._app_auth_tokens[token] = app_id
        return token

    def check_app_auth_token(self, app_id: str, token: str) -> None:
        with self._lock:
            if self._app_auth_tokens.get(token) != app_id:
                raise GrantRefused("无效的应用授权令牌")
