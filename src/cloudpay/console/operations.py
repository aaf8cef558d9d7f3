"""What console pages read and write about merchants, orders, webhooks and the ledger.

Reads filter by the actor's scope; writes check role and scope, then make the change through
the owning context and record the audit entry in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from cloudpay import ledger, merchants, payments
from cloudpay.console import repository
from cloudpay.console.model import Permission, Role, Scope, require
from cloudpay.console.schemas import RefundForm
from cloudpay.console.service import Actor, create_user, record_audit, require_in_scope
from cloudpay.db.unit_of_work import Transact, UnitOfWork
from cloudpay.kernel.errors import InvalidRequest
from cloudpay.kernel.vault import PersonalDataVault

T = TypeVar("T")
KEY_ROTATION_OVERLAP = timedelta(hours=24)  # the old key keeps verifying while clients switch
MERCHANT_PAGE = 50
MAX_REFUNDS_AUDITED = 100
FORM_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,43}$")
PHONE = re.compile(r"^1[0-9]{10}$")  # mainland mobile numbers
RESIDENT_ID = re.compile(r"^[0-9]{17}[0-9Xx]$")


def merchant_view(merchant: merchants.Merchant) -> dict[str, Any]:
    """What pages and audit entries show of a merchant: personal fields masked."""
    account = merchant.settlement_account
    return {
        "id": merchant.id, "agent_id": merchant.agent_id, "legal_name": merchant.legal_name,
        "unified_social_credit_code": merchant.unified_social_credit_code,
        "legal_person_name": merchant.legal_person_name,
        "legal_person_id_number": merchant.legal_person_id_number_masked,
        "contact_phone": merchant.contact_phone_masked, "mcc": merchant.mcc,
        "acquiring_mode": merchant.acquiring_mode.value, "status": merchant.status.value,
        "status_reason": merchant.status_reason,
        "settlement_account": None if account is None else {
            "bank_name": account.bank_name, "account_name": account.account_name,
            "account_number": account.account_number_masked,
        },
        "created_at": merchant.created_at, "updated_at": merchant.updated_at,
    }  # fmt: skip


# --- merchants ---------------------------------------------------------------------------
def merchant_list(
    uow: UnitOfWork, actor: Actor, scope: Scope, *, status: str | None, starting_after: str | None
) -> list[dict[str, Any]]:
    require(actor.role, Permission.VIEW_MERCHANTS)
    wanted = merchants.MerchantStatus(status) if status else None
    if scope.merchant_ids is None:
        page = merchants.list_merchants(uow, status=wanted, limit=MERCHANT_PAGE,
                                        starting_after=starting_after)  # fmt: skip
    else:
        ids = [merchant_id for merchant_id in sorted(scope.merchant_ids, reverse=True)
               if not starting_after or merchant_id < starting_after]  # fmt: skip
        found = (merchants.get_merchant(uow, merchant_id) for merchant_id in ids)
        page = [m for m in found if wanted is None or m.status is wanted][:MERCHANT_PAGE]
    return [merchant_view(merchant) for merchant in page]


def merchant_search(
    uow: UnitOfWork, actor: Actor, scope: Scope, *, vault: PersonalDataVault, text: str
) -> list[dict[str, Any]]:
    """By merchant id, or through the blind indexes by contact phone or the legal person's
    resident ID number (personal data is never compared in plain text)."""
    require(actor.role, Permission.VIEW_MERCHANTS)
    text = text.strip()
    if text.startswith("mch_"):
        found = [merchants.get_merchant(uow, text)] if scope.covers(text) else []
    elif PHONE.fullmatch(text):
        found = merchants.find_merchants(uow, vault=vault, contact_phone=text)
    elif RESIDENT_ID.fullmatch(text):
        found = merchants.find_merchants(uow, vault=vault, legal_person_id_number=text)
    else:
        raise InvalidRequest(
            "search by merchant id (mch_…), contact mobile number or legal person's ID number",
            code="parameter_invalid", param="q",
        )  # fmt: skip
    return [merchant_view(merchant) for merchant in found if scope.covers(merchant.id)]


def merchant_detail(
    uow: UnitOfWork, actor: Actor, scope: Scope, merchant_id: str
) -> dict[str, Any]:
    require(actor.role, Permission.VIEW_MERCHANTS)
    require_in_scope(scope, merchant_id)
    merchant = merchants.get_merchant(uow, merchant_id)
    apps = merchants.list_apps(uow, merchant_id, limit=100)
    return {
        "merchant": merchant_view(merchant),
        "stores": merchants.list_stores(uow, merchant_id, limit=100),
        "apps": [(app, merchants.list_app_keys(uow, app.id)) for app in apps],
        "reviews": merchants.list_reviews(uow, merchant_id),
    }


def review_merchant(
    uow: UnitOfWork, actor: Actor, scope: Scope, *, merchant_id: str, action: str,
    reason: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Approve or reject an application in the onboarding queue (进件审核)."""
    require(actor.role, Permission.REVIEW_MERCHANTS)
    require_in_scope(scope, merchant_id)
    if action not in ("approve", "reject"):
        raise InvalidRequest("action is approve or reject", code="parameter_invalid",
                             param="action")  # fmt: skip
    before = merchant_view(merchants.get_merchant(uow, merchant_id))
    reviewed = merchants.review_merchant(
        uow, merchant_id, action=merchants.ReviewAction(action),
        actor=f"console:{actor.email}", reason=reason or None,
    )  # fmt: skip
    after = merchant_view(reviewed)
    record_audit(uow, actor, action=f"merchant.{action}", object_type="merchant",
                 object_id=merchant_id, before=before, after=after)  # fmt: skip
    return after


