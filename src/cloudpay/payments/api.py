"""Merchant payments API (signed requests) and the channels' notification endpoint."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from cloudpay import merchants
from cloudpay.channels.registry import UnknownChannel
from cloudpay.db.unit_of_work import UnitOfWork, transactor
from cloudpay.kernel.errors import InvalidRequest, NotFound
from cloudpay.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, page_envelope
from cloudpay.payments import flows, qr, service, webhooks
from cloudpay.payments.repository import OrderRow
from cloudpay.payments.schemas import OrderCreate, RefundCreate, order_view, refund_view
from cloudpay.web.deps import TxRunner
from cloudpay.web.merchant_auth import MerchantCaller, MerchantRoute

# MerchantRoute: signed routes verify the signature before FastAPI parses the body.
router = APIRouter(tags=["payments"], route_class=MerchantRoute)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def channel_context(request: Request) -> flows.ChannelContext:
    context = request.app.state.channel_context
    assert isinstance(context, flows.ChannelContext)
    return context


def _scope(caller: MerchantCaller) -> str:
    return f"app:{caller.app_id}"


def _qr_key(request: Request) -> bytes:
    secret: str = request.app.state.settings.blind_index_key_hex.get_secret_value()
    return hashlib.sha256(b"cloudpay-qr:" + secret.encode()).digest()


def _view(order: OrderRow, request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return order_view(order, qr_url=base + qr.qr_image_path(order.id, _qr_key(request)))


@router.post("/v1/orders", status_code=201)
async def create_order(
    body: OrderCreate, request: Request, runner: TxRunner, caller: MerchantCaller
) -> Response:
    ctx = channel_context(request)

    def prepare(uow: UnitOfWork) -> tuple[service.OrderRequest, frozenset[str]]:
        app = merchants.get_app(uow, caller.app_id)
        order_request = service.OrderRequest(
            app_id=caller.app_id, merchant_id=caller.merchant_id, out_trade_no=body.out_trade_no,
            amount=body.amount, currency=body.currency, subject=body.subject, method=body.method,
            expire_at=body.expire_at, notify_url=body.notify_url or app.notify_url,
            metadata=body.metadata, payer_id=body.payer_id, auth_code=body.auth_code,
            wallet=body.wallet, return_url=body.return_url, citizen_id=body.citizen_id,
            claim_ids=tuple(body.claim_ids) if body.claim_ids else None, discount=body.discount,
            split=body.split.as_dict() if body.split else None, points=body.points,
        )  # fmt: skip
        return order_request, frozenset(app.payment_methods)

    def flow() -> tuple[int, dict[str, Any]]:
        transact = transactor(runner.engine, runner.clock)
        order = flows.place_prepared_order(transact, ctx, prepare=prepare)
        return 201, _view(order, request)

    return await runner.write_idempotent_flow(_scope(caller), flow)


@router.get("/v1/orders")
def list_orders(
    request: Request,
    runner: TxRunner,
    caller: MerchantCaller,
    out_trade_no: str | None = None,
    status: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    if out_trade_no is not None:
        order = runner.read(
            lambda uow: service.find_order(uow, app_id=caller.app_id, out_trade_no=out_trade_no)
        )
        return page_envelope([_view(order, request)], limit=limit, url=request.url.path)
    orders = runner.read(
        lambda uow: service.list_orders(
            uow, app_id=caller.app_id, status=status, limit=limit + 1,
            starting_after=starting_after,
        )
    )  # fmt: skip
    items = [_view(o, request) for o in orders]
    return page_envelope(items, limit=limit, url=request.url.path)


@router.get("/v1/orders/{order_id}")
def get_order(
    order_id: str, request: Request, runner: TxRunner, caller: MerchantCaller
) -> dict[str, Any]:
    order = runner.read(lambda uow: service.get_order(uow, order_id=order_id, app_id=caller.app_id))
    return _view(order, request)


@router.get("/pay/qr/{order_id}.{image_format}", include_in_schema=False)
def order_qr_image(
    order_id: str, image_format: str, t: str, request: Request, runner: TxRunner
) -> Response:
    """The payer-facing QR image of an open order (the token in the URL authorises it)."""
    if image_format not in qr.FORMATS or not qr.token_matches(order_id, t, _qr_key(request)):
        raise NotFound("no such QR code", code="qr_not_found")
    order = runner.read(lambda uow: service.get_order(uow, order_id=order_id))
    if order.code_url is None or order.status.value != "paying":
        raise NotFound("this order has no payable QR code", code="qr_not_available")
    image = qr.render(order.code_url, image_format)
    return Response(
        image, media_type=qr.FORMATS[image_format], headers={"Cache-Control": "no-store"}
    )


@router.post("/v1/orders/{order_id}/close")
async def close_order(
    order_id: str, request: Request, runner: TxRunner, caller: MerchantCaller
) -> Response:
    ctx = channel_context(request)

    def flow() -> tuple[int, dict[str, Any]]:
        transact = transactor(runner.engine, runner.clock)
        order = flows.close_order(transact, ctx, order_id=order_id, app_id=caller.app_id)
        return 200, _view(order, request)

    return await runner.write_idempotent_flow(_scope(caller), flow)


@router.get("/v1/orders/{order_id}/refunds")
def list_order_refunds(
    order_id: str, request: Request, runner: TxRunner, caller: MerchantCaller
) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        service.get_order(uow, order_id=order_id, app_id=caller.app_id)
        return [refund_view(r) for r in service.refunds_of_order(uow, order_id=order_id)]

    items = runner.read(work)
    return page_envelope(items[::-1], limit=MAX_LIMIT, url=request.url.path)


@router.post("/v1/refunds", status_code=201)
async def create_refund(
    body: RefundCreate, request: Request, runner: TxRunner, caller: MerchantCaller
) -> Response:
    if (body.order_id is None) == (body.out_trade_no is None):
        raise InvalidRequest("give exactly one of order_id and out_trade_no",
                             code="parameter_invalid", param="order_id")  # fmt: skip
    ctx = channel_context(request)

    def flow() -> tuple[int, dict[str, Any]]:
        order_id = (
            body.order_id
            or runner.read(
                lambda uow: service.find_order(
                    uow, app_id=caller.app_id, out_trade_no=str(body.out_trade_no)
                )
            ).id
        )
        refund = flows.refund_order(
            transactor(runner.engine, runner.clock), ctx, app_id=caller.app_id,
            order_id=order_id, out_refund_no=body.out_refund_no, amount=body.amount,
            reason=body.reason,
        )  # fmt: skip
        return 201, refund_view(refund)

    return await runner.write_idempotent_flow(_scope(caller), flow)


@router.get("/v1/refunds/{refund_id}")
def get_refund(refund_id: str, runner: TxRunner, caller: MerchantCaller) -> dict[str, Any]:
    refund = runner.read(
        lambda uow: service.get_refund(uow, refund_id=refund_id, app_id=caller.app_id)
    )
    return refund_view(refund)


@router.get("/v1/events")
def list_events(
    request: Request,
    runner: TxRunner,
    caller: MerchantCaller,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        found = webhooks.list_events(
            uow, app_id=caller.app_id, limit=limit + 1, starting_after=starting_after
        )
        return [webhooks.event_view(uow, event) for event in found]

    return page_envelope(runner.read(work), limit=limit, url=request.url.path)


@router.get("/v1/events/{event_id}")
def get_event(event_id: str, runner: TxRunner, caller: MerchantCaller) -> dict[str, Any]:
    def work(uow: UnitOfWork) -> dict[str, Any]:
        event = webhooks.get_event(uow, event_id=event_id, app_id=caller.app_id)
        return webhooks.event_view(uow, event)

    result: dict[str, Any] = runner.read(work)
    return result


@router.post("/v1/events/{event_id}/resend")
async def resend_event(event_id: str, runner: TxRunner, caller: MerchantCaller) -> Response:
    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        event = webhooks.resend(uow, event_id=event_id, app_id=caller.app_id)
        return 200, webhooks.event_view(uow, event)

    return await runner.write_idempotent(_scope(caller), work)


@router.post("/v1/channels/{channel_code}/notify", include_in_schema=False)
async def channel_notification(channel_code: str, request: Request, runner: TxRunner) -> Response:
    """Where WeChat Pay (and later Alipay, UnionPay) notify us; verified by the adapter."""
    ctx = channel_context(request)
    try:
        channel = ctx.channels.get(channel_code)
    except UnknownChannel:
        raise NotFound(f"no channel {channel_code}", code="channel_unknown") from None
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    transact = transactor(runner.engine, runner.clock)
    ack = await run_in_threadpool(flows.handle_notification, transact, channel, headers, body)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.content_type)
