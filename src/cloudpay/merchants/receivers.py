"""Split receivers (分账接收方) and a merchant's split configuration, bound in advance.

WeChat Pay and Alipay both require a merchant to add a receiver before splitting to it
(添加分账接收方, https://pay.weixin.qq.com/wiki/doc/api/allocation.php?chapter=27_3&index=4)
and cap what may leave an order (30 % by default). Payments checks an order's split
instruction here when the order is created; settlement plans and moves the money.

| code                         | status | when |
|------------------------------|--------|------|
| `split_receiver_invalid`     | 400 | a receiver without what its kind needs |
| `split_receiver_not_found`   | 404 | a receiver id that is not this merchant's |
| `split_instruction_invalid`  | 400 | an order's `split` neither `delayed` nor `now` + parts |
| `split_receiver_unbound`     | 400 | a part for a receiver not bound (or unbound since) |
| `split_over_cap`             | 400 | the parts exceed the merchant's cap on the order |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any, Final

from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.crypto import normalize_card_number
from cloudpay.kernel.errors import InvalidRequest, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.kernel.masking import mask_card_number
from cloudpay.kernel.money import apply_rate_bp, parse_rate_bp
from cloudpay.kernel.vault import PersonalDataVault, PersonalField
from cloudpay.merchants import receivers_repository as repository
from cloudpay.merchants.model import check_bank_account_number
from cloudpay.merchants.service import get_agent, get_merchant, get_store

# The same limits as settlement's split rules (cloudpay.settlement.model), which sit above
# this context and so cannot be imported here.
MAX_SPLIT_RECEIVERS: Final = 50
DEFAULT_SPLIT_CAP_BP: Final = Decimal(3_000)
DEFAULT_AUTO_UNFREEZE_DAYS: Final = 30
MAX_AUTO_UNFREEZE_DAYS: Final = 180  # WeChat holds delayed-split funds at most 180 days
RECEIVER_ACCOUNT_NUMBER: Final = PersonalField(
    "split_receivers.account_no", normalize_card_number, mask_card_number
)


class ReceiverKind(StrEnum):
    STORE = "store"  # one of the merchant's stores (franchise store, 门店)
    AGENT = "agent"  # the merchant's agent (服务商/代理商)
    SUPPLIER = "supplier"  # an outside business, paid to its e-account
    MERCHANT = "merchant"  # another merchant on the platform
    PLATFORM = "platform"  # the platform itself: its income account


class SplitMode(StrEnum):
    NOW = "now"  # parts given with the order, split when it settles
    DELAYED = "delayed"  # held until POST /v1/splits and unfreeze (profit_sharing=true)


class ReceiverInvalid(InvalidRequest):
    default_code = "split_receiver_invalid"


class ReceiverNotFound(NotFound):
    default_code = "split_receiver_not_found"


class SplitInstructionInvalid(InvalidRequest):
    default_code = "split_instruction_invalid"


@dataclass(frozen=True, slots=True)
class Receiver:
    id: str
    merchant_id: str
    kind: ReceiverKind
    name: str
    reference_id: str | None
    bank_code: str | None
    account_class: str | None
    account_no_masked: str | None
    status: str
    created_at: datetime

    @property
    def bound(self) -> bool:
        return self.status == "bound"


@dataclass(frozen=True, slots=True)
class ReceiverAccount:
    """Where a receiver is paid: its Class II/III e-account at a partner bank."""

    bank_code: str
    account_class: str  # II or III
    account_no: str


@dataclass(frozen=True, slots=True)
class SplitSettings:
    """The cap on others' share, the days a delayed split waits, the standing rules."""

    merchant_id: str
    cap_bp: Decimal
    auto_unfreeze_days: int
    rules: tuple[Mapping[str, Any], ...]


def _receiver(row: Any) -> Receiver:
    return Receiver(
        row.id,
        row.merchant_id,
        ReceiverKind(row.kind),
        row.name,
        row.reference_id,
        row.bank_code,
        row.account_class,
        row.account_no_masked,
        row.status,
        row.created_at,
    )


def _check_reference(
    uow: UnitOfWork, merchant_id: str, kind: ReceiverKind, reference_id: str | None
) -> None:
    if kind in (ReceiverKind.SUPPLIER, ReceiverKind.PLATFORM):
        if reference_id is not None:
            raise ReceiverInvalid(f"a {kind} receiver has no reference_id", param="reference_id")
        return
    if reference_id is None:
        raise ReceiverInvalid(f"a {kind} receiver needs its reference_id", param="reference_id")
    if kind is ReceiverKind.STORE and get_store(uow, reference_id).merchant_id != merchant_id:
        raise ReceiverInvalid("the store is not this merchant's", param="reference_id")
    if kind is ReceiverKind.AGENT:
        get_agent(uow, reference_id, param="reference_id")
    if kind is ReceiverKind.MERCHANT:
        if reference_id == merchant_id:
            raise ReceiverInvalid("a merchant cannot split to itself", param="reference_id")
        get_merchant(uow, reference_id)