def rotate_key(
    uow: UnitOfWork, actor: Actor, scope: Scope, *, app_id: str, key: merchants.PreparedKey
) -> merchants.AppKeyInfo:
    """A new active key for the app (generated by `merchants.prepare_key` before the
    transaction); the previous one retires after the overlap."""
    require(actor.role, Permission.ROTATE_KEYS)
    app = merchants.get_app(uow, app_id)
    require_in_scope(scope, app.merchant_id)
    before = [_key_view(k) for k in merchants.list_app_keys(uow, app_id)]
    added = merchants.add_app_key(uow, app_id, key=key, overlap=KEY_ROTATION_OVERLAP)
    after = [_key_view(k) for k in merchants.list_app_keys(uow, app_id)]
    record_audit(uow, actor, action="app_key.rotate", object_type="app", object_id=app_id,
                 before={"keys": before}, after={"keys": after})  # fmt: skip
    return added


def _key_view(key: merchants.AppKeyInfo) -> dict[str, Any]:
    return {"serial_no": key.serial_no, "status": key.status, "retire_at": key.retire_at}


# --- orders, refunds, webhooks -----------------------------------------------------------
def order_page(uow: UnitOfWork, actor: Actor, scope: Scope, order_id: str) -> dict[str, Any]:
    require(actor.role, Permission.VIEW_ORDERS)
    detail = payments.order_detail(uow, order_id=order_id)
    require_in_scope(scope, detail["order"]["merchant_id"])
    transfers = ledger.lookup_transfers(uow, detail["ledger_transfer_ids"])
    return {**detail, "transfers": transfers}


