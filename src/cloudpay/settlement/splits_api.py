"""Merchant API of splits (分账), signed like every merchant route: receivers bound in
advance, standing rules, delayed splits and unfreezing, and what a receiver holds.

A receiver with an e-account is paid by the settlement run like a merchant: binding it
records its settlement profile (T+1, no reserve) under the receiver's id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from cloudpay import ledger, merchants
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.errors import InvalidRequest
from cloudpay.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT, page_envelope
from cloudpay.settlement import repository, splits, splits_ledger
from cloudpay.settlement import split_repository as parts_sql
from cloudpay.settlement.api import settlement_context
from cloudpay.settlement.model import DEFAULT_AUTO_UNFREEZE_DAYS, DEFAULT_SPLIT_CAP_BP
from cloudpay.web.deps import TxRunner, Vault
from cloudpay.web.merchant_auth import MerchantCaller, MerchantRoute

router = APIRouter(prefix="/v1", tags=["splits"], route_class=MerchantRoute)
ReceiverId = Annotated[str, Path(pattern=r"^rcv_[0-9A-Za-z]{1,36}$")]
SplitId = Annotated[str, Path(pattern=r"^spl_[0-9A-Za-z]{1,36}$")]
OrderId = Annotated[str, Path(pattern=r"^ord_[0-9A-Za-z]{1,36}$")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(_Strict):
    bank_code: str = Field(pattern=r"^[A-Za-z0-9]{2,12}$")
    account_class: Literal["class_ii", "class_iii"]
    account_no: str = Field(min_length=8, max_length=32)


class ReceiverCreate(_Strict):
    kind: merchants.ReceiverKind
    name: str = Field(min_length=1, max_length=128)
    reference_id: str | None = Field(default=None, max_length=40)
    account: AccountIn | None = None


class RuleIn(_Strict):
    receiver_id: str = Field(pattern=r"^rcv_[0-9A-Za-z]{1,36}$")
    rate_bp: Decimal | None = None
    fixed_fen: StrictInt | None = None
    split_from: str | None = Field(default=None, pattern=r"^rcv_[0-9A-Za-z]{1,36}$")


class RulesSet(_Strict):
    cap_bp: Decimal = Decimal(DEFAULT_SPLIT_CAP_BP)
    auto_unfreeze_days: StrictInt = DEFAULT_AUTO_UNFREEZE_DAYS
    rules: list[RuleIn] = Field(default_factory=list, max_length=100)


class PartIn(_Strict):
    receiver_id: str = Field(pattern=r"^rcv_[0-9A-Za-z]{1,36}$")
    amount_fen: StrictInt


class SplitCreate(_Strict):
    order_id: str = Field(pattern=r"^ord_[0-9A-Za-z]{1,36}$")
    out_split_no: str = Field(pattern=r"^[0-9A-Za-z_\-|*@]{1,64}$")
    parts: list[PartIn] = Field(min_length=1, max_length=100)
    finish: StrictBool = False


def _scope(caller: MerchantCaller) -> str:
    return f"app:{caller.app_id}"


def receiver_view(receiver: merchants.Receiver) -> dict[str, Any]:
    return {
        "object": "split_receiver",
        "id": receiver.id,
        "kind": receiver.kind.value,
        "name": receiver.name,
        "reference_id": receiver.reference_id,
        "bank_code": receiver.bank_code,
        "account_class": receiver.account_class,
        "account_no": receiver.account_no_masked,
        "status": receiver.status,
        "created": receiver.created_at.isoformat(),
    }


def _settings_view(settings: merchants.SplitSettings) -> dict[str, Any]:
    return {
        "object": "split_rules",
        "merchant_id": settings.merchant_id,
        "cap_bp": format(settings.cap_bp.normalize(), "f"),
        "auto_unfreeze_days": settings.auto_unfreeze_days,
        "rules": list(settings.rules),
    }


def _bind(
    uow: UnitOfWork, vault: Any, merchant_id: str, body: ReceiverCreate, banks: list[str]
) -> merchants.Receiver:
    account = None
    if body.account is not None:
        if body.account.bank_code not in banks:
            raise InvalidRequest(
                f"no partner bank {body.account.bank_code!r}",
                code="bank_unknown",
                param="account.bank_code",
            )
        account_class = "II" if body.account.account_class == "class_ii" else "III"
        account = merchants.ReceiverAccount(
            body.account.bank_code, account_class, body.account.account_no
        )
    receiver = merchants.bind_receiver(
        uow,
        vault=vault,
        merchant_id=merchant_id,
        kind=body.kind,
        name=body.name,
        reference_id=body.reference_id,
        account=account,
    )
    # Opened now, before anything reads its balance: its account may carry a debt.
    splits_ledger.open_receiver_account(uow, receiver, "CNY")
    if account is not None:
        now = uow.clock.now()
        repository.upsert_profile(
            uow.connection,
            {
                "merchant_id": receiver.id,
                "bank_code": account.bank_code,
                "account_no": account.account_no,
                "account_class": account.account_class,
                "class_i_card": None,
                "account_name": receiver.name,
                "cycle": "T+1",
                "reserve_rate_centi_bp": 0,
                "reserve_hold_days": 0,
                "over_limit_policy": "carry_over",
                "created_at": now,
                "updated_at": now,
            },
        )
    return receiver


@router.post("/split-receivers", status_code=201)
async def bind_receiver(
    body: ReceiverCreate, request: Request, runner: TxRunner, vault: Vault, caller: MerchantCaller
) -> JSONResponse:
    """添加分账接收方: a store, agent, supplier (with its e-account), merchant or the platform."""
    banks = sorted(settlement_context(request).banks)

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 201, receiver_view(_bind(uow, vault, caller.merchant_id, body, banks))

    return await runner.write_idempotent(_scope(caller), work)


@router.get("/split-receivers")
def list_receivers(
    request: Request,
    runner: TxRunner,
    caller: MerchantCaller,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: str | None = None,
) -> dict[str, Any]:
    found = runner.read(
        lambda uow: merchants.list_receivers(
            uow, caller.merchant_id, limit=limit + 1, starting_after=starting_after
        )
    )
    return page_envelope([receiver_view(r) for r in found], limit=limit, url=request.url.path)


@router.get("/split-receivers/{receiver_id}")
def get_receiver(receiver_id: ReceiverId, runner: TxRunner, caller: MerchantCaller) -> Any:
    """The receiver and its balance: what it was split and gave back, what it holds."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        receiver = merchants.get_receiver(uow, receiver_id, merchant_id=caller.merchant_id)
        account = splits_ledger.open_receiver_account(uow, receiver, "CNY")
        totals = parts_sql.receiver_totals(uow.connection, receiver_id)
        balance = ledger.get_account(uow, account).balance
        own = receiver.kind not in (
            merchants.ReceiverKind.PLATFORM,
            merchants.ReceiverKind.MERCHANT,
        )
        return {
            **receiver_view(receiver),
            "balance": {
                "split_fen": totals["split"],
                "returned_fen": totals["return"],
                "held_for_settlement_fen": totals["split_unsettled"],
                "available_fen": balance.credits_posted
                - balance.debits_posted
                - balance.debits_pending
                if own
                else None,
                "in_transit_fen": balance.debits_pending if own else None,
            },
        }

    return runner.write(work)