def bind_receiver(
    uow: UnitOfWork,
    *,
    vault: PersonalDataVault,
    merchant_id: str,
    kind: ReceiverKind,
    name: str,
    reference_id: str | None = None,
    account: ReceiverAccount | None = None,
) -> Receiver:
    """Bind a receiver (添加分账接收方); a supplier must bring the e-account it is paid to."""
    get_merchant(uow, merchant_id)
    _check_reference(uow, merchant_id, kind, reference_id)
    if kind is ReceiverKind.SUPPLIER and account is None:
        raise ReceiverInvalid("a supplier needs its e-account", param="account")
    sealed = None
    if account is not None:
        if kind in (ReceiverKind.MERCHANT, ReceiverKind.PLATFORM):
            raise ReceiverInvalid(f"a {kind} receiver is paid as itself", param="account")
        digits = check_bank_account_number(account.account_no, param="account.account_no").digits
        sealed = vault.seal(RECEIVER_ACCOUNT_NUMBER, digits)
    now = uow.clock.now()
    receiver_id = new_id("rcv")
    repository.insert_receiver(
        uow.connection,
        {
            "id": receiver_id,
            "merchant_id": merchant_id,
            "kind": kind.value,
            "name": name,
            "reference_id": reference_id,
            "bank_code": account.bank_code if account else None,
            "account_class": account.account_class if account else None,
            "account_no_encrypted": sealed.token if sealed else None,
            "account_no_masked": sealed.masked if sealed else None,
            "status": "bound",
            "created_at": now,
            "updated_at": now,
        },
    )
    return get_receiver(uow, receiver_id)


def get_receiver(uow: UnitOfWork, receiver_id: str, *, merchant_id: str | None = None) -> Receiver:
    row = repository.load_receiver(uow.connection, receiver_id)
    if row is None or (merchant_id is not None and row.merchant_id != merchant_id):
        raise ReceiverNotFound(f"no split receiver {receiver_id}", param="receiver_id")
    return _receiver(row)


def get_receivers(uow: UnitOfWork, receiver_ids: Sequence[str]) -> dict[str, Receiver]:
    rows = repository.load_receivers(uow.connection, sorted(set(receiver_ids)))
    return {row.id: _receiver(row) for row in rows}


def list_receivers(
    uow: UnitOfWork, merchant_id: str, *, limit: int, starting_after: str | None = None
) -> list[Receiver]:
    rows = repository.list_receivers(
        uow.connection, merchant_id, limit=limit, starting_after=starting_after
    )
    return [_receiver(row) for row in rows]


def unbind_receiver(uow: UnitOfWork, *, merchant_id: str, receiver_id: str) -> Receiver:
    """Unbind (删除分账接收方): no new split names it; what it was owed is still paid."""
    receiver = get_receiver(uow, receiver_id, merchant_id=merchant_id)
    settings = split_settings(uow, merchant_id)
    if any(rule.get("receiver_id") == receiver_id for rule in settings.rules):
        raise ReceiverInvalid(
            "a standing split rule names this receiver: change the rules first",
            param="receiver_id",
        )
    if receiver.bound:
        repository.set_receiver_status(uow.connection, receiver_id, "unbound", uow.clock.now())
    return get_receiver(uow, receiver_id)


def bound_receiver_ids(uow: UnitOfWork, merchant_id: str) -> frozenset[str]:
    return frozenset(repository.bound_receiver_ids(uow.connection, merchant_id))


# --- the merchant's split configuration -------------------------------------------------
def split_settings(uow: UnitOfWork, merchant_id: str) -> SplitSettings:
    row = repository.load_config(uow.connection, merchant_id)
    if row is None:
        return SplitSettings(merchant_id, DEFAULT_SPLIT_CAP_BP, DEFAULT_AUTO_UNFREEZE_DAYS, ())
    cap = Decimal(row.cap_centi_bp) / 100
    return SplitSettings(merchant_id, cap, row.auto_unfreeze_days, tuple(row.rules))


def standing_rules_by_merchant(uow: UnitOfWork) -> dict[str, SplitSettings]:
    """Every merchant that has standing split rules, with its settings."""
    return {
        row.merchant_id: SplitSettings(
            row.merchant_id,
            Decimal(row.cap_centi_bp) / 100,
            row.auto_unfreeze_days,
            tuple(row.rules),
        )
        for row in repository.load_configs_with_rules(uow.connection)
    }


