"""Dependencies every route shares: the engine, the clock, settings, the vault, operator auth."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from cloudpay.config import Settings
from cloudpay.db import idempotency
from cloudpay.db.idempotency import execute_idempotently
from cloudpay.db.unit_of_work import UnitOfWork, run_in_transaction
from cloudpay.kernel.clock import Clock
from cloudpay.kernel.errors import AuthenticationFailed
from cloudpay.kernel.vault import PersonalDataVault


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


# Dependencies that do no I/O are `async def`: FastAPI runs a sync dependency in the thread
# pool, a thread hop (and its CPU) per dependency per request.
async def get_vault(request: Request) -> PersonalDataVault:
    """The personal-data vault `main.create_app` built from the configured field keys."""
    vault = request.app.state.vault
    assert isinstance(vault, PersonalDataVault)
    return vault


Vault = Annotated[PersonalDataVault, Depends(get_vault)]


async def require_operator(
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
        # Database work runs in the thread pool: a blocking call here would stall every
        # request this event loop serves.
        if key is None:
            status, body = await run_in_threadpool(self.write, work)
            return JSONResponse(body, status_code=status)
        stored = await run_in_threadpool(
            execute_idempotently,
            self.engine,
            scope=scope,
            key=key,
            request_hash=await self._request_hash(),
            work=work,
            clock=self.clock,
            ttl_hours=self.settings.idempotency_ttl_hours,
        )
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
        return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)

    async def write_idempotent_flow(
        self, scope: str, flow: Callable[[], tuple[int, dict[str, Any]]]
    ) -> JSONResponse:
        """For flows of several transactions around a channel call; the flow must itself be
        idempotent (an order found by `out_trade_no`), since a crashed claim is re-run."""
        key = self.request.headers.get("idempotency-key")
        if key is None:
            status, body = await run_in_threadpool(flow)
            return JSONResponse(body, status_code=status)
        request_hash = await self._request_hash()
        # Claim, flow and stored answer in one trip to the thread pool (each trip costs a
        # thread hand-off; the database work would block the event loop): the same
        # transactions in the same order as three trips would make.
        stored = await run_in_threadpool(self._claim_run_complete, scope, key, request_hash, flow)
        headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
        return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)

    def _claim_run_complete(
        self,
        scope: str,
        key: str,
        request_hash: str,
        flow: Callable[[], tuple[int, dict[str, Any]]],
    ) -> idempotency.StoredResponse:
        stored: idempotency.StoredResponse | None = self.write(
            lambda uow: idempotency.claim(
                uow, scope=scope, key=key, request_hash=request_hash,
                ttl_hours=self.settings.idempotency_ttl_hours,
            )
        )  # fmt: skip
        if stored is not None:
            return stored
        try:
            status, body = flow()
        except Exception:
            self.write(lambda uow: idempotency.release(uow, scope=scope, key=key))
            raise
        self.write(
            lambda uow: idempotency.complete(
                uow, scope=scope, key=key, status_code=status, body=body
            )
        )
        return idempotency.StoredResponse(status, body, replayed=False)

    async def _request_hash(self) -> str:
        raw_body = await self.request.body()
        url = self.request.url
        path = url.path + ("?" + url.query if url.query else "")
        return idempotency.fingerprint(self.request.method, path, _canonical(raw_body))


def _canonical(raw_body: bytes) -> bytes:
    """Key order and whitespace do not make a different request."""
    try:
        return json.dumps(json.loads(raw_body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return raw_body


async def get_runner(request: Request) -> Runner:
    return Runner(request, get_engine(request), get_clock(request), get_settings_from_app(request))


TxRunner = Annotated[Runner, Depends(get_runner)]
