"""The merchants context's SQL. Rows become model records here and nowhere else.

Locks (`FOR UPDATE`) are taken on PostgreSQL only: on SQLite `BEGIN IMMEDIATE` has already
made the transaction the only writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, insert, select, update

from cloudpay.kernel.vault import SealedValue
from cloudpay.merchants.model import (
    AcquiringMode,
    Agent,
    App,
    AppKeyInfo,
    AppStatus,
    KeyStatus,
    Merchant,
    MerchantStatus,
    Review,
    ReviewAction,
    SettlementAccount,
    Store,
    key_is_usable,
)
from cloudpay.merchants.tables import (
    merchant_agents,
    merchant_app_keys,
    merchant_apps,
    merchant_reviews,
    merchant_stores,
    merchants,
)

# Merchants are onboarded once and later looked at rarely; a closed or rejected one may
# apply again under the same USCC.
_ONBOARDED = [
    s.value for s in MerchantStatus if s not in (MerchantStatus.CLOSED, MerchantStatus.REJECTED)
]


def _locked(connection: Connection, query: Select[Any]) -> Select[Any]:
    return query if connection.dialect.name == "sqlite" else query.with_for_update()


def _page(
    query: Select[Any], id_column: Any, limit: int, starting_after: str | None
) -> Select[Any]:
    query = query.order_by(id_column.desc()).limit(limit)
    return query if starting_after is None else query.where(id_column < starting_after)


# --- agents -----------------------------------------------------------------------------
def insert_agent(connection: Connection, agent: Agent) -> None:
    connection.execute(
        insert(merchant_agents).values(
            id=agent.id,
            name=agent.name,
            parent_agent_id=agent.parent_agent_id,
            depth=agent.depth,
            created_at=agent.created_at,
        )
    )


def _agent(row: Any) -> Agent:
    return Agent(row.id, row.name, row.parent_agent_id, row.depth, row.created_at)


def load_agent(connection: Connection, agent_id: str) -> Agent | None:
    row = connection.execute(
        select(merchant_agents).where(merchant_agents.c.id == agent_id)
    ).first()
    return None if row is None else _agent(row)


def list_agents(
    connection: Connection, *, parent_agent_id: str | None, limit: int, starting_after: str | None
) -> list[Agent]:
    query = _page(select(merchant_agents), merchant_agents.c.id, limit, starting_after)
    if parent_agent_id is not None:
        query = query.where(merchant_agents.c.parent_agent_id == parent_agent_id)
    return [_agent(row) for row in connection.execute(query)]


# --- merchants --------------------------------------------------------------------------
def insert_merchant(
    connection: Connection,
    merchant: Merchant,
    *,
    id_number: SealedValue,
    phone: SealedValue,
    account_number: SealedValue | None,
) -> None:
    account = merchant.settlement_account
    connection.execute(
        insert(merchants).values(
            id=merchant.id,
            agent_id=merchant.agent_id,
            legal_name=merchant.legal_name,
            unified_social_credit_code=merchant.unified_social_credit_code,
            legal_person_name=merchant.legal_person_name,
            legal_person_id_number_encrypted=id_number.token,
            legal_person_id_number_index=id_number.blind_index,
            legal_person_id_number_masked=id_number.masked,
            contact_phone_encrypted=phone.token,
            contact_phone_index=phone.blind_index,
            contact_phone_masked=phone.masked,
            mcc=merchant.mcc,
            settlement_bank_name=account.bank_name if account else None,
            settlement_account_name=account.account_name if account else None,
            settlement_account_number_encrypted=account_number.token if account_number else None,
            settlement_account_number_masked=account_number.masked if account_number else None,
            settlement_account_number_checksum_ok=(
                account.account_number_checksum_ok if account else None
            ),
            acquiring_mode=merchant.acquiring_mode.value,
            channel_sub_merchant_ids=dict(merchant.channel_sub_merchant_ids),
            status=merchant.status.value,
            status_reason=merchant.status_reason,
            created_at=merchant.created_at,
            updated_at=merchant.updated_at,
        )
    )


def _merchant(row: Any) -> Merchant:
    account = None
    if row.settlement_account_number_masked is not None:
        account = SettlementAccount(
            bank_name=row.settlement_bank_name,
            account_name=row.settlement_account_name,
            account_number_masked=row.settlement_account_number_masked,
            account_number_checksum_ok=bool(row.settlement_account_number_checksum_ok),
        )
    return Merchant(
        id=row.id,
        agent_id=row.agent_id,
        legal_name=row.legal_name,
        unified_social_credit_code=row.unified_social_credit_code,
        legal_person_name=row.legal_person_name,
        legal_person_id_number_masked=row.legal_person_id_number_masked,
        contact_phone_masked=row.contact_phone_masked,
        mcc=row.mcc,
        settlement_account=account,
        acquiring_mode=AcquiringMode(row.acquiring_mode),
        channel_sub_merchant_ids=dict(row.channel_sub_merchant_ids or {}),
        status=MerchantStatus(row.status),
        status_reason=row.status_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def load_merchant(
    connection: Connection, merchant_id: str, *, lock: bool = False
) -> Merchant | None:
    query = select(merchants).where(merchants.c.id == merchant_id)
    row = connection.execute(_locked(connection, query) if lock else query).first()
    return None if row is None else _merchant(row)


def list_merchants(
    connection: Connection,
    *,
    status: MerchantStatus | None,
    agent_id: str | None,
    limit: int,
    starting_after: str | None,
) -> list[Merchant]:
    query = _page(select(merchants), merchants.c.id, limit, starting_after)
    if status is not None:
        query = query.where(merchants.c.status == status.value)
    if agent_id is not None:
        query = query.where(merchants.c.agent_id == agent_id)
    return [_merchant(row) for row in connection.execute(query)]


def find_merchants_by_blind_index(
    connection: Connection, *, column: str, blind_index: str, limit: int
) -> list[Merchant]:
    """Merchants whose `column` (`legal_person_id_number_index` | `contact_phone_index`) matches."""
    query = _page(select(merchants), merchants.c.id, limit, None)
    return [
        _merchant(row)
        for row in connection.execute(query.where(merchants.c[column] == blind_index))
    ]


def onboarded_merchant_with_uscc(connection: Connection, uscc: str) -> str | None:
    return connection.execute(
        select(merchants.c.id).where(
            merchants.c.unified_social_credit_code == uscc, merchants.c.status.in_(_ONBOARDED)
        )
    ).scalar()


def update_merchant_status(
    connection: Connection,
    merchant_id: str,
    *,
    status: MerchantStatus,
    reason: str | None,
    now: datetime,
) -> None:
    connection.execute(
        update(merchants)
        .where(merchants.c.id == merchant_id)
        .values(status=status.value, status_reason=reason, updated_at=now)
    )


def update_sub_merchant_ids(
    connection: Connection, merchant_id: str, ids: Mapping[str, str], *, now: datetime
) -> None:
    connection.execute(
        update(merchants)
        .where(merchants.c.id == merchant_id)
        .values(channel_sub_merchant_ids=dict(ids), updated_at=now)
    )


def load_encrypted_field(connection: Connection, merchant_id: str, column: str) -> str | None:
    return connection.execute(
        select(merchants.c[column]).where(merchants.c.id == merchant_id)
    ).scalar()


# --- reviews ----------------------------------------------------------------------------
def insert_review(connection: Connection, review: Review) -> None:
    connection.execute(
        insert(merchant_reviews).values(
            id=review.id,
            merchant_id=review.merchant_id,
            action=review.action.value,
            from_status=review.from_status.value,
            to_status=review.to_status.value,
            reason=review.reason,
            actor=review.actor,
            created_at=review.created_at,
        )
    )


def list_reviews(connection: Connection, merchant_id: str, *, limit: int) -> list[Review]:
    r = merchant_reviews.c
    rows = connection.execute(
        select(merchant_reviews)
        .where(r.merchant_id == merchant_id)
        .order_by(r.id.desc())
        .limit(limit)
    )
    return [
        Review(
            row.id,
            row.merchant_id,
            ReviewAction(row.action),
            MerchantStatus(row.from_status),
            MerchantStatus(row.to_status),
            row.reason,
            row.actor,
            row.created_at,
        )
        for row in rows
    ]


# --- stores -----------------------------------------------------------------------------
def insert_store(connection: Connection, store: Store) -> None:
    connection.execute(
        insert(merchant_stores).values(
            id=store.id,
            merchant_id=store.merchant_id,
            name=store.name,
            store_code=store.store_code,
            address=store.address,
            created_at=store.created_at,
        )
    )


def _store(row: Any) -> Store:
    return Store(row.id, row.merchant_id, row.name, row.store_code, row.address, row.created_at)


def load_store(connection: Connection, store_id: str) -> Store | None:
    row = connection.execute(
        select(merchant_stores).where(merchant_stores.c.id == store_id)
    ).first()
    return None if row is None else _store(row)


def find_store_by_code(connection: Connection, store_code: str) -> Store | None:
    row = connection.execute(
        select(merchant_stores).where(merchant_stores.c.store_code == store_code)
    ).first()
    return None if row is None else _store(row)


def list_stores(
    connection: Connection, merchant_id: str, *, limit: int, starting_after: str | None
) -> list[Store]:
    query = _page(select(merchant_stores), merchant_stores.c.id, limit, starting_after)
    rows = connection.execute(query.where(merchant_stores.c.merchant_id == merchant_id))
    return [_store(row) for row in rows]


# --- apps -------------------------------------------------------------------------------
def insert_app(connection: Connection, app: App) -> None:
    connection.execute(
        insert(merchant_apps).values(
            id=app.id,
            merchant_id=app.merchant_id,
            name=app.name,
            notify_url=app.notify_url,
            payment_methods=list(app.payment_methods),
            status=app.status.value,
            created_at=app.created_at,
            updated_at=app.updated_at,
        )
    )


def _app(row: Any) -> App:
    return App(
        id=row.id,
        merchant_id=row.merchant_id,
        name=row.name,
        notify_url=row.notify_url,
        payment_methods=tuple(row.payment_methods),
        status=AppStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def load_app(connection: Connection, app_id: str, *, lock: bool = False) -> App | None:
    query = select(merchant_apps).where(merchant_apps.c.id == app_id)
    row = connection.execute(_locked(connection, query) if lock else query).first()
    return None if row is None else _app(row)


def list_apps(
    connection: Connection, merchant_id: str, *, limit: int, starting_after: str | None
) -> list[App]:
    query = _page(select(merchant_apps), merchant_apps.c.id, limit, starting_after)
    rows = connection.execute(query.where(merchant_apps.c.merchant_id == merchant_id))
    return [_app(row) for row in rows]


def update_app_status(
    connection: Connection, app_id: str, status: AppStatus, *, now: datetime
) -> None:
    connection.execute(
        update(merchant_apps)
        .where(merchant_apps.c.id == app_id)
        .values(status=status.value, updated_at=now)
    )


# --- app keys ---------------------------------------------------------------------------
def insert_key(
    connection: Connection,
    *,
    app_id: str,
    serial_no: str,
    key_number: int,
    algorithm: str,
    public_key: str,
    source: str,
    now: datetime,
) -> None:
    connection.execute(
        insert(merchant_app_keys).values(
            app_id=app_id,
            serial_no=serial_no,
            key_number=key_number,
            algorithm=algorithm,
            public_key=public_key,
            source=source,
            status=KeyStatus.ACTIVE.value,
            created_at=now,
            retire_at=None,
            revoked_at=None,
        )
    )


def _keys_query() -> Select[Any]:
    k = merchant_app_keys.c
    return (
        select(
            k.app_id,
            k.serial_no,
            k.algorithm,
            k.public_key,
            k.source,
            k.status,
            k.created_at,
            k.retire_at,
            k.revoked_at,
            merchant_apps.c.merchant_id,
            merchant_apps.c.status.label("app_status"),
            merchants.c.status.label("merchant_status"),
        )
        .join(merchant_apps, merchant_apps.c.id == k.app_id)
        .join(merchants, merchants.c.id == merchant_apps.c.merchant_id)
    )


def _key_info(row: Any, now: datetime) -> AppKeyInfo:
    usable = key_is_usable(
        key_status=KeyStatus(row.status),
        retire_at=row.retire_at,
        app_status=AppStatus(row.app_status),
        merchant_status=MerchantStatus(row.merchant_status),
        now=now,
    )
    return AppKeyInfo(
        app_id=row.app_id,
        merchant_id=row.merchant_id,
        serial_no=row.serial_no,
        algorithm=row.algorithm,
        public_key=row.public_key,
        usable=usable,
        app_status=row.app_status,
        merchant_status=row.merchant_status,
        status=row.status,
        retire_at=row.retire_at,
        revoked_at=row.revoked_at,
        source=row.source,
        created_at=row.created_at,
    )


# Every signed merchant request looks its key up: built once, values bound per execution.
_FIND_KEY = _keys_query().where(
    merchant_app_keys.c.app_id == bindparam("b_app_id"),
    merchant_app_keys.c.serial_no == bindparam("b_serial_no"),
)


def find_key(
    connection: Connection, *, app_id: str, serial_no: str, now: datetime
) -> AppKeyInfo | None:
    parameters = {"b_app_id": app_id, "b_serial_no": serial_no}
    row = connection.execute(_FIND_KEY, parameters).first()
    return None if row is None else _key_info(row, now)


def list_keys(connection: Connection, app_id: str, *, now: datetime) -> list[AppKeyInfo]:
    """Newest first."""
    k = merchant_app_keys.c
    rows = connection.execute(_keys_query().where(k.app_id == app_id).order_by(k.key_number.desc()))
    return [_key_info(row, now) for row in rows]


def last_key_number(connection: Connection, app_id: str) -> int:
    k = merchant_app_keys.c
    return int(
        connection.execute(
            select(func.coalesce(func.max(k.key_number), 0)).where(k.app_id == app_id)
        ).scalar_one()
    )


def retire_active_keys(connection: Connection, app_id: str, *, retire_at: datetime) -> None:
    k = merchant_app_keys.c
    connection.execute(
        update(merchant_app_keys)
        .where(k.app_id == app_id, k.status == KeyStatus.ACTIVE.value)
        .values(status=KeyStatus.RETIRING.value, retire_at=retire_at)
    )


def revoke_key(connection: Connection, *, app_id: str, serial_no: str, now: datetime) -> None:
    k = merchant_app_keys.c
    connection.execute(
        update(merchant_app_keys)
        .where(k.app_id == app_id, k.serial_no == serial_no)
        .values(status=KeyStatus.REVOKED.value, revoked_at=now)
    )
