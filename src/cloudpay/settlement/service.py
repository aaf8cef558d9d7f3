"""Settlement use cases; each takes the unit of work and none commits (the boundary does).

Configuration (fee plan versions, agent cost rates, settlement profiles), the settlement
journal of a batch of merchants, reserve releases, and reads (lines, balances).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from cloudpay import ledger, merchants
from cloudpay.db.unit_of_work import UnitOfWork
from cloudpay.kernel.business_time import day_bounds_utc
from cloudpay.kernel.errors import Conflict, InvalidRequest, NotFound
from cloudpay.kernel.ids import new_id
from cloudpay.kernel.money import parse_rate_bp
from cloudpay.ledger import Purpose, Transfer
from cloudpay.settlement import regional, repository, splits
from cloudpay.settlement.accounts import (
    AVAILABLE_CODE,
    COMMISSION_CODE,
    RESERVE_CODE,
    agent_owner,
    available_account,
    open_accounts,
    reserve_account,
)
from cloudpay.settlement.calendar import SettlementCycle
from cloudpay.settlement.daybook import MerchantDay, from_centi_bp, to_centi_bp
from cloudpay.settlement.model import FeePlan, RefundFeePolicy, require_hold_days
from cloudpay.settlement.run import AccountClass, OverLimitPolicy, ReservePolicy

# Backdating a fee plan would reprice orders already taken; a minute covers clock skew.
BACKDATE_TOLERANCE: Final = timedelta(minutes=1)


class SettlementRefused(RuntimeError):
    """A settlement journal the rules guarantee was refused by the ledger: a bug."""


# --- fee plans (immutable versions) -----------------------------------------------------
def create_fee_plan(
    uow: UnitOfWork,
    *,
    merchant_id: str,
    method: str,
    plan: FeePlan,
    refund_policy: RefundFeePolicy = RefundFeePolicy.PROPORTIONAL,
    effective_from: datetime | None = None,
) -> dict[str, Any]:
    """A new version of the merchant's price for `method`, in force from `effective_from`."""
    merchants.get_merchant(uow, merchant_id)
    now = uow.clock.now()
    starts = effective_from or now
    if starts < now - BACKDATE_TOLERANCE:
        raise InvalidRequest(
            "a fee plan cannot start in the past: it would reprice orders already taken",
            code="fee_plan_backdated",
            param="effective_from",
        )
    if repository.fee_plan_exists(uow.connection, merchant_id, method, starts):
        raise Conflict("a fee plan version already starts at that instant", param="effective_from")
    row = {
        "id": new_id("fpl"),
        "merchant_id": merchant_id,
        "method": method,
        "effective_from": starts,
        "effective_to": None,
        "rate_centi_bp": to_centi_bp(parse_rate_bp(plan.rate_bp), "rate_bp"),
        "fixed_fen": plan.fixed_fen,
        "min_fen": plan.min_fen,
        "max_fen": plan.max_fen,
        "surcharge_centi_bp": to_centi_bp(
            parse_rate_bp(plan.same_day_surcharge_bp), "same_day_surcharge_bp"
        ),
        "refund_policy": refund_policy.value,
        "created_at": now,
    }
    repository.insert_fee_plan(uow.connection, row)
    repository.close_versions(uow.connection, merchant_id, method)
    return row


def list_fee_plans(uow: UnitOfWork, merchant_id: str) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in repository.list_fee_plans(uow.connection, merchant_id)]


def set_agent_rate(uow: UnitOfWork, *, agent_id: str, method: str, cost_rate_bp: Any) -> None:
    """An agent's cost rate (结算底价) for `method`: what its parent charges it."""
    merchants.get_agent(uow, agent_id)
    rate = to_centi_bp(parse_rate_bp(cost_rate_bp), "cost_rate_bp")
    repository.upsert_agent_rate(
        uow.connection,
        {
            "agent_id": agent_id,
            "method": method,
            "cost_rate_centi_bp": rate,
            "updated_at": uow.clock.now(),
        },
    )


# --- settlement profiles ----------------------------------------------------------------
@dataclass(frozen=True)
class ProfileInput:
    bank_code: str
    account_no: str
    account_class: AccountClass
    account_name: str
    class_i_card: str | None = None
    cycle: str = "T+1"
    reserve_rate_bp: Any = 0
    reserve_hold_days: int = 90
    over_limit_policy: OverLimitPolicy = OverLimitPolicy.CARRY_OVER


