"""Marketing's tables: campaigns, their listed people, claims (the hot path), redemptions.

The claim's two unique keys are what make per-person caps exact under concurrency: a claim
takes slot `n` of the person's campaign cap and slot `m` of their day's cap, so two
concurrent claims for the same slot cannot both commit. Stock is exact by the conditional
`UPDATE … SET issued = issued + 1 WHERE issued < stock` on the campaign row.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from cloudpay.db.metadata import metadata
from cloudpay.db.types import UtcDateTime

marketing_campaigns = Table(
    "marketing_campaigns",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("funder_kind", String(16), nullable=False),
    Column("funder_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("rule_kind", String(16), nullable=False),
    Column("discount_fen", BigInteger, nullable=False),
    Column("threshold_fen", BigInteger, nullable=False),
    Column("percent_bp", Integer, nullable=False),
    Column("cap_fen", BigInteger, nullable=False),
    Column("max_value_fen", BigInteger, nullable=False),
    Column("stock", Integer, nullable=False),
    Column("issued", Integer, nullable=False),
    Column("committed_fen", BigInteger, nullable=False),
    Column("funded_fen", BigInteger, nullable=False),
    Column("returned_fen", BigInteger, nullable=False),
    Column("claim_starts_at", UtcDateTime, nullable=False),
    Column("claim_ends_at", UtcDateTime, nullable=False),
    Column("valid_from", UtcDateTime, nullable=False),
    Column("valid_until", UtcDateTime, nullable=False),
    Column("eligible_merchant_ids", JSON, nullable=False),
    Column("eligible_mccs", JSON, nullable=False),
    Column("eligible_districts", JSON, nullable=False),
    Column("audience", String(16), nullable=False),
    Column("per_person_per_day", SmallInteger, nullable=False),
    Column("per_person_total", SmallInteger, nullable=False),
    Column("stackable", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("budget_account_id", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("issuance", String(16), nullable=False, server_default="first_come"),
    Column("draw_seed", String(64), nullable=True),
    Column("drawn_at", UtcDateTime, nullable=True),
    Index("ix_marketing_campaigns_status_valid_until", "status", "valid_until"),
)

# The audience of an `audience = list` campaign: looked up by primary key on every claim.
marketing_campaign_people = Table(
    "marketing_campaign_people",
    metadata,
    Column("campaign_id", String(32), ForeignKey("marketing_campaigns.id"), primary_key=True),
    Column("citizen_id", String(32), primary_key=True),
)

marketing_claims = Table(
    "marketing_claims",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("campaign_id", String(32), ForeignKey("marketing_campaigns.id"), nullable=False),
    Column("citizen_id", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("max_value_fen", BigInteger, nullable=False),
    Column("claim_day", Date, nullable=False),  # Asia/Shanghai business date
    Column("person_slot", SmallInteger, nullable=False),
    Column("day_slot", SmallInteger, nullable=False),
    Column("order_id", String(40), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "campaign_id", "citizen_id", "person_slot", name="uq_marketing_claims_person_slot"
    ),
    UniqueConstraint(
        "campaign_id", "citizen_id", "claim_day", "day_slot", name="uq_marketing_claims_day_slot"
    ),
    Index("ix_marketing_claims_citizen_status", "citizen_id", "status"),
    Index("ix_marketing_claims_campaign_status", "campaign_id", "status"),
)

# One row per instrument used by an order: the discount breakdown and its ledger transfer.
marketing_redemptions = Table(
    "marketing_redemptions",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("line_no", SmallInteger, primary_key=True),
    Column("claim_id", String(32), ForeignKey("marketing_claims.id"), nullable=False),
    Column("campaign_id", String(32), nullable=False),
    Column("merchant_id", String(32), nullable=False),
    Column("discount_fen", BigInteger, nullable=False),
    Column("reversed_fen", BigInteger, nullable=False),  # given back by refunds so far
    Column("order_amount_fen", BigInteger, nullable=False),  # the spending it helped bring
    Column("currency", String(3), nullable=False),
    Column("transfer_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("reversed_at", UtcDateTime, nullable=True),
    # Where the voucher was used, for statistics by merchant category and district.
    Column("mcc", String(4), nullable=True),
    Column("district", String(6), nullable=True),
    Index("ix_marketing_redemptions_claim", "claim_id"),
    Index("ix_marketing_redemptions_campaign", "campaign_id", "status"),
)

# 红包: a funded packet split at creation into shares; the row counts what has been claimed.
marketing_red_packets = Table(
    "marketing_red_packets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("funder_account_id", String(64), nullable=False),
    Column("account_id", String(64), nullable=False),  # the packet's own ledger account
    Column("currency", String(3), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("total_fen", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("max_part_fen", BigInteger, nullable=False),
    Column("claimed_count", Integer, nullable=False),
    Column("claimed_fen", BigInteger, nullable=False),
    Column("returned_fen", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("claim_ends_at", UtcDateTime, nullable=False),
    Column("return_due_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_marketing_red_packets_status_return_due", "status", "return_due_at"),
)

# One row per share, in claim order. The unique (packet, citizen) key is what lets each citizen
# claim once even when two of their requests race (NULLs, the unclaimed shares, never clash).
marketing_red_packet_parts = Table(
    "marketing_red_packet_parts",
    metadata,
    Column("red_packet_id", String(32), ForeignKey("marketing_red_packets.id"), primary_key=True),
    Column("part_no", Integer, primary_key=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("citizen_id", String(32), nullable=True),
    Column("claimed_at", UtcDateTime, nullable=True),
    UniqueConstraint("red_packet_id", "citizen_id", name="uq_marketing_red_packet_parts_citizen"),
)

# 摇号: who registered for a lottery campaign; `won` is set by the draw (NULL before it).
marketing_lottery_entries = Table(
    "marketing_lottery_entries",
    metadata,
    Column("campaign_id", String(32), ForeignKey("marketing_campaigns.id"), primary_key=True),
    Column("citizen_id", String(32), primary_key=True),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("won", Boolean, nullable=True),
)

# 积分: each merchant's earn rule (one per merchant; promotion windows as a JSON list).
marketing_points_rules = Table(
    "marketing_points_rules",
    metadata,
    Column("merchant_id", String(32), primary_key=True),
    Column("points_per_yuan", Integer, nullable=False),
    Column("validity_days", Integer, nullable=False),
    Column("multipliers", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Points earned by one payment (its order id is unique: earning again replays). `remaining`
# falls as spending and expiry take from the oldest lots first; the ledger holds the balance.
marketing_points_lots = Table(
    "marketing_points_lots",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("citizen_id", String(32), nullable=False),
    Column("merchant_id", String(32), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("earned_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    UniqueConstraint("order_id", name="uq_marketing_points_lots_order"),
    Index("ix_marketing_points_lots_citizen_earned", "citizen_id", "earned_at"),
    Index("ix_marketing_points_lots_expires", "expires_at"),
)

# Anti-abuse rules are data: an operator tunes a threshold or switches a rule off here.
marketing_abuse_rules = Table(
    "marketing_abuse_rules",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("description", String(256), nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("window_hours", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
)

# A rule's finding about a subject, kept with its reason until a person reviews it. One flag
# per rule and subject: evaluating again (claim, redemption, batch) never duplicates it.
marketing_flags = Table(
    "marketing_flags",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(40), nullable=False),
    Column("rule_code", String(32), nullable=False),
    Column("reason", String(512), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decision", String(16), nullable=True),
    Column("note", String(512), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("reviewed_at", UtcDateTime, nullable=True),
    UniqueConstraint("rule_code", "subject_kind", "subject_id", name="uq_marketing_flags_subject"),
    Index("ix_marketing_flags_status", "status"),
)
