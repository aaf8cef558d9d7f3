"""Wire shapes of the marketing API. Amounts are integer fen, rates basis points, times UTC
ISO 8601 (an offset is required). Shape is checked here; the rules in `model.py`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from cloudpay.marketing.abuse_model import AbuseRule, Decision, Flag, MerchantPerson, MerchantRole
from cloudpay.marketing.errors import InvalidCampaign
from cloudpay.marketing.lottery import DrawResult, LotteryEntry
from cloudpay.marketing.model import (
    MAX_ELIGIBLE_MERCHANTS,
    MAX_ELIGIBLE_PEOPLE,
    MAX_RED_PACKET_PARTS,
    MAX_RED_PACKET_TOTAL_FEN,
    MAX_STOCK,
    Audience,
    Campaign,
    CampaignKind,
    CampaignStats,
    Caps,
    Claim,
    DiscountRule,
    FunderKind,
    Issuance,
    MerchantScope,
    Quote,
    RedPacket,
    RedPacketShare,
    RuleKind,
    SplitMode,
    Windows,
)
from cloudpay.marketing.points_model import EarnRule, MultiplierWindow, PointsLot
from cloudpay.marketing.red_packets import RedPacketDraft
from cloudpay.marketing.service import CampaignDraft, WalletEntry
from cloudpay.marketing.stats import Incremental, IncrementalView

_ID = r"^[A-Za-z0-9_\-]{1,40}$"
_CODE = r"^\d{4}$"
_DISTRICT = r"^\d{6}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RuleIn(Strict):
    kind: RuleKind
    discount_fen: StrictInt = Field(0, ge=0, le=10**9)
    threshold_fen: StrictInt = Field(0, ge=0, le=10**11)
    percent_bp: StrictInt = Field(0, ge=0, le=10_000)
    cap_fen: StrictInt = Field(0, ge=0, le=10**9)

    def to_rule(self) -> DiscountRule:
        return DiscountRule(
            self.kind, self.discount_fen, self.threshold_fen, self.percent_bp, self.cap_fen
        )


class EligibleMerchantsIn(Strict):
    merchant_ids: list[str] = Field(default_factory=list, max_length=MAX_ELIGIBLE_MERCHANTS)
    mccs: list[str] = Field(default_factory=list, max_length=100)
    districts: list[str] = Field(default_factory=list, max_length=100)

    def to_scope(self) -> MerchantScope:
        for value in self.merchant_ids:
            _require_pattern(value, _ID, "eligible_merchants.merchant_ids")
        for value in self.mccs:
            _require_pattern(value, _CODE, "eligible_merchants.mccs")
        for value in self.districts:
            _require_pattern(value, _DISTRICT, "eligible_merchants.districts")
        return MerchantScope(
            frozenset(self.merchant_ids), frozenset(self.mccs), frozenset(self.districts)
        )


def _require_pattern(value: str, pattern: str, param: str) -> None:
    if not re.fullmatch(pattern, value):
        raise InvalidCampaign(f"{param} holds a malformed entry", param=param)


class CapsIn(Strict):
    per_person_per_day: StrictInt = Field(1, ge=1, le=100)
    per_person_total: StrictInt = Field(1, ge=1, le=1_000)


class CampaignCreate(Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00]*$")
    funder_kind: FunderKind
    funder_id: str = Field(min_length=1, max_length=48, pattern=_ID)
    kind: CampaignKind
    currency: str = Field("CNY", min_length=3, max_length=3)
    rule: RuleIn
    stock: StrictInt = Field(ge=1, le=MAX_STOCK)
    claim_starts_at: AwareDatetime
    claim_ends_at: AwareDatetime
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    eligible_merchants: EligibleMerchantsIn = Field(default_factory=EligibleMerchantsIn)
    audience: Audience = Audience.ALL
    people: list[str] = Field(default_factory=list, max_length=MAX_ELIGIBLE_PEOPLE)
    caps: CapsIn = Field(default_factory=CapsIn)
    stackable: StrictBool = False
    issuance: Issuance = Issuance.FIRST_COME

    def to_draft(self) -> CampaignDraft:
        for person in self.people:
            _require_pattern(person, _ID, "people")
        windows = Windows(
            self.claim_starts_at, self.claim_ends_at, self.valid_from, self.valid_until
        )
        return CampaignDraft(
            name=self.name, funder_kind=self.funder_kind, funder_id=self.funder_id,
            kind=self.kind, currency=self.currency, rule=self.rule.to_rule(), stock=self.stock,
            windows=windows, scope=self.eligible_merchants.to_scope(), audience=self.audience,
            people=self.people,
            caps=Caps(self.caps.per_person_per_day, self.caps.per_person_total),
            stackable=self.stackable, issuance=self.issuance,
        )  # fmt: skip


class FundingCreate(Strict):
    amount: StrictInt = Field(ge=1, le=10**13)
    currency: str = Field("CNY", min_length=3, max_length=3)


class QuoteRequest(Strict):
    merchant_id: str = Field(min_length=1, max_length=40, pattern=_ID)
    amount: StrictInt = Field(ge=1, le=10**11)
    currency: str = Field("CNY", min_length=3, max_length=3)
    district: str | None = Field(None, pattern=_DISTRICT)  # where the merchant's store is
    claim_ids: list[str] | None = Field(None, max_length=5)


class ClaimCreate(Strict):
    citizen_id: str = Field(min_length=1, max_length=40, pattern=_ID)


def _iso(value: datetime) -> str:
    return value.isoformat()


def rule_view(rule: DiscountRule) -> dict[str, Any]:
    return {
        "kind": rule.kind.value, "discount_fen": rule.discount_fen,
        "threshold_fen": rule.threshold_fen, "percent_bp": rule.percent_bp,
        "cap_fen": rule.cap_fen, "max_value_fen": rule.max_value_fen,
    }  # fmt: skip


def campaign_view(campaign: Campaign) -> dict[str, Any]:
    windows, scope = campaign.windows, campaign.scope
    return {
        "object": "campaign", "id": campaign.id, "name": campaign.name,
        "funder": {"kind": campaign.funder_kind.value, "id": campaign.funder_id},
        "kind": campaign.kind.value, "currency": campaign.currency,
        "rule": rule_view(campaign.rule), "stock": campaign.stock, "issued": campaign.issued,
        "committed_fen": campaign.committed_fen, "funded_fen": campaign.funded_fen,
        "returned_fen": campaign.returned_fen,
        "claim_starts_at": _iso(windows.claim_starts_at),
        "claim_ends_at": _iso(windows.claim_ends_at),
        "valid_from": _iso(windows.valid_from), "valid_until": _iso(windows.valid_until),
        "eligible_merchants": {
            "merchant_ids": sorted(scope.merchant_ids), "mccs": sorted(scope.mccs),
            "districts": sorted(scope.districts),
        },
        "audience": campaign.audience.value,
        "caps": {
            "per_person_per_day": campaign.caps.per_person_per_day,
            "per_person_total": campaign.caps.per_person_total,
        },
        "stackable": campaign.stackable, "status": campaign.status.value,
        "budget_account_id": campaign.budget_account_id,
        "created_at": _iso(campaign.created_at), "issuance": campaign.issuance.value,
        "draw_seed": campaign.draw_seed,
        "drawn_at": None if campaign.drawn_at is None else _iso(campaign.drawn_at),
    }  # fmt: skip


def claim_view(claim: Claim) -> dict[str, Any]:
    return {
        "object": "claim", "id": claim.id, "campaign_id": claim.campaign_id,
        "citizen_id": claim.citizen_id, "status": claim.status.value,
        "max_value_fen": claim.max_value_fen, "order_id": claim.order_id,
        "created_at": _iso(claim.created_at),
    }  # fmt: skip


def _wallet_item(entry: WalletEntry) -> dict[str, Any]:
    campaign = entry.campaign
    return {
        **claim_view(entry.claim),
        "campaign_name": campaign.name, "currency": campaign.currency,
        "rule": rule_view(campaign.rule), "stackable": campaign.stackable,
        "valid_from": _iso(campaign.windows.valid_from),
        "valid_until": _iso(campaign.windows.valid_until),
    }  # fmt: skip


def wallet_view(citizen_id: str, entries: list[WalletEntry]) -> dict[str, Any]:
    """Vouchers and coupons apart, as a wallet app shows them."""
    items = [(e.campaign.kind, _wallet_item(e)) for e in entries]
    return {
        "object": "wallet",
        "citizen_id": citizen_id,
        "vouchers": [item for kind, item in items if kind is CampaignKind.VOUCHER],
        "coupons": [item for kind, item in items if kind is CampaignKind.COUPON],
    }


def stats_view(campaign_id: str, stats: CampaignStats) -> dict[str, Any]:
    leverage = stats.leverage
    return {
        "object": "campaign_stats", "campaign_id": campaign_id,
        "claims_by_status": dict(sorted(stats.claims_by_status.items())),
        "redemptions": stats.redemptions, "subsidy_fen": stats.subsidy_fen,
        "driven_amount_fen": stats.driven_amount_fen,
        "leverage": None if leverage is None else str(leverage),
    }  # fmt: skip


def quote_view(citizen_id: str, quote: Quote) -> dict[str, Any]:
    return {
        "object": "quote", "citizen_id": citizen_id, "amount_fen": quote.amount_fen,
        "discount_fen": quote.discount_fen, "payable_fen": quote.payable_fen,
        "lines": [
            {"claim_id": line.claim_id, "campaign_id": line.campaign_id,
             "discount_fen": line.discount_fen}
            for line in quote.lines
        ],
    }  # fmt: skip


class RedPacketCreate(Strict):
    funder_account_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")
    total_fen: StrictInt = Field(ge=1, le=MAX_RED_PACKET_TOTAL_FEN)
    count: StrictInt = Field(ge=1, le=MAX_RED_PACKET_PARTS)
    mode: SplitMode
    max_part_fen: StrictInt = Field(ge=1, le=MAX_RED_PACKET_TOTAL_FEN)
    claim_window_hours: StrictInt = Field(24, ge=1, le=24 * 7)
    return_after_hours: StrictInt = Field(24, ge=1, le=24 * 30)
    currency: str = Field("CNY", min_length=3, max_length=3)

    def to_draft(self) -> RedPacketDraft:
        return RedPacketDraft(
            funder_account_id=self.funder_account_id, total_fen=self.total_fen,
            count=self.count, mode=self.mode, max_part_fen=self.max_part_fen,
            claim_window_hours=self.claim_window_hours,
            return_after_hours=self.return_after_hours, currency=self.currency,
        )  # fmt: skip


def red_packet_view(packet: RedPacket) -> dict[str, Any]:
    return {
        "object": "red_packet", "id": packet.id, "funder_account_id": packet.funder_account_id,
        "account_id": packet.account_id, "currency": packet.currency,
        "mode": packet.mode.value, "total_fen": packet.total_fen, "count": packet.count,
        "max_part_fen": packet.max_part_fen, "claimed_count": packet.claimed_count,
        "claimed_fen": packet.claimed_fen, "returned_fen": packet.returned_fen,
        "status": packet.status.value, "claim_ends_at": _iso(packet.claim_ends_at),
        "return_due_at": _iso(packet.return_due_at), "created_at": _iso(packet.created_at),
    }  # fmt: skip


def red_packet_share_view(share: RedPacketShare) -> dict[str, Any]:
    return {
        "object": "red_packet_share", "red_packet_id": share.red_packet_id,
        "part_no": share.part_no, "amount_fen": share.amount_fen,
        "citizen_id": share.citizen_id, "claimed_at": _iso(share.claimed_at),
    }  # fmt: skip


class DrawCreate(Strict):
    seed: str | None = Field(None, pattern=r"^[A-Za-z0-9_\-]{1,64}$")


def lottery_entry_view(entry: LotteryEntry) -> dict[str, Any]:
    return {
        "object": "lottery_entry", "campaign_id": entry.campaign_id,
        "citizen_id": entry.citizen_id, "registered_at": _iso(entry.registered_at),
    }  # fmt: skip


def draw_view(result: DrawResult) -> dict[str, Any]:
    return {
        "object": "lottery_draw", "campaign_id": result.campaign_id, "seed": result.seed,
        "entrants": result.entrants, "winners": list(result.winners),
        "drawn_at": _iso(result.drawn_at),
    }  # fmt: skip


class MultiplierIn(Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    multiplier_bp: StrictInt = Field(ge=1, le=10**6)


class EarnRuleIn(Strict):
    points_per_yuan: StrictInt = Field(ge=1, le=10**6)
    validity_days: StrictInt = Field(365, ge=1, le=10**4)
    multipliers: list[MultiplierIn] = Field(default_factory=list, max_length=100)

    def to_rule(self, merchant_id: str) -> EarnRule:
        windows = tuple(
            MultiplierWindow(m.starts_at, m.ends_at, m.multiplier_bp) for m in self.multipliers
        )
        return EarnRule(merchant_id, self.points_per_yuan, self.validity_days, windows)


class EarningCreate(Strict):
    citizen_id: str = Field(min_length=1, max_length=40, pattern=_ID)
    merchant_id: str = Field(min_length=1, max_length=32, pattern=_ID)
    order_id: str = Field(min_length=1, max_length=40, pattern=_ID)
    amount: StrictInt = Field(ge=1, le=10**11)  # what the citizen paid, fen


def earn_rule_view(rule: EarnRule) -> dict[str, Any]:
    return {
        "object": "points_rule", "merchant_id": rule.merchant_id,
        "points_per_yuan": rule.points_per_yuan, "validity_days": rule.validity_days,
        "multipliers": [
            {"starts_at": _iso(w.starts_at), "ends_at": _iso(w.ends_at),
             "multiplier_bp": w.multiplier_bp}
            for w in rule.windows
        ],
    }  # fmt: skip


def points_lot_view(lot: PointsLot) -> dict[str, Any]:
    return {
        "object": "points_lot", "id": lot.id, "citizen_id": lot.citizen_id,
        "merchant_id": lot.merchant_id, "points": lot.points, "remaining": lot.remaining,
        "earned_at": _iso(lot.earned_at), "expires_at": _iso(lot.expires_at),
    }  # fmt: skip


class FlagReview(Strict):
    decision: Decision
    note: str | None = Field(None, max_length=512, pattern=r"^[^\x00]*$")


class AbuseRuleTune(Strict):
    threshold: StrictInt = Field(ge=1, le=10**6)
    window_hours: StrictInt = Field(ge=0, le=24 * 366)
    enabled: StrictBool = True


def flag_view(flag: Flag) -> dict[str, Any]:
    return {
        "object": "marketing_flag", "id": flag.id,
        "subject": {"kind": flag.subject_kind.value, "id": flag.subject_id},
        "rule": flag.rule.value, "reason": flag.reason, "status": flag.status.value,
        "decision": None if flag.decision is None else flag.decision.value, "note": flag.note,
        "created_at": _iso(flag.created_at),
        "reviewed_at": None if flag.reviewed_at is None else _iso(flag.reviewed_at),
    }  # fmt: skip


def abuse_rule_view(rule: AbuseRule) -> dict[str, Any]:
    return {
        "object": "abuse_rule", "code": rule.code.value, "description": rule.description,
        "threshold": rule.threshold, "window_hours": rule.window_hours, "enabled": rule.enabled,
    }  # fmt: skip


class MerchantPersonCreate(Strict):
    """A merchant's legal person or staff member, by resident ID (used for the lookup only)."""

    resident_id: str = Field(min_length=15, max_length=18)
    role: MerchantRole