@router.delete("/split-receivers/{receiver_id}")
def unbind_receiver(receiver_id: ReceiverId, runner: TxRunner, caller: MerchantCaller) -> Any:
    """删除分账接收方: no new split may name it (idempotent: unbinding twice is one unbind)."""
    return receiver_view(
        runner.write(
            lambda uow: merchants.unbind_receiver(
                uow, merchant_id=caller.merchant_id, receiver_id=receiver_id
            )
        )
    )


@router.put("/split-rules")
def set_rules(body: RulesSet, runner: TxRunner, caller: MerchantCaller) -> Any:
    """The merchant's cap, auto-unfreeze days and standing rules, replaced whole."""
    rules = [rule.model_dump() for rule in body.rules]
    for rule in rules:
        rule["rate_bp"] = None if rule["rate_bp"] is None else str(rule["rate_bp"])

    def work(uow: UnitOfWork) -> dict[str, Any]:
        settings = merchants.set_split_settings(
            uow,
            merchant_id=caller.merchant_id,
            cap_bp=body.cap_bp,
            auto_unfreeze_days=body.auto_unfreeze_days,
            rules=rules,
        )
        splits.check_standing_rules(settings.rules, settings.cap_bp)
        return _settings_view(settings)

    return runner.write(work)


@router.get("/split-rules")
def get_rules(runner: TxRunner, caller: MerchantCaller) -> Any:
    return _settings_view(
        runner.read(lambda uow: merchants.split_settings(uow, caller.merchant_id))
    )


@router.post("/splits", status_code=201)
async def create_split(body: SplitCreate, runner: TxRunner, caller: MerchantCaller) -> JSONResponse:
    """请求分账 on an order held for a delayed split; `finish` releases the rest."""
    request = splits.SplitRequest(
        caller.merchant_id,
        body.order_id,
        body.out_split_no,
        tuple((part.receiver_id, part.amount_fen) for part in body.parts),
        body.finish,
    )

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 201, splits.create_split(uow, request)

    return await runner.write_idempotent(_scope(caller), work)


@router.get("/splits/{split_id}")
def get_split(split_id: SplitId, runner: TxRunner, caller: MerchantCaller) -> Any:
    return runner.read(lambda uow: splits.get_split(uow, split_id, merchant_id=caller.merchant_id))


@router.post("/splits/{split_id}/unfreeze")
async def unfreeze_split(split_id: SplitId, runner: TxRunner, caller: MerchantCaller) -> Any:
    """解冻 the split's order: what was not split goes to the merchant."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 200, splits.unfreeze_split(uow, merchant_id=caller.merchant_id, split_id=split_id)

    return await runner.write_idempotent(_scope(caller), work)


@router.post("/orders/{order_id}/unfreeze")
async def unfreeze_order(order_id: OrderId, runner: TxRunner, caller: MerchantCaller) -> Any:
    """解冻 a held order with or without splits: the rest goes to the merchant."""

    def work(uow: UnitOfWork) -> tuple[int, dict[str, Any]]:
        return 200, splits.unfreeze_order(uow, merchant_id=caller.merchant_id, order_id=order_id)

    return await runner.write_idempotent(_scope(caller), work)
