"""Sharded stock of first-come campaigns: the claim hot path's only contended rows.

One campaign row taking every claim's `issued + 1` serialises the whole burst on one row lock.
Instead a funded first-come campaign's stock is cut into `shard` rows, each with a `capacity`
(instruments it may issue) and an `issued` count; a claim takes one from any shard whose
`issued < capacity`, skipping shards another claim holds. Exactness: the capacities sum to the
instruments the stock *and* the funded budget both cover (funding raises them, ending a
campaign closes them at `issued`), and no shard's `issued` passes its capacity, so the sum of
`issued` never passes the stock and the committed budget never passes the funding.
"""

from sqlalchemy import Column, ForeignKey, Integer, SmallInteger, String, Table

from cloudpay.db.metadata import metadata

marketing_stock_shards = Table(
    "marketing_stock_shards",
    metadata,
    Column("campaign_id", String(32), ForeignKey("marketing_campaigns.id"), primary_key=True),
    Column("shard_no", SmallInteger, primary_key=True),
    Column("capacity", Integer, nullable=False),
    Column("issued", Integer, nullable=False),
)