def merchant_person_view(person: MerchantPerson) -> dict[str, Any]:
    return {
        "object": "merchant_person", "merchant_id": person.merchant_id,
        "citizen_id": person.citizen_id, "role": person.role.value,
        "registered_at": _iso(person.registered_at),
    }  # fmt: skip


def _incremental_line(line: Incremental) -> dict[str, Any]:
    leverage = line.leverage
    return {
        "subsidy_fen": line.subsidy_fen, "baseline_fen": line.baseline_fen,
        "campaign_spend_fen": line.campaign_fen, "incremental_fen": line.incremental_fen,
        "incremental_leverage": None if leverage is None else str(leverage),
    }  # fmt: skip


def incremental_view_json(view: IncrementalView) -> dict[str, Any]:
    """The incremental leverage view; its formula is `cloudpay.marketing.stats`' docstring."""
    return {
        "object": "incremental_leverage", "baseline_days": view.baseline_days,
        "baseline_from": _iso(view.baseline_from), "campaign_from": _iso(view.campaign_from),
        "campaign_until": _iso(view.campaign_until), **_incremental_line(view.total),
        "by_merchant": [{"merchant_id": m.key, **_incremental_line(m)} for m in view.by_merchant],
        "by_district": [{"district": d.key or None, **_incremental_line(d)}
                        for d in view.by_district],
        "by_mcc": [{"mcc": m.key or None, **_incremental_line(m)} for m in view.by_mcc],
    }  # fmt: skip
