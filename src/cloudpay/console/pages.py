"""Business pages: merchants (review queue, detail, key rotation), orders and refunds
(search, detail, refund, webhook resend), the ledger browser and the books check."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from cloudpay import merchants, payments
from cloudpay.console import money_views, operations, routing_pages, routing_views
from cloudpay.console.model import Permission, parse_yuan
from cloudpay.console.schemas import RefundForm
from cloudpay.console.web import (
    SignedIn,
    read,
    redirect,
    render,
    require_page,
    scope,
    transact,
    vault_of,
    write,
)
from cloudpay.kernel.errors import InvalidRequest

ORDER_PAGE = 50
ORDER_STATUSES = ("created", "paying", "succeeded", "failed", "closed", "expired",
                  "partially_refunded", "refunded")  # fmt: skip
MERCHANT_STATUSES = ("draft", "submitted", "approved", "rejected", "frozen", "closed")


def install(console: FastAPI) -> None:
    console.get("/merchants", response_class=HTMLResponse)(merchant_list)
    console.get("/merchants/review", response_class=HTMLResponse)(review_queue)
    console.get("/merchants/{merchant_id}", response_class=HTMLResponse)(merchant_page)
    console.post("/merchants/{merchant_id}/review")(review)
    console.post("/apps/{app_id}/keys/rotate", response_class=HTMLResponse)(rotate_key)
    console.get("/orders", response_class=HTMLResponse)(order_search)
    console.get("/orders/{order_id}", response_class=HTMLResponse)(order_page)
    console.post("/orders/{order_id}/refund")(refund)
    console.post("/events/{event_id}/resend")(resend)
    console.get("/ledger", response_class=HTMLResponse)(ledger_accounts)
    console.get("/ledger/accounts/{account_id}", response_class=HTMLResponse)(ledger_account)
    console.get("/ledger/check", response_class=HTMLResponse)(books_check)


def _status(value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value and value not in allowed:
        raise InvalidRequest(f"status is one of {', '.join(allowed)}", code="parameter_invalid",
                             param="status")  # fmt: skip
    return value or None


# --- merchants ---------------------------------------------------------------------------
def merchant_list(
    request: Request, actor: SignedIn, status: str | None = None, after: str | None = None,
    q: str | None = None,
) -> Response:  # fmt: skip
    the_scope = scope(request, actor)
    wanted = _status(status, MERCHANT_STATUSES)
    text = (q or "").strip()[:64]
    if text:
        vault = vault_of(request)
        rows = read(request, lambda uow: operations.merchant_search(
            uow, actor, the_scope, vault=vault, text=text))  # fmt: skip
    else:
        rows = read(request, lambda uow: operations.merchant_list(
            uow, actor, the_scope, status=wanted, starting_after=after))  # fmt: skip
    more = not text and len(rows) >= operations.MERCHANT_PAGE
    return render(request, "merchants.html", actor, merchants=rows, status=wanted, queue=False,
                  q=text, next_after=rows[-1]["id"] if more else None)  # fmt: skip


def review_queue(request: Request, actor: SignedIn, after: str | None = None) -> Response:
    require_page(actor, Permission.VIEW_MERCHANTS)
    the_scope = scope(request, actor)
    rows = read(request, lambda uow: operations.merchant_list(
        uow, actor, the_scope, status="submitted", starting_after=after))  # fmt: skip
    more = len(rows) >= operations.MERCHANT_PAGE
    return render(request, "merchants.html", actor, merchants=rows, status="submitted",
                  queue=True, next_after=rows[-1]["id"] if more else None)  # fmt: skip


def merchant_page(request: Request, actor: SignedIn, merchant_id: str) -> Response:
    the_scope = scope(request, actor)
    detail = read(request, lambda uow: operations.merchant_detail(uow, actor, the_scope,
                                                                  merchant_id))  # fmt: skip
    context = routing_pages.channel_context_of(request)
    routes = read(request, lambda uow: routing_views.merchant_routing(
        uow, actor, the_scope, context=context, merchant_id=merchant_id))  # fmt: skip
    balance = write(request, lambda uow: money_views.merchant_balance(
        uow, actor, the_scope, merchant_id=merchant_id))  # fmt: skip
    return render(request, "merchant.html", actor, **detail, new_key=None, routing=routes,
                  balance=balance)  # fmt: skip


def review(
    request: Request, actor: SignedIn, merchant_id: str,
    action: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:  # fmt: skip
    the_scope = scope(request, actor)
    write(request, lambda uow: operations.review_merchant(
        uow, actor, the_scope, merchant_id=merchant_id, action=action, reason=reason.strip(),
    ))  # fmt: skip
    return redirect(f"/merchants/{merchant_id}")


async def rotate_key(request: Request, actor: SignedIn, app_id: str) -> Response:
    """Generate the new pair off the event loop, register it; the private key is shown once."""
    require_page(actor, Permission.ROTATE_KEYS)
    key = await run_in_threadpool(merchants.prepare_key, merchants.KeyAlgorithm.RSA, None)

    def work() -> Response:
        the_scope = scope(request, actor)
        added = write(request, lambda uow: operations.rotate_key(
            uow, actor, the_scope, app_id=app_id, key=key))  # fmt: skip
        detail = read(request, lambda uow: operations.merchant_detail(
            uow, actor, the_scope, added.merchant_id))  # fmt: skip
        private = key.private_key.reveal() if key.private_key else None
        return render(request, "merchant.html", actor, **detail,
                      new_key={"serial_no": added.serial_no, "private_key": private})  # fmt: skip

    response: Response = await run_in_threadpool(work)
    response.headers["Cache-Control"] = "no-store"  # the private key must not be cached
    return response


# --- orders ------------------------------------------------------------------------------
def order_search(
    request: Request, actor: SignedIn, q: str | None = None, status: str | None = None,
    after: str | None = None,
) -> Response:  # fmt: skip
    require_page(actor, Permission.VIEW_ORDERS)
    the_scope = scope(request, actor)
    wanted = _status(status, ORDER_STATUSES)
    text = (q or "").strip()[:64] or None
    ids = None if the_scope.merchant_ids is None else sorted(the_scope.merchant_ids)
    rows = read(request, lambda uow: payments.search_orders(
        uow, text=text, status=wanted, merchant_ids=ids, limit=ORDER_PAGE + 1,
        starting_after=after))  # fmt: skip
    more = len(rows) > ORDER_PAGE
    rows = rows[:ORDER_PAGE]
    template = "_orders_table.html" if request.headers.get("hx-request") else "orders.html"
    return render(request, template, actor, orders=rows, q=text or "", status=wanted,
                  statuses=ORDER_STATUSES, next_after=rows[-1]["id"] if more else None)  # fmt: skip


def order_page(request: Request, actor: SignedIn, order_id: str) -> Response:
    the_scope = scope(request, actor)
    detail = read(request, lambda uow: operations.order_page(uow, actor, the_scope, order_id))
    return render(request, "order.html", actor, **detail)


def refund(
    request: Request, actor: SignedIn, order_id: str,
    amount: Annotated[str, Form(max_length=20)], nonce: Annotated[str, Form(max_length=64)],
    reason: Annotated[str, Form(max_length=80)] = "",
) -> Response:  # fmt: skip
    the_scope = scope(request, actor)
    form = RefundForm(order_id, parse_yuan(amount), reason.strip() or None, nonce)
    operations.refund(transact(request), request.app.state.channel_context, actor, the_scope,
                      form)  # fmt: skip
    return redirect(f"/orders/{order_id}")


def resend(
    request: Request, actor: SignedIn, event_id: str,
    order_id: Annotated[str, Form(max_length=40)] = "",
) -> Response:  # fmt: skip
    the_scope = scope(request, actor)
    write(request, lambda uow: operations.resend_webhook(uow, actor, the_scope,
                                                         event_id=event_id))  # fmt: skip
    return redirect(f"/orders/{order_id}" if order_id.startswith("ord_") else "/orders")


# --- ledger ------------------------------------------------------------------------------
def ledger_accounts(
    request: Request, actor: SignedIn, owner: str | None = None, after: str | None = None
) -> Response:
    accounts = read(request, lambda uow: operations.ledger_accounts(
        uow, actor, owner=(owner or "").strip()[:64] or None, starting_after=after))  # fmt: skip
    more = len(accounts) >= 50
    return render(request, "ledger.html", actor, accounts=accounts, owner=owner or "",
                  next_after=accounts[-1].account.id if more else None)  # fmt: skip


def ledger_account(request: Request, actor: SignedIn, account_id: str) -> Response:
    detail = read(request, lambda uow: operations.ledger_account(uow, actor, account_id))
    return render(request, "account.html", actor, **detail)


def books_check(request: Request, actor: SignedIn) -> Response:
    report = read(request, lambda uow: operations.books_check(uow, actor))
    return render(request, "books.html", actor, report=report)