def _normalized_rule(rule: Mapping[str, Any], bound: frozenset[str]) -> dict[str, Any]:
    receiver_id = rule.get("receiver_id")
    if receiver_id not in bound:
        raise InvalidRequest(
            f"{receiver_id} is not a bound receiver", code="split_receiver_unbound", param="rules"
        )
    rate, fixed = rule.get("rate_bp"), rule.get("fixed_fen")
    if (rate is None) == (fixed is None):
        raise InvalidRequest(
            "a rule has either rate_bp or fixed_fen", code="split_rule_invalid", param="rules"
        )
    return {
        "receiver_id": receiver_id,
        "rate_bp": None if rate is None else format(parse_rate_bp(str(rate)), "f"),
        "fixed_fen": fixed,
        "split_from": rule.get("split_from"),
    }


def set_split_settings(
    uow: UnitOfWork,
    *,
    merchant_id: str,
    cap_bp: Decimal,
    auto_unfreeze_days: int,
    rules: Sequence[Mapping[str, Any]],
) -> SplitSettings:
    """Replace the merchant's settings; settlement checks the rules' chain and cap first."""
    get_merchant(uow, merchant_id)
    cap = parse_rate_bp(str(cap_bp))
    if cap != cap.quantize(Decimal("0.01")):
        raise InvalidRequest("cap_bp has at most 2 decimals", code="invalid_rate", param="cap_bp")
    if not 0 <= auto_unfreeze_days <= MAX_AUTO_UNFREEZE_DAYS:
        raise InvalidRequest(
            f"auto_unfreeze_days must be 0 to {MAX_AUTO_UNFREEZE_DAYS}",
            code="parameter_invalid",
            param="auto_unfreeze_days",
        )
    bound = bound_receiver_ids(uow, merchant_id)
    normalized = [_normalized_rule(rule, bound) for rule in rules]
    repository.upsert_config(
        uow.connection,
        {
            "merchant_id": merchant_id,
            "cap_centi_bp": int(cap * 100),
            "auto_unfreeze_days": auto_unfreeze_days,
            "rules": normalized,
            "updated_at": uow.clock.now(),
        },
    )
    return split_settings(uow, merchant_id)


# --- an order's split instruction --------------------------------------------------------
def split_cap_fen(amount_fen: int, cap_bp: Decimal) -> int:
    """The most that may leave an order of `amount_fen`, rounded down so it is never exceeded."""
    return apply_rate_bp(amount_fen, cap_bp, rounding=ROUND_DOWN)


def check_split_parts(
    uow: UnitOfWork,
    *,
    merchant_id: str,
    amount_fen: int,
    parts: Sequence[Mapping[str, Any]],
    already_split_fen: int = 0,
    param: str = "split.parts",
) -> list[dict[str, Any]]:
    """Parts [{receiver_id, amount_fen}] checked in order of precedence: count, duplicates,
    amounts, receivers bound, the cap (with what was split before)."""
    if not parts or len(parts) > MAX_SPLIT_RECEIVERS:
        raise InvalidRequest(
            f"1 to {MAX_SPLIT_RECEIVERS} parts", code="split_receivers_too_many", param=param
        )
    receiver_ids = [str(part["receiver_id"]) for part in parts]
    if len(set(receiver_ids)) != len(receiver_ids):
        raise InvalidRequest(
            "a receiver is named twice", code="split_receiver_duplicate", param=param
        )
    amounts = [part["amount_fen"] for part in parts]
    if any(isinstance(a, bool) or not isinstance(a, int) or a <= 0 for a in amounts):
        raise InvalidRequest("each part is at least 1 fen", code="amount_invalid", param=param)
    bound = bound_receiver_ids(uow, merchant_id)
    for receiver_id in receiver_ids:
        if receiver_id not in bound:
            raise InvalidRequest(
                f"{receiver_id} is not a bound receiver",
                code="split_receiver_unbound",
                param=param,
            )
    cap_fen = split_cap_fen(amount_fen, split_settings(uow, merchant_id).cap_bp)
    if already_split_fen + sum(amounts) > cap_fen:
        raise InvalidRequest(
            f"the parts exceed the cap of {cap_fen} fen on this order",
            code="split_over_cap",
            param=param,
        )
    return [{"receiver_id": r, "amount_fen": a} for r, a in zip(receiver_ids, amounts, strict=True)]


def check_order_split(
    uow: UnitOfWork, *, merchant_id: str, amount_fen: int, split: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """An order's split instruction, checked and normalised (None: the standing rules)."""
    if split is None:
        return None
    mode = split.get("mode")
    if mode == SplitMode.DELAYED and not split.get("parts"):
        return {"mode": SplitMode.DELAYED.value}
    if mode != SplitMode.NOW or not isinstance(split.get("parts"), list):
        raise SplitInstructionInvalid(
            'split is {"mode": "delayed"} or {"mode": "now", "parts": [...]}', param="split"
        )
    parts = check_split_parts(
        uow, merchant_id=merchant_id, amount_fen=amount_fen, parts=split["parts"]
    )
    return {"mode": SplitMode.NOW.value, "parts": parts}