def set_profile(
    uow: UnitOfWork, *, merchant_id: str, profile: ProfileInput, known_banks: Sequence[str]
) -> dict[str, Any]:
    """Where and when a merchant is paid: its e-account, cycle, reserve and limit policy."""
    merchants.get_merchant(uow, merchant_id)
    if profile.bank_code not in known_banks:
        raise InvalidRequest(
            f"no partner bank {profile.bank_code!r}", code="bank_unknown", param="bank_code"
        )
    if profile.account_class is AccountClass.CLASS_I:
        raise InvalidRequest(
            "the settlement e-account is Class II or III",
            code="account_class_invalid",
            param="account_class",
        )
    policy = profile.over_limit_policy
    if policy is OverLimitPolicy.REROUTE_TO_CLASS_I and not profile.class_i_card:
        raise InvalidRequest(
            "rerouting over the limit needs the bound Class I card",
            code="class_i_card_missing",
            param="class_i_card",
        )
    cycle = SettlementCycle.parse(profile.cycle)
    require_hold_days(profile.reserve_hold_days, "reserve_hold_days")
    now = uow.clock.now()
    row = {
        "merchant_id": merchant_id,
        "bank_code": profile.bank_code,
        "account_no": profile.account_no,
        "account_class": "II" if profile.account_class is AccountClass.CLASS_II else "III",
        "class_i_card": profile.class_i_card,
        "account_name": profile.account_name,
        "cycle": str(cycle),
        "reserve_rate_centi_bp": to_centi_bp(
            parse_rate_bp(profile.reserve_rate_bp), "reserve_rate_bp"
        ),
        "reserve_hold_days": profile.reserve_hold_days,
        "over_limit_policy": policy.value,
        "created_at": now,
        "updated_at": now,
    }
    repository.upsert_profile(uow.connection, row)
    return get_profile(uow, merchant_id)


def get_profile(uow: UnitOfWork, merchant_id: str) -> dict[str, Any]:
    row = repository.get_profile(uow.connection, merchant_id)
    if row is None:
        raise NotFound(f"merchant {merchant_id} has no settlement profile", param="merchant_id")
    return dict(row._mapping)


def reserve_policy_of(profile: dict[str, Any] | None) -> ReservePolicy:
    if profile is None:
        return _reserve_policy(0, ReservePolicy().hold_days)
    return _reserve_policy(profile["reserve_rate_centi_bp"], profile["reserve_hold_days"])


@functools.lru_cache(maxsize=256)
def _reserve_policy(rate_centi_bp: int, hold_days: int) -> ReservePolicy:
    """Policies are few and checking a rate is not free: a run builds each one once."""
    return ReservePolicy(from_centi_bp(rate_centi_bp), hold_days)


# --- the settlement journal -------------------------------------------------------------
def _batch_accounts(
    uow: UnitOfWork, days: Sequence[tuple[str, str, MerchantDay]]
) -> dict[tuple[str, str, str], str]:
    """Every account the batch's journal names, found or opened in bulk: a fixed number of
    statements per batch, however many merchants are new today."""
    keys: set[tuple[str, str, str]] = set()
    chart: set[tuple[Purpose, str, str]] = set()
    for merchant_id, currency, day in days:
        owner = ledger.merchant_owner(merchant_id)
        chart |= {(Purpose.MERCHANT_PENDING, owner, currency),
                  (Purpose.FEE_INCOME, ledger.PLATFORM, currency)}  # fmt: skip
        # Only what the journal names: a merchant without a reserve gets no reserve account.
        if day.result.net_fen:
            keys.add((owner, AVAILABLE_CODE, currency))
        if day.result.reserve_held_fen:
            keys.add((owner, RESERVE_CODE, currency))
        keys |= {(agent_owner(a), COMMISSION_CODE, currency) for a in day.commissions}
    ids = open_accounts(uow, keys)
    for (purpose, owner, currency), account in ledger.open_chart_accounts(uow, list(chart)).items():
        ids[(owner, purpose.value, currency)] = account.id
    return ids


