"""Merchant request authentication: `caller: MerchantCaller` on every merchant route.

A request must carry `Authorization: CLOUDPAY-SHA256-RSA2048 app_id="…",nonce_str="…",
timestamp="…",serial_no="…",signature="…"` (or `CLOUDPAY-SM2-WITH-SM3` for an SM2 key), a
signature over `METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` (`cloudpay.sdk.protocol`).
Checks, in this order, the first failure deciding the answer:

| code                            | status | when |
|---------------------------------|--------|------|
| `signature_missing`             | 401 | no `Authorization` header |
| `signature_malformed`           | 401 | another scheme; a field missing, repeated or malformed |
| `timestamp_out_of_window`       | 401 | `timestamp` more than 5 minutes from the platform clock |
| `app_unknown`                   | 401 | no such `app_id` |
| `key_unknown`                   | 401 | the app has no key with that `serial_no` |
| `signature_algorithm_mismatch`  | 401 | an RSA scheme with an SM2 key or the reverse |
| `signature_invalid`             | 401 | the signature does not verify (wrong key, tampering) |
| `key_revoked`                   | 401 | the key was revoked |
| `key_expired`                   | 401 | a rotated-out key past its overlap (`retire_at`) |
| `key_unusable`                  | 401 | any other reason the key directory refuses the key |
| `app_disabled`                  | 403 | the app is disabled |
| `merchant_not_active`           | 403 | the merchant is not approved (frozen, closed, in review) |
| `nonce_reused`                  | 401 | this app already used `nonce_str` |

Account state (403) is told only to a caller who proved it holds the key. Nothing is
written for a refused request: the nonce is recorded last, by an insert that is itself the
reuse check. Routers built with `route_class=MerchantRoute` run these checks before FastAPI
parses the body; every merchant router should.
The key lookup is injected (`app.state.app_keys`, an `AppKeyDirectory`), because `web` sits
below the contexts and must not import `cloudpay.merchants`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock, datetime_from_ns
from cloudpay.kernel.errors import (
    AuthenticationFailed,
    CloudPayError,
    NotFound,
    PermissionDenied,
)
from cloudpay.sdk.protocol import (
    SCHEME_BY_ALGORITHM,
    TIMESTAMP_TOLERANCE_S,
    AuthorizationHeader,
    MalformedAuthorization,
    parse_authorization,
    request_signing_message,
    verify_signature,
)
from cloudpay.web.nonces import EXPIRY_MARGIN, remember_nonce
from cloudpay.web.response_signing import SignedResponse, route_depends_on

PARAM = "Authorization"
NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class AuthenticatedApp:
    """Who signed the request: the app, its merchant and the key it used."""

    app_id: str
    merchant_id: str
    serial_no: str
    algorithm: str


class AppKeyRecord(Protocol):
    """What the check reads of an app key (`cloudpay.merchants.AppKeyInfo` has it)."""

    @property
    def app_id(self) -> str: ...
    @property
    def merchant_id(self) -> str: ...
    @property
    def serial_no(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def public_key(self) -> str: ...
    @property
    def usable(self) -> bool: ...
    @property
    def status(self) -> str: ...
    @property
    def retire_at(self) -> datetime | None: ...
    @property
    def app_status(self) -> str: ...
    @property
    def merchant_status(self) -> str: ...


class FindAppKey(Protocol):
    def __call__(self, uow: UnitOfWork, *, app_id: str, serial_no: str) -> AppKeyRecord | None: ...


class GetApp(Protocol):
    """Returns the app or raises a `NotFound`."""

    def __call__(self, uow: UnitOfWork, app_id: str, /) -> object: ...


@dataclass(frozen=True)
class AppKeyDirectory:
    """The merchants context's key lookup, handed to the web layer by `main.create_app`."""

    find_app_key: FindAppKey
    get_app: GetApp

    def app_exists(self, uow: UnitOfWork, app_id: str) -> bool:
        try:
            self.get_app(uow, app_id)
        except NotFound:
            return False
        return True


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path_and_query: bytes
    authorization: str | None
    body: bytes


def authenticate(
    request: SignedRequest,
    *,
    engine: Engine,
    clock: Clock,
    directory: AppKeyDirectory,
    max_attempts: int,
) -> AuthenticatedApp:
    """The app that signed `request`, or the `CloudPayError` of the first failed check."""
    header = _parse(request.authorization)
    now_s = clock.now_ns() // NS_PER_S
    if abs(now_s - header.timestamp) > TIMESTAMP_TOLERANCE_S:
        raise AuthenticationFailed(
            f"timestamp must be within {TIMESTAMP_TOLERANCE_S}s of the platform time "
            f"({now_s})", code="timestamp_out_of_window", param=PARAM,
        )  # fmt: skip
    key = run_in_transaction(
        engine, lambda uow: _find_key(uow, directory, header), clock=clock,
        read_only=True, max_attempts=max_attempts,
    )  # fmt: skip
    message = request_signing_message(
        request.method, request.path_and_query, header.timestamp, header.nonce_str, request.body
    )
    _check_key(key, header, message, clock.now())
    expires_at = (
        datetime_from_ns(header.timestamp * NS_PER_S)
        + timedelta(seconds=TIMESTAMP_TOLERANCE_S)
        + EXPIRY_MARGIN
    )
    first_use = run_in_transaction(
        engine,
        lambda uow: remember_nonce(
            uow, app_id=header.app_id, nonce=header.nonce_str, expires_at=expires_at
        ),
        clock=clock,
        max_attempts=max_attempts,
    )
    if not first_use:
        raise AuthenticationFailed(
            "nonce_str was already used by this app", code="nonce_reused", param=PARAM
        )
    return AuthenticatedApp(key.app_id, key.merchant_id, key.serial_no, key.algorithm)


