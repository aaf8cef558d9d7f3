"""Operator API of merchants, agents, stores, apps and keys: parse → service → schema.

A generated private key is in the response to the request that made it and nowhere else: it
is added after the idempotency store has kept the body, so a replay answers
`"private_key": null` (rotate again if the first response was lost).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, page_envelope
from cloudpay.merchants import service
from cloudpay.merchants.model import AppStatus, MerchantStatus, ReviewAction
from cloudpay.merchants.schemas import (
    AgentCreate,
    AppCreate,
    KeyCreate,
    MerchantCreate,
    MerchantSearch,
    ReviewBody,
    StoreCreate,
    SubMerchantIdSet,
    agent_view,
    app_view,
    key_view,
    merchant_view,
    review_view,
    store_view,
)
from cloudpay.web.deps import Operator, TxRunner, Vault

router = APIRouter(tags=["merchants"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
SCOPE = "operator"
Work = Callable[[UnitOfWork], tuple[int, dict[str, Any]]]


# --- agents -----------------------------------------------------------------------------
@router.post("/v1/agents", status_code=201)
async def create_agent(body: AgentCreate, runner: TxRunner, _: Operator) -> JSONResponse:
    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        agent = service.create_agent(uow, name=body.name, parent_agent_id=body.parent_agent_id)
        return 201, agent_view(agent)

    return await runner.write_idempotent(SCOPE, work)


@router.get("/v1/agents")
def list_agents(
    request: Request,
    runner: TxRunner,
    _: Operator,
    parent_agent_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    agents = runner.read(
        lambda uow: service.list_agents(
            uow, parent_agent_id=parent_agent_id, limit=limit + 1, starting_after=starting_after
        )
    )
    return page_envelope([agent_view(a) for a in agents], limit=limit, url=request.url.path)


@router.get("/v1/agents/{agent_id}")
def get_agent(agent_id: str, runner: TxRunner, _: Operator) -> dict[str, Any]:
    return agent_view(runner.read(lambda uow: service.get_agent(uow, agent_id)))


# --- merchants --------------------------------------------------------------------------
@router.post("/v1/merchants", status_code=201)
async def create_merchant(
    body: MerchantCreate, runner: TxRunner, vault: Vault, _: Operator
) -> JSONResponse:
    """进件: a new merchant in `draft`; personal fields come back masked."""
    application = body.to_application()

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        merchant = service.onboard_merchant(uow, vault=vault, application=application)
        return 201, merchant_view(merchant)

    return await runner.write_idempotent(SCOPE, work)


@router.get("/v1/merchants")
def list_merchants(
    request: Request,
    runner: TxRunner,
    _: Operator,
    status: MerchantStatus | None = None,
    agent_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    merchants = runner.read(
        lambda uow: service.list_merchants(
            uow, status=status, agent_id=agent_id, limit=limit + 1, starting_after=starting_after
        )
    )
    return page_envelope([merchant_view(m) for m in merchants], limit=limit, url=request.url.path)


@router.post("/v1/merchants/search")
def search_merchants(
    request: Request, body: MerchantSearch, runner: TxRunner, vault: Vault, _: Operator
) -> dict[str, Any]:
    """Find merchants by legal person's resident ID or contact phone (blind index lookup)."""
    found = runner.read(
        lambda uow: service.find_merchants(
            uow,
            vault=vault,
            legal_person_id_number=body.legal_person_id_number,
            contact_phone=body.contact_phone,
        )
    )
    return {
        "object": "list",
        "url": request.url.path,
        "data": [merchant_view(m) for m in found],
        "has_more": False,
        "next_cursor": None,
    }


@router.get("/v1/merchants/{merchant_id}")
def get_merchant(merchant_id: str, runner: TxRunner, _: Operator) -> dict[str, Any]:
    return merchant_view(runner.read(lambda uow: service.get_merchant(uow, merchant_id)))


@router.get("/v1/merchants/{merchant_id}/reviews")
def list_reviews(
    merchant_id: str, request: Request, runner: TxRunner, _: Operator
) -> dict[str, Any]:
    """The review trail, newest first: who moved the merchant, when, and why."""
    reviews = runner.read(lambda uow: service.list_reviews(uow, merchant_id))
    return page_envelope(
        [review_view(r) for r in reviews], limit=len(reviews), url=request.url.path
    )


def _review_route(
    action: ReviewAction,
) -> Callable[[str, TxRunner, str, ReviewBody | None], Awaitable[JSONResponse]]:
    async def review(
        merchant_id: str, runner: TxRunner, operator: Operator, body: ReviewBody | None = None
    ) -> JSONResponse:
        reason = body.reason if body else None

        def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
            merchant = service.review_merchant(
                uow, merchant_id, action=action, actor=operator, reason=reason
            )
            return 200, merchant_view(merchant)

        return await runner.write_idempotent(SCOPE, work)

    review.__name__ = f"{action.value}_merchant"
    review.__doc__ = f"Review action `{action.value}`; refused with 409 from the wrong status."
    return review


for _action in ReviewAction:
    router.add_api_route(
        f"/v1/merchants/{{merchant_id}}/{_action.value}", _review_route(_action), methods=["POST"]
    )


