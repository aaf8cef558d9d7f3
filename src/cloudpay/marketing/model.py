"""Marketing's rules, pure: campaigns, discount rules, who may claim, and the best quote.

A campaign (营销活动) belongs to a funder and issues instruments — consumption vouchers
(消费券) or coupons (优惠券) — each worth at most `max_value_fen`: a threshold discount
(满减, 10 off 40), a percentage off with a cap, or a fixed no-threshold amount. The budget is a
ledger account; every claim commits its instrument's maximum value against the funded amount,
so issued instruments can always be paid for and the budget account never goes negative.

Rounding: a percentage discount is rounded down to the fen (the budget never pays a fraction
more than the rule says). A payment keeps at least `MIN_PAYABLE_FEN` for the wallet, since no
channel takes a zero-amount payment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from random import Random
from typing import Final

from cloudpay.marketing.errors import ClaimRefused, CurrencyUnsupported, InvalidCampaign

SUPPORTED_CURRENCIES: Final = frozenset({"CNY"})
MIN_PAYABLE_FEN: Final = 1
MAX_VALUE_FEN: Final = 100_000_00  # one instrument is worth at most 100,000 yuan
MAX_STOCK: Final = 10_000_000
MAX_STACKED_INSTRUMENTS: Final = 5  # per payment: bounds the quote's work and the journal
MAX_ELIGIBLE_MERCHANTS: Final = 1_000
MAX_ELIGIBLE_PEOPLE: Final = 10_000
BASIS_POINTS: Final = 10_000


class CampaignKind(StrEnum):
    VOUCHER = "voucher"  # 消费券: government or platform money for citizens
    COUPON = "coupon"  # 优惠券: a merchant's own discount


class FunderKind(StrEnum):
    MERCHANT = "merchant"
    MERCHANT_GROUP = "merchant_group"
    PLATFORM = "platform"
    GOVERNMENT = "government"


class Issuance(StrEnum):
    FIRST_COME = "first_come"  # 先到先得: each claim takes the next instrument
    LOTTERY = "lottery"  # 摇号: people register in the claim window, a seeded draw issues


class RuleKind(StrEnum):
    THRESHOLD = "threshold"  # 满减: `discount_fen` off when the amount reaches `threshold_fen`
    PERCENT_OFF = "percent_off"  # `percent_bp` off, at most `cap_fen`, from `threshold_fen`
    NO_THRESHOLD = "no_threshold"  # 无门槛: `discount_fen` off any amount


class Audience(StrEnum):
    ALL = "all"
    RESIDENTS = "residents"
    LIST = "list"


class CampaignStatus(StrEnum):
    DRAFT = "draft"  # created, not funded: nobody may claim
    ACTIVE = "active"
    ENDED = "ended"  # expired: unused budget returned to the funder


class ClaimStatus(StrEnum):
    CLAIMED = "claimed"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    RESTORED = "restored"  # its payment was refunded: usable again


USABLE_CLAIM_STATUSES: Final = (ClaimStatus.CLAIMED, ClaimStatus.RESTORED)


@dataclass(frozen=True)
class DiscountRule:
    kind: RuleKind
    discount_fen: int = 0
    threshold_fen: int = 0
    percent_bp: int = 0
    cap_fen: int = 0

    @property
    def max_value_fen(self) -> int:
        """The most one instrument can ever take from the budget."""
        return self.cap_fen if self.kind is RuleKind.PERCENT_OFF else self.discount_fen

    def discount_for(self, amount_fen: int) -> int:
        """The discount on `amount_fen`, before the payment's own floor is applied."""
        if amount_fen < self.threshold_fen or amount_fen <= 0:
            return 0
        if self.kind is RuleKind.PERCENT_OFF:
            return min(amount_fen * self.percent_bp // BASIS_POINTS, self.cap_fen)
        return min(self.discount_fen, amount_fen)


def check_rule(rule: DiscountRule) -> DiscountRule:
    """A rule whose values agree with its kind; refused with the offending field named."""
    if rule.kind is RuleKind.PERCENT_OFF:
        _require(1 <= rule.percent_bp < BASIS_POINTS, "percent_bp is 1–9999", "rule.percent_bp")
        _require(1 <= rule.cap_fen <= MAX_VALUE_FEN, "cap_fen is required", "rule.cap_fen")
        _require(rule.discount_fen == 0, "percent_off takes no discount_fen", "rule.discount_fen")
    else:
        _require(
            1 <= rule.discount_fen <= MAX_VALUE_FEN, "discount_fen is required", "rule.discount_fen"
        )
        _require(rule.percent_bp == 0 and rule.cap_fen == 0,
                 "percent_bp and cap_fen are for percent_off", "rule.percent_bp")  # fmt: skip
    if rule.kind is RuleKind.THRESHOLD:
        _require(rule.threshold_fen > rule.discount_fen,
                 "threshold_fen must exceed discount_fen", "rule.threshold_fen")  # fmt: skip
    if rule.kind is RuleKind.NO_THRESHOLD:
        _require(rule.threshold_fen == 0, "no_threshold has no threshold", "rule.threshold_fen")
    _require(0 <= rule.threshold_fen <= MAX_VALUE_FEN * 100, "threshold_fen out of range",
             "rule.threshold_fen")  # fmt: skip
    return rule


def _require(condition: bool, message: str, param: str) -> None:
    if not condition:
        raise InvalidCampaign(message, param=param)


@dataclass(frozen=True)
class MerchantScope:
    """Where instruments may be used; an empty set means no restriction on that dimension."""

    merchant_ids: frozenset[str] = frozenset()
    mccs: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()

    def admits(self, merchant: MerchantFacts) -> bool:
        if self.merchant_ids and merchant.merchant_id not in self.merchant_ids:
            return False
        if self.mccs and merchant.mcc not in self.mccs:
            return False
        return not self.districts or merchant.district in self.districts


@dataclass(frozen=True)
class Windows:
    """Claims in [claim_starts_at, claim_ends_at); use in [valid_from, valid_until)."""

    claim_starts_at: datetime
    claim_ends_at: datetime
    valid_from: datetime
    valid_until: datetime


def check_windows(windows: Windows) -> Windows:
    _require(windows.claim_starts_at < windows.claim_ends_at,
             "claim_starts_at must precede claim_ends_at", "claim_ends_at")  # fmt: skip
    _require(windows.valid_from < windows.valid_until,
             "valid_from must precede valid_until", "valid_until")  # fmt: skip
    _require(windows.claim_ends_at <= windows.valid_until,
             "claims must end by valid_until", "claim_ends_at")  # fmt: skip
    return windows


@dataclass(frozen=True)
class Caps:
    per_person_per_day: int = 1
    per_person_total: int = 1


def check_caps(caps: Caps, stock: int) -> Caps:
    _require(1 <= stock <= MAX_STOCK, f"stock is 1–{MAX_STOCK}", "stock")
    _require(caps.per_person_per_day >= 1, "per_person_per_day is at least 1",
             "caps.per_person_per_day")  # fmt: skip
    _require(caps.per_person_total >= caps.per_person_per_day,
             "per_person_total must be at least per_person_per_day",
             "caps.per_person_total")  # fmt: skip
    return caps


def check_currency(currency: str, *, param: str = "currency") -> str:
    if currency not in SUPPORTED_CURRENCIES:
        raise CurrencyUnsupported("campaigns run in CNY only", param=param)
    return currency


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    funder_kind: FunderKind
    funder_id: str
    kind: CampaignKind
    currency: str
    rule: DiscountRule
    stock: int
    issued: int
    committed_fen: int  # sum of the max values of issued instruments
    funded_fen: int
    windows: Windows
    scope: MerchantScope
    audience: Audience
    caps: Caps
    stackable: bool
    status: CampaignStatus
    budget_account_id: str | None
    created_at: datetime
    returned_fen: int = 0
    issuance: Issuance = Issuance.FIRST_COME
    draw_seed: str | None = None  # the lottery's recorded seed: anyone can re-run the draw
    drawn_at: datetime | None = None


@dataclass(frozen=True)
class Claim:
    id: str
    campaign_id: str
    citizen_id: str
    status: ClaimStatus
    max_value_fen: int
    created_at: datetime
    order_id: str | None = None


@dataclass(frozen=True)
class MerchantFacts:
    """What the quote needs to know of the merchant taking the payment."""

    merchant_id: str
    mcc: str
    district: str | None = None


@dataclass(frozen=True)
class Instrument:
    """A claimed instrument as the quote sees it: its claim, rule, scope and validity."""

    claim_id: str
    campaign_id: str
    currency: str
    rule: DiscountRule
    scope: MerchantScope
    valid_from: datetime
    valid_until: datetime
    stackable: bool

    def applies(self, merchant: MerchantFacts, currency: str, at: datetime) -> bool:
        return (
            self.currency == currency
            and self.valid_from <= at < self.valid_until
            and self.scope.admits(merchant)
        )


@dataclass(frozen=True)
class QuoteLine:
    claim_id: str
    campaign_id: str
    discount_fen: int


@dataclass(frozen=True)
class Quote:
    amount_fen: int
    lines: tuple[QuoteLine, ...] = field(default=())

    @property
    def discount_fen(self) -> int:
        return sum(line.discount_fen for line in self.lines)

    @property
    def payable_fen(self) -> int:
        return self.amount_fen - self.discount_fen


def quote(
    instruments: Iterable[Instrument],
    merchant: MerchantFacts,
    amount_fen: int,
    *,
    at: datetime,
    currency: str = "CNY",
) -> Quote:
    """The best discount for this payment: the larger of the best lone non-stackable
    instrument and the best set of stackable ones (one per campaign). Ties go to fewer
    instruments, then to the one that expires first (use it before it is lost)."""
    room = amount_fen - MIN_PAYABLE_FEN
    if room <= 0:
        return Quote(amount_fen)
    usable = sorted(
        (i for i in instruments if i.applies(merchant, currency, at)),
        key=lambda i: (-i.rule.discount_for(amount_fen), i.valid_until, i.claim_id),
    )
    usable = [i for i in usable if i.rule.discount_for(amount_fen) > 0]
    lone = [_fit([i], amount_fen, room) for i in usable if not i.stackable][:1]
    stacked = _fit(_one_per_campaign(i for i in usable if i.stackable), amount_fen, room)
    candidates = [*lone, stacked]
    best = max(candidates, key=lambda lines: (sum(x.discount_fen for x in lines), -len(lines)))
    return Quote(amount_fen, tuple(best))


def _one_per_campaign(instruments: Iterable[Instrument]) -> list[Instrument]:
    chosen: dict[str, Instrument] = {}
    for instrument in instruments:  # already best-first
        chosen.setdefault(instrument.campaign_id, instrument)
    return list(chosen.values())[:MAX_STACKED_INSTRUMENTS]


def _fit(instruments: Sequence[Instrument], amount_fen: int, room: int) -> list[QuoteLine]:
    """Lines best-first, each clipped to what the payment still leaves; empty ones dropped."""
    lines: list[QuoteLine] = []
    for instrument in instruments:
        discount = min(instrument.rule.discount_for(amount_fen), room)
        if discount <= 0:
            break
        lines.append(QuoteLine(instrument.claim_id, instrument.campaign_id, discount))
        room -= discount
    return lines


def check_claimable(campaign: Campaign, now: datetime) -> None:
    """Refuse a claim the campaign's state or windows do not allow (before any write)."""
    if campaign.status is CampaignStatus.ENDED or now >= campaign.windows.claim_ends_at:
        raise ClaimRefused("the campaign's claim window has closed", code="campaign_expired")
    if campaign.status is not CampaignStatus.ACTIVE:
        raise ClaimRefused("the campaign is not funded yet", code="campaign_not_active")
    if now < campaign.windows.claim_starts_at:
        raise ClaimRefused("the claim window is not open yet", code="claim_window_not_open")
    refusal = issue_refusal(campaign)
    if refusal is not None:
        raise refusal


def issue_refusal(campaign: Campaign) -> ClaimRefused | None:
    """The rule that keeps one more instrument from being issued, if any."""
    if campaign.issued >= campaign.stock:
        return ClaimRefused("every instrument of this campaign is issued", code="out_of_stock")
    if campaign.committed_fen + campaign.rule.max_value_fen > campaign.funded_fen:
        return ClaimRefused(
            "the funded budget cannot cover one more instrument", code="budget_exhausted"
        )
    if campaign.status is not CampaignStatus.ACTIVE:
        return ClaimRefused("the campaign is no longer active", code="campaign_not_active")
    return None


def check_cap(caps: Caps, *, claimed_total: int, claimed_today: int) -> None:
    if claimed_total >= caps.per_person_total:
        raise ClaimRefused(
            f"at most {caps.per_person_total} per person for this campaign", code="cap_reached"
        )
    if claimed_today >= caps.per_person_per_day:
        raise ClaimRefused(
            f"at most {caps.per_person_per_day} per person per day", code="cap_reached"
        )


def subsidy_transfer_id(order_id: str, line_no: int) -> str:
    """The ledger id of an order's subsidy line: a retried redemption replays it.

    The line number stands in for the claim id (kept in the transfer's user_data): ledger ids
    are at most 64 characters, and an order id plus a claim id is longer.
    """
    return f"{order_id}:subsidy:{line_no}"


def subsidy_reversal_transfer_id(order_id: str, line_no: int) -> str:
    return f"{subsidy_transfer_id(order_id, line_no)}:reversal"


def refund_transfer_id(refund_id: str, line_no: int) -> str:
    """The ledger id of the subsidy a partial refund gives back (one per refund and line)."""
    return f"{refund_id}:subsidy:{line_no}"


def subsidy_to_give_back(
    discount_fen: int, reversed_fen: int, *, order_amount_fen: int, refunded_total_fen: int
) -> int:
    """What a refund returns of one subsidy line: the refunded share of the order, rounded
    down, minus what earlier refunds returned. Cumulative, so any sequence of partial refunds
    that adds up to the whole order gives back exactly the whole discount."""
    if order_amount_fen <= 0:
        raise ValueError("order_amount_fen must be positive")
    refunded = min(max(refunded_total_fen, 0), order_amount_fen)
    due = discount_fen * refunded // order_amount_fen
    return max(due - reversed_fen, 0)


@dataclass(frozen=True)
class CampaignStats:
    """What a campaign achieved: instruments by status, subsidy paid, spending it brought."""

    claims_by_status: dict[str, int]
    redemptions: int
    subsidy_fen: int  # net of refunds
    driven_amount_fen: int  # order amounts (before discount) of orders that used it

    @property
    def leverage(self) -> Decimal | None:
        """杠杆率: spending brought per yuan of subsidy, 2 decimals rounded half-up."""
        if self.subsidy_fen <= 0:
            return None
        ratio = Decimal(self.driven_amount_fen) / Decimal(self.subsidy_fen)
        return ratio.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# --- red packets (红包) -------------------------------------------------------------------
MIN_PART_FEN: Final = 1  # 0.01 CNY: no share of a red packet is empty
MAX_RED_PACKET_PARTS: Final = 1_000
MAX_RED_PACKET_TOTAL_FEN: Final = 100_000_00
MAX_REPAIR_ROUNDS: Final = 64


class SplitMode(StrEnum):
    FIXED = "fixed"  # 普通红包: every share the same
    RANDOM = "random"  # 拼手气红包: random shares


def split_red_packet(
    total_fen: int, count: int, *, max_part_fen: int, mode: SplitMode, rng: Random
) -> list[int]:
    """Split `total_fen` into `count` shares, each in [MIN_PART_FEN, max_part_fen], that sum
    exactly to the total; the list is in claim order (share `i` goes to the `i`-th claimer).

    Fixed mode needs a total divisible by the count. Random mode pre-splits the whole packet
    at creation, so the order people claim in cannot change what they may get (the "double
    mean" rule — each claimer draws from [1, 2 × mean of what is left) — gives early and late
    claimers different distributions). The shares are:

    1. a uniform random composition of the total into `count` positive parts: `count - 1`
       distinct cut points drawn uniformly from the `total - 1` gaps between fen ("stars and
       bars", Feller, *An Introduction to Probability Theory*, vol. 1, §II.5;
       https://en.wikipedia.org/wiki/Stars_and_bars_(combinatorics)), redrawn a few times
       when a part exceeds the maximum (rejection keeps it uniform over bounded compositions);
    2. if the maximum is so tight that rejection keeps failing, parts above it are clipped and
       the excess is spread over the parts with room by another uniform composition, until
       none is left (bounds hold; exact uniformity is traded for a bounded running time);
    3. a Fisher–Yates shuffle (`Random.shuffle`; Knuth, TAOCP vol. 2, §3.4.2, Algorithm P),
       which makes the shares exchangeable: every claim position has the same distribution,
       so the expected share of the first and the last claimer is the same, total ÷ count.
    """
    check_split(total_fen, count, max_part_fen=max_part_fen, mode=mode)
    if mode is SplitMode.FIXED:
        return [total_fen // count] * count
    parts = _bounded_composition(total_fen, count, max_part_fen, rng)
    rng.shuffle(parts)
    return parts


def check_split(total_fen: int, count: int, *, max_part_fen: int, mode: SplitMode) -> None:
    """Refuse a split no list of shares can satisfy, naming the field to change."""
    _require(1 <= count <= MAX_RED_PACKET_PARTS, f"count is 1–{MAX_RED_PACKET_PARTS}", "count")
    _require(1 <= total_fen <= MAX_RED_PACKET_TOTAL_FEN,
             f"total_fen is 1–{MAX_RED_PACKET_TOTAL_FEN}", "total_fen")  # fmt: skip
    _require(max_part_fen >= MIN_PART_FEN, "max_part_fen is at least 1", "max_part_fen")
    _require(total_fen >= count * MIN_PART_FEN,
             "total_fen must give every share at least 1 fen", "total_fen")  # fmt: skip
    _require(total_fen <= count * max_part_fen,
             "total_fen exceeds count × max_part_fen", "max_part_fen")  # fmt: skip
    if mode is SplitMode.FIXED:
        _require(total_fen % count == 0,
                 "a fixed red packet needs a total divisible by count", "total_fen")  # fmt: skip


def _composition(total: int, count: int, rng: Random, *, minimum: int) -> list[int]:
    """A uniform random composition of `total` into `count` parts, each at least `minimum`
    (0 or 1): cut points among the gaps, with the zero-minimum case shifted to the positive."""
    shifted = total + count * (1 - minimum)  # parts ≥ 0 ↔ parts + 1 ≥ 1
    cuts = sorted(rng.sample(range(1, shifted), count - 1))
    bounds = [0, *cuts, shifted]
    return [bounds[i + 1] - bounds[i] - (1 - minimum) for i in range(count)]


def _bounded_composition(total: int, count: int, max_part: int, rng: Random) -> list[int]:
    for _ in range(8):
        parts = _composition(total, count, rng, minimum=1)
        if max(parts) <= max_part:
            return parts
    for _ in range(MAX_REPAIR_ROUNDS):
        excess = sum(max(part - max_part, 0) for part in parts)
        if excess == 0:
            return parts
        parts = [min(part, max_part) for part in parts]
        open_slots = [i for i, part in enumerate(parts) if part < max_part]
        extra = _composition(excess, len(open_slots), rng, minimum=0)
        for slot, amount in zip(open_slots, extra, strict=True):
            parts[slot] += amount
    return _fill_in_order(parts, max_part, rng)


def _fill_in_order(parts: list[int], max_part: int, rng: Random) -> list[int]:
    """The last resort of the repair: pour the excess into the open parts in random order."""
    excess = sum(max(part - max_part, 0) for part in parts)
    parts = [min(part, max_part) for part in parts]
    order = list(range(len(parts)))
    rng.shuffle(order)
    for slot in order:
        poured = min(max_part - parts[slot], excess)
        parts[slot] += poured
        excess -= poured
    return parts


def red_packet_transfer_id(red_packet_id: str, step: str) -> str:
    """The ledger id of one of a red packet's movements (`fund`, `part:<n>`, `return`): a
    retried request or job replays the same transfer instead of moving the money twice."""
    return f"{red_packet_id}:{step}"


class RedPacketStatus(StrEnum):
    OPEN = "open"  # shares may be claimed until `claim_ends_at`
    RETURNED = "returned"  # what was left went back to the funder


@dataclass(frozen=True)
class RedPacket:
    id: str
    funder_account_id: str
    account_id: str
    currency: str
    mode: SplitMode
    total_fen: int
    count: int
    max_part_fen: int
    claimed_count: int
    claimed_fen: int
    returned_fen: int
    status: RedPacketStatus
    claim_ends_at: datetime
    return_due_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class RedPacketShare:
    """One citizen's share of a red packet."""

    red_packet_id: str
    part_no: int
    amount_fen: int
    citizen_id: str
    claimed_at: datetime


def draw_winners(entrants: Iterable[str], winners: int, *, seed: str) -> list[str]:
    """摇号: the `winners` entrants whose SHA-256 of `seed:entrant` is lowest, in that order.

    Each entrant's rank depends only on the seed and their own id, so the draw is the same
    whatever order people registered in, and anyone holding the published seed and the entrant
    list can re-run it. Python's `random` would not do: only `random()` itself is guaranteed to
    repeat across Python versions, not `sample` or `shuffle`
    (https://docs.python.org/3/library/random.html#notes-on-reproducibility).
    """
    if winners < 0:
        raise ValueError("winners must not be negative")

    def rank(entrant: str) -> tuple[str, str]:
        return hashlib.sha256(f"{seed}:{entrant}".encode()).hexdigest(), entrant

    return sorted(set(entrants), key=rank)[:winners]