def refund(
    transact: Transact, channel_context: payments.ChannelContext, actor: Actor, scope: Scope,
    form: RefundForm,
) -> payments.RefundRow:  # fmt: skip
    """Refund from the console. The audit entry is written in the very transaction that opens
    the refund (the flow's first write), so no refund exists without its entry."""
    require(actor.role, Permission.REFUND_ORDERS)
    if not FORM_NONCE.fullmatch(form.form_nonce):
        raise InvalidRequest("the form is stale; reload it", code="form_invalid", param="nonce")
    order = transact(lambda uow: payments.get_order(uow, order_id=form.order_id))
    require_in_scope(scope, order.merchant_id)
    before = {"status": order.status.value, "amount_refunded": order.refunded_amount}

    def audited(work: Callable[[UnitOfWork], T], /) -> T:
        def work_and_audit(uow: UnitOfWork) -> T:
            result = work(uow)
            if isinstance(result, payments.RefundRow) and not _audited_already(
                uow, order.id, result.id
            ):
                after = {"refund_id": result.id, "amount": result.amount,
                         "status": result.status.value, "reason": result.reason}  # fmt: skip
                record_audit(uow, actor, action="order.refund", object_type="order",
                             object_id=order.id, before=before, after=after)  # fmt: skip
            return result

        return transact(work_and_audit)

    return payments.refund_order(
        audited, channel_context, app_id=order.app_id, order_id=order.id,
        out_refund_no=f"console-{form.form_nonce}", amount=form.amount_fen, reason=form.reason,
    )  # fmt: skip


def _audited_already(uow: UnitOfWork, order_id: str, refund_id: str) -> bool:
    """The flow returns the refund from later transactions too (and a double submit returns
    the first one): only the transaction that opened it gets the entry."""
    entries = repository.list_audit(uow.connection, limit=MAX_REFUNDS_AUDITED,
                                    starting_after=None, object_id=order_id)  # fmt: skip
    return any((entry["after"] or {}).get("refund_id") == refund_id for entry in entries)


def resend_webhook(uow: UnitOfWork, actor: Actor, scope: Scope, *, event_id: str) -> dict[str, Any]:
    require(actor.role, Permission.RESEND_WEBHOOKS)
    require_in_scope(scope, payments.event_merchant_id(uow, event_id=event_id))
    view = payments.resend_event(uow, event_id=event_id)
    record_audit(uow, actor, action="webhook.resend", object_type="event", object_id=event_id,
                 before=None, after={"delivery_status": view["delivery"]["status"]})  # fmt: skip
    return view


# --- ledger ------------------------------------------------------------------------------
def ledger_accounts(
    uow: UnitOfWork, actor: Actor, *, owner: str | None, starting_after: str | None
) -> list[ledger.AccountWithBalance]:
    require(actor.role, Permission.VIEW_LEDGER)
    return ledger.list_accounts(uow, owner=owner or None, limit=50, starting_after=starting_after)


def ledger_account(uow: UnitOfWork, actor: Actor, account_id: str) -> dict[str, Any]:
    require(actor.role, Permission.VIEW_LEDGER)
    return {
        "account": ledger.get_account(uow, account_id),
        "statement": ledger.account_statement(uow, account_id, limit=50),
    }


def books_check(uow: UnitOfWork, actor: Actor) -> ledger.CheckReport:
    require(actor.role, Permission.VIEW_LEDGER)
    return ledger.check_books(uow)


# --- the demo ----------------------------------------------------------------------------
DEMO_PASSWORD_SUFFIX = "-demo-2026"  # noqa: S105 — printed by the demo, dev databases only


def create_demo_users(
    uow: UnitOfWork, *, merchant_id: str, agent_id: str
) -> list[tuple[str, str, str]]:
    """One user per role for the demo city: (role, email, password). Existing users are kept
    (the demo may run twice on one database) and returned with the same password."""
    created = []
    for role in Role:
        email = f"{role.value.replace('_', '-')}@demo.cloudpay.local"
        password = f"{role.value}{DEMO_PASSWORD_SUFFIX}"
        if repository.find_user_by_email(uow.connection, email) is None:
            create_user(uow, vault=None, email=email, password=password, role=role,
                        merchant_id=merchant_id if role is Role.MERCHANT else None,
                        agent_id=agent_id if role is Role.AGENT else None)  # fmt: skip
        created.append((role.value, email, password))
    return created