@router.post("/v1/merchants/{merchant_id}/channel_sub_merchant_ids")
async def set_sub_merchant_id(
    merchant_id: str, body: SubMerchantIdSet, runner: TxRunner, _: Operator
) -> JSONResponse:
    """Record a channel's sub-merchant id (WeChat `sub_mchid`, …) of an ISV merchant."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        merchant = service.set_sub_merchant_id(
            uow, merchant_id, channel=body.channel, sub_merchant_id=body.sub_merchant_id
        )
        return 200, merchant_view(merchant)

    return await runner.write_idempotent(SCOPE, work)


# --- stores -----------------------------------------------------------------------------
@router.post("/v1/merchants/{merchant_id}/stores", status_code=201)
async def create_store(
    merchant_id: str, body: StoreCreate, runner: TxRunner, _: Operator
) -> JSONResponse:
    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        store = service.create_store(
            uow, merchant_id, name=body.name, store_code=body.store_code, address=body.address
        )
        return 201, store_view(store)

    return await runner.write_idempotent(SCOPE, work)


@router.get("/v1/merchants/{merchant_id}/stores")
def list_stores(
    merchant_id: str,
    request: Request,
    runner: TxRunner,
    _: Operator,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    stores = runner.read(
        lambda uow: service.list_stores(
            uow, merchant_id, limit=limit + 1, starting_after=starting_after
        )
    )
    return page_envelope([store_view(s) for s in stores], limit=limit, url=request.url.path)


@router.get("/v1/stores/{store_id}")
def get_store(store_id: str, runner: TxRunner, _: Operator) -> dict[str, Any]:
    return store_view(runner.read(lambda uow: service.get_store(uow, store_id)))


# --- apps -------------------------------------------------------------------------------
@router.post("/v1/merchants/{merchant_id}/apps", status_code=201)
async def create_app(
    merchant_id: str, body: AppCreate, runner: TxRunner, _: Operator
) -> JSONResponse:
    """An app with its first key; a generated private key is returned this once."""
    # Key generation is CPU work: off the event loop, and before the transaction.
    key = await run_in_threadpool(service.prepare_key, body.key.algorithm, body.key.public_key)

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        app = service.create_app(
            uow, merchant_id, name=body.name, notify_url=body.notify_url,
            payment_methods=body.payment_methods, key=key,
        )  # fmt: skip
        return 201, {**app_view(app, service.list_app_keys(uow, app.id)), "private_key": None}

    response = await runner.write_idempotent(SCOPE, work)
    return _with_private_key(response, key)


@router.get("/v1/merchants/{merchant_id}/apps")
def list_apps(
    merchant_id: str,
    request: Request,
    runner: TxRunner,
    _: Operator,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    apps = runner.read(
        lambda uow: service.list_apps(
            uow, merchant_id, limit=limit + 1, starting_after=starting_after
        )
    )
    return page_envelope([app_view(a) for a in apps], limit=limit, url=request.url.path)


@router.get("/v1/apps/{app_id}")
def get_app(app_id: str, runner: TxRunner, _: Operator) -> dict[str, Any]:
    """The app and its public keys (a private key is never shown again)."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        return app_view(service.get_app(uow, app_id), service.list_app_keys(uow, app_id))

    result: dict[str, Any] = runner.read(work)
    return result


@router.post("/v1/apps/{app_id}/disable")
async def disable_app(app_id: str, runner: TxRunner, _: Operator) -> JSONResponse:
    return await _set_app_status(runner, app_id, AppStatus.DISABLED)


@router.post("/v1/apps/{app_id}/enable")
async def enable_app(app_id: str, runner: TxRunner, _: Operator) -> JSONResponse:
    return await _set_app_status(runner, app_id, AppStatus.ENABLED)


async def _set_app_status(runner: TxRunner, app_id: str, status: AppStatus) -> JSONResponse:
    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 200, app_view(service.set_app_status(uow, app_id, status))

    return await runner.write_idempotent(SCOPE, work)


# --- keys -------------------------------------------------------------------------------
@router.post("/v1/apps/{app_id}/keys", status_code=201)
async def add_key(app_id: str, body: KeyCreate, runner: TxRunner, _: Operator) -> JSONResponse:
    """Rotate: a new active key; the previous active key keeps working until `retire_at`."""
    key = await run_in_threadpool(service.prepare_key, body.algorithm, body.public_key)
    overlap = timedelta(hours=body.previous_key_overlap_hours)

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        added = service.add_app_key(uow, app_id, key=key, overlap=overlap)
        return 201, {**key_view(added), "private_key": None}

    response = await runner.write_idempotent(SCOPE, work)
    return _with_private_key(response, key)


@router.get("/v1/apps/{app_id}/keys")
def list_keys(app_id: str, request: Request, runner: TxRunner, _: Operator) -> dict[str, Any]:
    keys = runner.read(lambda uow: service.list_app_keys(uow, app_id))
    return page_envelope([key_view(k) for k in keys], limit=len(keys), url=request.url.path)


@router.post("/v1/apps/{app_id}/keys/{serial_no}/revoke")
async def revoke_key(app_id: str, serial_no: str, runner: TxRunner, _: Operator) -> JSONResponse:
    """Stop accepting the key at once (a leaked key is revoked, not retired)."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 200, key_view(service.revoke_app_key(uow, app_id, serial_no))

    return await runner.write_idempotent(SCOPE, work)


def _with_private_key(response: JSONResponse, key: service.PreparedKey) -> JSONResponse:
    """Put a generated private key into the first response only; tell caches to keep none."""
    body = json.loads(bytes(response.body))
    headers = {"Cache-Control": "no-store"}
    if response.headers.get("idempotent-replayed"):
        headers["Idempotent-Replayed"] = "true"
    elif key.private_key is not None:
        body["private_key"] = key.private_key.reveal()
    return JSONResponse(body, response.status_code, headers=headers)