def _merchant_transfers(
    ids: dict[tuple[str, str, str], str], line_id: str, merchant_id: str, day: MerchantDay,
    currency: str,
) -> list[Transfer]:  # fmt: skip
    """merchant_pending → fee income, agents' commission, reserve, merchant_available.

    A negative part (fee returns above the day's fees, refunds above its takings) runs the
    other way. The parts sum to gross − refunds, what the day left in merchant_pending."""
    owner = ledger.merchant_owner(merchant_id)
    pending = ids[(owner, Purpose.MERCHANT_PENDING.value, currency)]
    result = day.result
    fee_net = result.fees_fen - result.fee_returns_fen - day.commissions_fen
    parts: list[tuple[str, str, int]] = [
        ("fee", ids[(ledger.PLATFORM, Purpose.FEE_INCOME.value, currency)], fee_net)
    ]
    for level, (agent_id, amount) in enumerate(sorted(day.commissions.items())):
        account_id = ids[(agent_owner(agent_id), COMMISSION_CODE, currency)]
        parts.append((f"agent{level}", account_id, amount))  # user_data keeps the line id
    if result.reserve_held_fen:
        parts.append(("reserve", ids[(owner, RESERVE_CODE, currency)], result.reserve_held_fen))
    if result.net_fen:
        parts.append(("net", ids[(owner, AVAILABLE_CODE, currency)], result.net_fen))
    transfers = []
    for suffix, account_id, amount in parts:
        if not amount:
            continue
        debit, credit = (pending, account_id) if amount > 0 else (account_id, pending)
        transfers.append(Transfer(
            f"{line_id}:{suffix}", debit, credit, abs(amount), currency, "settlement",
            flags=ledger.LINKED, user_data=line_id,
        ))  # fmt: skip
    if transfers:
        transfers[-1].flags = 0  # the chain ends here: all of the merchant's parts or none
    return transfers


def settle_batch(
    uow: UnitOfWork,
    *,
    run_id: str,
    business_date: date,
    trade_date: date,
    days: Sequence[tuple[str, str, MerchantDay]],
    split_days: Mapping[str, splits.SplitDay] | None = None,
) -> int:
    """One journal for a batch of merchants' days (merchant_id, currency, day); returns how
    many were settled. A merchant already settled for `trade_date` is skipped. A merchant's
    split parts (`split_days`, 分账) go in its chain and are recorded against its line."""
    split_days = split_days or {}
    done = repository.settled_merchants(uow.connection, trade_date)
    todo = [entry for entry in days if entry[0] not in done]
    ids = _batch_accounts(uow, todo)
    rows: list[dict[str, Any]] = []
    chains: dict[str, list[Transfer]] = {}
    for merchant_id, currency, day in todo:
        line_id = new_id("stl")
        transfers = _merchant_transfers(ids, line_id, merchant_id, day, currency)
        if merchant_id in split_days:
            transfers = splits.chain_with_splits(
                uow, line_id=line_id, currency=currency, split_day=split_days[merchant_id],
                pending_account=ids[(ledger.merchant_owner(merchant_id),
                                     Purpose.MERCHANT_PENDING.value, currency)],
                merchant_transfers=transfers,
            )  # fmt: skip
        chains[line_id] = transfers
        rows.append(_line_row(uow, line_id, run_id, merchant_id, currency, day, business_date))
    refused = _post_journal(uow, chains)
    for row in rows:
        if row["id"] in refused:
            row["status"], row["refusal"] = "refused", refused[row["id"]]
        elif row["merchant_id"] in split_days:
            splits.record_settled(uow, split_days[row["merchant_id"]], row["id"])
    repository.insert_lines(uow.connection, rows)
    return len(rows)


def _post_journal(uow: UnitOfWork, chains: dict[str, list[Transfer]]) -> dict[str, str]:
    """Post the batch's journal in ledger-sized slices; each merchant's chain stays whole."""
    results: dict[str, str] = {}
    slice_: list[Transfer] = []
    for line_transfers in chains.values():
        if len(slice_) + len(line_transfers) > ledger.MAX_BATCH_SIZE:
            results.update({r.id: r.result for r in ledger.create_transfers(uow, slice_)})
            slice_ = []
        slice_.extend(line_transfers)
    results.update({r.id: r.result for r in ledger.create_transfers(uow, slice_)})
    refused: dict[str, str] = {}
    for line_id, transfers in chains.items():
        codes = [results[t.id] for t in transfers if results[t.id] not in ("ok", "exists")]
        first_cause = [c for c in codes if c != "linked_event_failed"] or codes
        if first_cause:
            refused[line_id] = first_cause[0]
    return refused


def _line_row(
    uow: UnitOfWork,
    line_id: str,
    run_id: str,
    merchant_id: str,
    currency: str,
    day: MerchantDay,
    business_date: date,
) -> dict[str, Any]:
    r = day.result
    return {
        "id": line_id,
        "run_id": run_id,
        "merchant_id": merchant_id,
        "trade_date": r.business_date,
        "business_date": business_date,
        "currency": currency,
        "orders_count": day.orders_count,
        "unpriced_orders": day.unpriced_orders,
        "gross_fen": r.gross_fen,
        "refunds_fen": r.refunds_fen,
        "fees_fen": r.fees_fen,
        "fee_returns_fen": r.fee_returns_fen,
        "channel_cost_fen": day.channel_cost_fen,
        "commissions_fen": day.commissions_fen,
        "commissions": json.dumps(day.commissions, sort_keys=True),
        "fee_plan_ids": json.dumps(day.fee_plan_ids),
        "splits_fen": r.splits_fen,
        "split_returns_fen": r.split_returns_fen,
        "reserve_held_fen": r.reserve_held_fen,
        "reserve_release_on": r.reserve_release_on,
        "reserve_released_on": None,
        "net_fen": r.net_fen,
        "status": "settled",
        "refusal": None,
        "created_at": uow.clock.now(),
    }


