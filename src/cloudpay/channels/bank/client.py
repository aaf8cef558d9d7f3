"""The partner-bank adapter: HTTP, signing and secrets behind `BankChannel`.

httpx, JSON bodies, requests signed with our RSA key and answers verified with the bank's
(rules in `wire.py`); mapping in `transformers.py`; the statement file in `statement.py`.

Errors (`BankError`, kinds as in `cloudpay.channels.protocol`):
- no connection / connect timeout / 429 / 5xx / 503 while the bank is down → `UNAVAILABLE`
  (nothing was done; retry with the same id is safe);
- read timeout or a connection lost mid-answer → `TIMEOUT` (outcome unknown: query the
  transfer by its id, or resend it — the bank moves money once per id);
- a 2xx whose signature fails, is stale, is for another request or unparseable →
  `INVALID_RESPONSE` (also outcome unknown);
- 401 (signature, replayed nonce, unknown key) → `AUTHENTICATION`;
- any other 4xx → `REJECTED` with the bank's `ret_code` (e.g. `id_number_invalid`).
A transfer the bank refuses for a business reason (limits, funds, frozen account) is not an
error: it is a `TransferResult` with status FAILED and the reason, stored under its id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx

from cloudpay.channels.bank import transformers as tf
from cloudpay.channels.bank import wire
from cloudpay.channels.bank.protocol import (
    AccountInfo,
    AccountOpened,
    Balance,
    BankError,
    BankErrorKind,
    BankLimits,
    BankNotification,
    NotificationRejected,
    OpenAccount,
    Statement,
    TransferRequest,
    TransferResult,
)
from cloudpay.channels.bank.statement import MAX_STATEMENT_BYTES, StatementError, parse_statement
from cloudpay.channels.http import HttpAdapter
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.masking import Secret

USER_AGENT = "cloudpay-bank/1 (httpx)"
T = TypeVar("T")


@dataclass(frozen=True)
class PartnerBankConfig:
    """One partner bank as onboarding gave it to us: where, whose keys, which limits."""

    bank_code: str
    client_id: str  # our id at the bank
    client_private_key_pem: Secret[str] = field(repr=False)
    client_serial_no: str  # the serial the bank registered our public key under
    bank_public_key_pem: str = field(repr=False)
    bank_serial_no: str
    custody_account_no: str  # the platform's 备付金 account at this bank
    base_url: str
    limits: BankLimits = field(default_factory=BankLimits)
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        url = httpx.URL(self.base_url)
        if url.scheme not in ("http", "https") or url.path not in ("", "/") or url.query:
            raise ValueError("base_url is a scheme and host only, e.g. https://openapi.bank…")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


def _status_error(status_code: int, body: bytes) -> BankError:
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    code = str(payload.get("ret_code") or f"HTTP_{status_code}")
    message = f"bank {status_code} {code}: {payload.get('ret_msg', '')}"
    if status_code == 401:
        return BankError(BankErrorKind.AUTHENTICATION, message, code=code)
    if status_code == 429 or status_code >= 500:
        return BankError(BankErrorKind.UNAVAILABLE, message, code=code)
    return BankError(BankErrorKind.REJECTED, message, code=code)


def _mapped(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except (tf.UnexpectedField, KeyError, TypeError, ValueError) as error:
        raise BankError(BankErrorKind.INVALID_RESPONSE, f"unreadable answer: {error}") from error


def _json(body: bytes) -> dict[str, Any]:
    payload = _mapped(lambda: json.loads(body))
    if not isinstance(payload, dict):
        raise BankError(BankErrorKind.INVALID_RESPONSE, "answer is not a JSON object")
    return payload


class PartnerBankClient(HttpAdapter):
    """`BankChannel` for one partner bank. Thread-safe."""

    def __init__(
        self,
        config: PartnerBankConfig,
        *,
        clock: Clock | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            channel=f"bank {config.bank_code}",
            user_agent=USER_AGENT,
            timeout_s=config.timeout_s,
            http=http,
            error_type=BankError,
        )
        self._config = config
        self._clock = clock or SystemClock()
        self._key = wire.SigningKey(config.client_private_key_pem, config.client_serial_no)
        self._webhook_nonces = wire.NonceMemory()
        self.bank_code = config.bank_code
        self.limits = config.limits

    def __repr__(self) -> str:
        return (
            f"PartnerBankClient(bank_code={self.bank_code!r}, base_url={self._config.base_url!r})"
        )

    @property
    def custody_account_no(self) -> str:
        return self._config.custody_account_no

    # ------------------------------------------------------------ BankChannel

    def open_account(self, request: OpenAccount) -> AccountOpened:
        answer = _json(self._call("POST", tf.ACCOUNTS_PATH, tf.open_account_body(request)))
        return _mapped(lambda: tf.account_opened(answer))

    def account(self, account_no: str) -> AccountInfo:
        answer = _json(self._call("GET", f"{tf.ACCOUNTS_PATH}/{quote(account_no, safe='')}"))
        info = _mapped(lambda: tf.account_info(answer))
        self._same("account", account_no, info.account_no)
        return info

    def balance(self, account_no: str) -> Balance:
        path = f"{tf.ACCOUNTS_PATH}/{quote(account_no, safe='')}/balance"
        result = _mapped(lambda: tf.balance(_json(self._call("GET", path))))
        self._same("account", account_no, result.account_no)
        return result

    def transfer(self, request: TransferRequest) -> TransferResult:
        answer = _json(self._call("POST", tf.TRANSFERS_PATH, tf.transfer_body(request)))
        result = _mapped(lambda: tf.transfer_result(answer))
        self._same("transfer", request.transfer_id, result.transfer_id)
        return result

    def query_transfer(self, transfer_id: str) -> TransferResult:
        path = f"{tf.TRANSFERS_PATH}/{quote(transfer_id, safe='')}"
        result = _mapped(lambda: tf.transfer_result(_json(self._call("GET", path))))
        self._same("transfer", transfer_id, result.transfer_id)
        return result

    def fetch_limits(self) -> BankLimits:
        """The caps the bank says it enforces (to check our configuration against)."""
        answer = _json(self._call("GET", tf.LIMITS_PATH))
        return _mapped(lambda: BankLimits.from_dict(answer))

    def download_statement(self, account_no: str, statement_date: date) -> Statement:
        """The day's statement, its signature, SHA-256, totals and balances checked."""
        query = urlencode({"acct_no": account_no, "date": statement_date.strftime("%Y%m%d")})
        raw = self._call("GET", f"{tf.STATEMENTS_PATH}?{query}")
        try:
            statement = parse_statement(raw)
        except StatementError as error:
            raise BankError(BankErrorKind.INVALID_RESPONSE, f"bad statement: {error}") from error
        if (statement.bank_code, statement.account_no, statement.statement_date) != (
            self.bank_code,
            account_no,
            statement_date,
        ):
            raise BankError(BankErrorKind.INVALID_RESPONSE, "statement is for another account")
        return statement

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> BankNotification:
        reason = wire.verify_answer(
            headers,
            body,
            first_line=wire.WEBHOOK_LINE,
            request_nonce="",
            public_key_pem=self._config.bank_public_key_pem,
            serial_no=self._config.bank_serial_no,
            now_s=self._now_s(),
        )
        if reason is not None:
            raise NotificationRejected(reason)
        if not self._webhook_nonces.first_use(
            str(wire.header(headers, wire.HEADER_NONCE)), self._now_s()
        ):
            raise NotificationRejected("nonce already used: a replayed webhook")
        try:
            event = json.loads(body)
            notice = tf.notification(event)
        except (tf.UnexpectedField, KeyError, TypeError, ValueError) as error:
            raise NotificationRejected(f"unreadable webhook: {error}") from error
        if notice.bank_code != self.bank_code:
            raise NotificationRejected(f"webhook is from bank {notice.bank_code!r}")
        return notice

    # ------------------------------------------------------------ plumbing

    def _now_s(self) -> int:
        return self._clock.now_ns() // 1_000_000_000

    @staticmethod
    def _same(what: str, asked: str, answered: str) -> None:
        if asked != answered:
            raise BankError(BankErrorKind.INVALID_RESPONSE, f"answer is for another {what}")

    def _call(self, method: str, target: str, payload: Mapping[str, Any] | None = None) -> bytes:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        nonce = wire.new_nonce()
        headers = wire.sign_request(
            self._key,
            client_id=self._config.client_id,
            method=method,
            target=target,
            body=body,
            timestamp=str(self._now_s()),
            nonce=nonce,
        )
        headers |= {"Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        url = self._config.base_url.rstrip("/") + target
        response = self._send(method, url, content=body or None, headers=headers)
        if not 200 <= response.status_code < 300:
            raise _status_error(response.status_code, response.content)
        if len(response.content) > MAX_STATEMENT_BYTES:
            raise BankError(BankErrorKind.INVALID_RESPONSE, "answer too large")
        reason = wire.verify_answer(
            response.headers,
            response.content,
            first_line=str(response.status_code),
            request_nonce=nonce,
            public_key_pem=self._config.bank_public_key_pem,
            serial_no=self._config.bank_serial_no,
            now_s=self._now_s(),
        )
        if reason is not None:
            raise BankError(BankErrorKind.INVALID_RESPONSE, f"answer refused: {reason}")
        return response.content