def _parse(authorization: str | None) -> AuthorizationHeader:
    if not authorization or not authorization.strip():
        raise AuthenticationFailed(
            "merchant requests must be signed: send an Authorization header",
            code="signature_missing", param=PARAM,
        )  # fmt: skip
    try:
        return parse_authorization(authorization)
    except MalformedAuthorization as error:
        raise AuthenticationFailed(str(error), code="signature_malformed", param=PARAM) from None


def _find_key(
    uow: UnitOfWork, directory: AppKeyDirectory, header: AuthorizationHeader
) -> AppKeyRecord:
    key = directory.find_app_key(uow, app_id=header.app_id, serial_no=header.serial_no)
    if key is not None:
        return key
    if not directory.app_exists(uow, header.app_id):
        raise AuthenticationFailed(f"no app {header.app_id}", code="app_unknown", param=PARAM)
    raise AuthenticationFailed(
        f"app {header.app_id} has no key with serial_no {header.serial_no}",
        code="key_unknown", param=PARAM,
    )  # fmt: skip


def _check_key(
    key: AppKeyRecord, header: AuthorizationHeader, message: bytes, now: datetime
) -> None:
    if key.algorithm != header.algorithm:
        raise AuthenticationFailed(
            f"key {key.serial_no} is an {key.algorithm} key: sign with "
            f"{SCHEME_BY_ALGORITHM.get(key.algorithm, '?')}",
            code="signature_algorithm_mismatch", param=PARAM,
        )  # fmt: skip
    if not verify_signature(key.public_key, message, header.signature):
        raise AuthenticationFailed(
            "signature does not match the request (check the signed string and the key)",
            code="signature_invalid", param=PARAM,
        )  # fmt: skip
    if not key.usable:
        raise _refusal_of_unusable(key, now)


def _refusal_of_unusable(key: AppKeyRecord, now: datetime) -> CloudPayError:
    if key.status == "revoked":
        return AuthenticationFailed(
            f"key {key.serial_no} was revoked", code="key_revoked", param=PARAM
        )
    if key.status == "retiring" and key.retire_at is not None and key.retire_at <= now:
        return AuthenticationFailed(
            f"key {key.serial_no} was rotated out at {key.retire_at.isoformat()}",
            code="key_expired", param=PARAM,
        )  # fmt: skip
    if key.app_status != "enabled":
        return PermissionDenied(f"app {key.app_id} is {key.app_status}", code="app_disabled")
    if key.merchant_status != "approved":
        return PermissionDenied(
            f"merchant {key.merchant_id} is {key.merchant_status}", code="merchant_not_active"
        )
    return AuthenticationFailed(
        f"key {key.serial_no} is not usable", code="key_unusable", param=PARAM
    )


# ---------------------------------------------------------------- FastAPI wiring


def _signed_request(scope: Scope, body: bytes) -> SignedRequest:
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    path = raw_path.split(b"?", 1)[0]  # some servers leave the query on raw_path
    query = scope.get("query_string", b"")
    authorization = None
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            authorization = value.decode("latin-1")
            break
    target = path + (b"?" + query if query else b"")
    return SignedRequest(scope["method"], target, authorization, body)


async def _authenticate(request: Request) -> AuthenticatedApp:
    """Once per request: the caller is kept on `request.state.merchant_caller`."""
    already = getattr(request.state, "merchant_caller", None)
    if isinstance(already, AuthenticatedApp):
        return already
    signed = _signed_request(request.scope, await request.body())
    _parse(signed.authorization)  # an unsigned request needs no database, not even wiring
    state = request.app.state
    directory = getattr(state, "app_keys", None)
    if not isinstance(directory, AppKeyDirectory):
        raise RuntimeError("app.state.app_keys is not set: main.create_app wires it")
    caller = await run_in_threadpool(
        authenticate,
        signed,
        engine=state.engine,
        clock=state.clock,
        directory=directory,
        max_attempts=state.settings.transaction_max_attempts,
    )
    request.state.merchant_caller = caller
    return caller


async def authenticate_merchant(
    request: Request, _signed: Annotated[None, SignedResponse]
) -> AuthenticatedApp:
    """The dependency behind `MerchantCaller` (a no-op when `MerchantRoute` already ran it)."""
    return await _authenticate(request)


MerchantCaller = Annotated[AuthenticatedApp, Depends(authenticate_merchant)]


class MerchantRoute(APIRoute):
    """Route class for routers with merchant routes: `APIRouter(route_class=MerchantRoute)`.

    Its routes that depend on `MerchantCaller` check the signature before FastAPI parses
    the body, so even broken JSON from an unsigned caller gets a 401, not a 400. Other
    routes of the router (a channel's notification callback, say) are left as they are.
    Without it the dependency still authenticates every request, just after JSON decoding.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if not route_depends_on(self, authenticate_merchant):
            return handle

        async def authenticate_then_handle(request: Request) -> Response:
            await _authenticate(request)
            return await handle(request)

        return authenticate_then_handle