def release_reserves(uow: UnitOfWork, *, on: date, limit: int = 1_000) -> int:
    """Reserve holds due by `on` go back to the merchants' available balances."""
    due = repository.reserves_due(uow.connection, on, limit)
    transfers = []
    for line in due:
        reserve = reserve_account(uow, line.merchant_id, line.currency)
        available = available_account(uow, line.merchant_id, line.currency)
        transfers.append(
            Transfer(
                f"{line.id}:reserve_release",
                reserve,
                available,
                line.reserve_held_fen,
                line.currency,
                "reserve_release",
            )
        )
    for result in ledger.create_transfers(uow, transfers):
        if not result.ok:
            raise SettlementRefused(f"reserve release {result.id}: {result.result}")
    repository.mark_reserves_released(uow.connection, [line.id for line in due], on)
    return len(due)


# --- reads ------------------------------------------------------------------------------
def list_settlements(
    uow: UnitOfWork,
    *,
    merchant_id: str | None = None,
    business_date: date | None = None,
    limit: int = 20,
    starting_after: str | None = None,
) -> list[dict[str, Any]]:
    rows = repository.list_lines(
        uow.connection, merchant_id=merchant_id, business_date=business_date,
        limit=limit, starting_after=starting_after,
    )  # fmt: skip
    return [dict(row._mapping) for row in rows]


def get_settlement(
    uow: UnitOfWork, settlement_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A settlement line and the payouts made to its merchant on its business date."""
    row = repository.get_line(uow.connection, settlement_id)
    if row is None:
        raise NotFound(f"no settlement {settlement_id}", param="settlement_id")
    payouts = repository.payouts_of_merchant(uow.connection, row.merchant_id, row.business_date)
    same_day = [dict(p._mapping) for p in payouts if p.pay_date == row.business_date]
    return dict(row._mapping), same_day


# --- the regional closed-loop report (资金闭环) --------------------------------------------
def regional_flows(
    uow: UnitOfWork,
    *,
    start: date,
    end: date,
    period: regional.Period,
    policy: regional.LocalPolicy,
    banks: Sequence[str] = (),
) -> regional.RegionalReport:
    """Per partner bank: receipts held, settled there, custody at the end; and per period
    the share of payouts kept in local banks (rules in `settlement.regional`)."""
    if end < start:
        raise InvalidRequest("`to` is before `from`", code="report_window_invalid", param="to")
    if (end - start).days >= regional.MAX_REPORT_DAYS:
        raise InvalidRequest(
            f"a report covers at most {regional.MAX_REPORT_DAYS} days",
            code="report_window_invalid",
            param="to",
        )
    codes = {*banks, *repository.profile_bank_codes(uow.connection)}
    payouts = [
        regional.PayoutFlow(r.pay_date, r.bank_code, r.destination_kind,
                            r.destination_account, int(r.amount_fen))
        for r in repository.succeeded_payouts_between(uow.connection, start, end)
    ]  # fmt: skip
    codes |= {p.bank_code for p in payouts}
    return regional.regional_report(
        start=start, end=end, period=period, policy=policy, banks=codes,
        receipts_fen=dict(repository.receipts_by_bank(uow.connection, start, end)),
        custody_fen=_custody_at_end(uow, sorted(codes), end), payouts=payouts,
    )  # fmt: skip


def _custody_at_end(uow: UnitOfWork, bank_codes: Sequence[str], end: date) -> dict[str, int]:
    """Each bank's custody (备付金) balance in the ledger at the end of `end` (Shanghai);
    a bank whose custody was never mirrored has none."""
    _, end_utc = day_bounds_utc(end)
    as_of_ns = int(end_utc.timestamp()) * 1_000_000_000 - 1
    found: dict[str, int] = {}
    for code in bank_codes:
        for entry in ledger.list_accounts(uow, owner=ledger.bank_owner(code)):
            if entry.account.code == Purpose.BANK_RESERVE.value:
                balance = ledger.balance_as_of(uow, entry.account.id, as_of_ns)
                found[code] = balance.net_debit
    return found
