"""Dependencies every route shares: the engine, the clock, settings, operator auth."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.db.idempotency import execute_idempotently, fingerprint
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.errors import AuthenticationFailed


def get_engine(request: Request) -> Engine:
    engine = request.app.state.engine
    assert isinstance(engine, Engine)
    return engine


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_settings_from_app(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


def require_operator(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> str:
    """Operators of the internal API present `Authorization: Bearer <CLOUDPAY_OPERATOR_TOKEN>`.

    The console (later) has its own sessions and roles; this guards machine access.
    """
    settings = get_settings_from_app(request)
    expected = settings.operator_token.get_secret_value()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("operator credentials required", code="credentials_missing")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationFailed("operator credentials invalid", code="credentials_invalid")
    return "operator"


Operator = Annotated[str, Depends(require_operator)]


class Runner:
    """Runs a route's work in one retried transaction, idempotently when a key is given."""

    def __init__(self, request: Request, engine: Engine, clock: Clock, settings: Settings) -> None:
        self.request = request
        self.engine = engine
        self.clock = clock
        self.settings = settings

    def read(self, work: Callable[[UnitOfWork], Any]) -> Any:
        return run_in_transaction(
            self.engine, work, clock=self.clock, read_only=True,
            max_attempts=self.settings.transaction_max_attempts,
        )  # fmt: skip

    def write(self, work: Callable[[UnitOfWork], Any]) -> Any:
        return run_in_transaction(
            self.engine, work, clock=self.clock,
            max_attempts=self.settings.transaction_max_attempts,
        )  # fmt: skip

    async def write_idempotent(
        self, scope: str, work: Callable[[UnitOfWork], tuple[int, dict[str, Any]]]
    ) -> JSONResponse:
        """`Idempotency-Key` given: first response stored; a retry gets it back verbatim."""
        key = self.request.headers.get("idempotency-key")
        if key is None:
            status, body = self.write(work)
            return JSONResponse(body, status_code=status)
        raw_body = await self.request.body()
        url = self.request.url
        path = url.path + ("?" + url.query if url.query else "")
        stored = execute_idempotently(
            self.engine,
            scope=scope,
            key=key,
            request_hash=fingerprint(self.request.method, path, _canonical(raw_body)),
            work=work,
            clock=self.clock,
            ttl_hours=self.settings.idempotency_ttl_hours,
        )
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
        return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)


def _canonical(raw_body: bytes) -> bytes:
    """Key order and whitespace do not make a different request."""
    try:
        return json.dumps(json.loads(raw_body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return raw_body


def get_runner(
    request: Request,
    engine: Annotated[Engine, Depends(get_engine)],
    clock: Annotated[Clock, Depends(get_clock)],
    settings: Annotated[Settings, Depends(get_settings_from_app)],
) -> Runner:
    return Runner(request, engine, clock, settings)


TxRunner = Annotated[Runner, Depends(get_runner)]
