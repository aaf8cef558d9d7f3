"""Wire shapes of the merchants API. Views are built from model records, never from rows,
and a merchant record holds personal values only masked — so no view can leak them.

Requests are checked for shape here; the domain checks (USCC, resident ID, phone, URL, keys)
are in `model.py`, so the CLI gets the same ones.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from cloudpay.merchants.model import (
    DEFAULT_KEY_OVERLAP_HOURS,
    MAX_KEY_OVERLAP_HOURS,
    MAX_NOTIFY_URL_LENGTH,
    MAX_REASON_LENGTH,
    AcquiringMode,
    Agent,
    App,
    AppKeyInfo,
    KeyAlgorithm,
    Merchant,
    MerchantApplication,
    Review,
    Store,
)

MAX_PUBLIC_KEY_CHARS = 4_096  # an RSA-8192 PEM is ~1.5 KB


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AgentCreate(Strict):
    name: str = Field(min_length=1, max_length=128)
    parent_agent_id: str | None = Field(default=None, max_length=32)


class SettlementAccountIn(Strict):
    bank_name: str = Field(min_length=1, max_length=64, examples=["潍坊银行"])
    account_name: str = Field(min_length=1, max_length=128)
    account_number: str = Field(min_length=1, max_length=40)


class MerchantCreate(Strict):
    legal_name: str = Field(min_length=1, max_length=128, examples=["潍坊市某某面馆"])
    unified_social_credit_code: str = Field(min_length=1, max_length=32)
    legal_person_name: str = Field(min_length=1, max_length=64)
    legal_person_id_number: str = Field(min_length=1, max_length=32)
    contact_phone: str = Field(min_length=1, max_length=32)
    mcc: str = Field(min_length=1, max_length=8, examples=["5812"])
    settlement_account: SettlementAccountIn | None = None
    agent_id: str | None = Field(default=None, max_length=32)
    acquiring_mode: AcquiringMode = AcquiringMode.DIRECT
    channel_sub_merchant_ids: dict[str, str] = Field(default_factory=dict, max_length=8)

    def to_application(self) -> MerchantApplication:
        account = self.settlement_account
        return MerchantApplication(
            legal_name=self.legal_name,
            unified_social_credit_code=self.unified_social_credit_code,
            legal_person_name=self.legal_person_name,
            legal_person_id_number=self.legal_person_id_number,
            contact_phone=self.contact_phone,
            mcc=self.mcc,
            settlement_bank_name=account.bank_name if account else None,
            settlement_account_name=account.account_name if account else None,
            settlement_account_number=account.account_number if account else None,
            agent_id=self.agent_id,
            acquiring_mode=self.acquiring_mode,
            channel_sub_merchant_ids=self.channel_sub_merchant_ids,
        )


class MerchantSearch(Strict):
    """Personal values travel in a POST body, never in a URL that access logs keep."""

    legal_person_id_number: str | None = Field(default=None, max_length=32)
    contact_phone: str | None = Field(default=None, max_length=32)


class ReviewBody(Strict):
    reason: str | None = Field(default=None, max_length=MAX_REASON_LENGTH)


class SubMerchantIdSet(Strict):
    channel: Literal["wechat", "alipay", "unionpay"]
    sub_merchant_id: str = Field(min_length=1, max_length=32, examples=["1900000109"])


class StoreCreate(Strict):
    name: str = Field(min_length=1, max_length=128)
    store_code: str | None = Field(default=None, max_length=16, description="generated if omitted")
    address: str | None = Field(default=None, max_length=256)


class KeySpec(Strict):
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA
    public_key: str | None = Field(
        default=None,
        max_length=MAX_PUBLIC_KEY_CHARS,
        description="RSA: PEM; SM2: hex point. Omit to have the platform generate the pair.",
    )


class KeyCreate(KeySpec):
    previous_key_overlap_hours: StrictInt = Field(
        default=DEFAULT_KEY_OVERLAP_HOURS, ge=0, le=MAX_KEY_OVERLAP_HOURS
    )


class AppCreate(Strict):
    name: str = Field(min_length=1, max_length=128)
    notify_url: str | None = Field(default=None, max_length=MAX_NOTIFY_URL_LENGTH)
    payment_methods: list[str] | None = Field(default=None, max_length=16)
    key: KeySpec = Field(default_factory=KeySpec)


# --- views ------------------------------------------------------------------------------
def agent_view(agent: Agent) -> dict[str, Any]:
    return {
        "object": "agent",
        "id": agent.id,
        "name": agent.name,
        "parent_agent_id": agent.parent_agent_id,
        "depth": agent.depth,
        "created": agent.created_at.isoformat(),
    }


def merchant_view(merchant: Merchant) -> dict[str, Any]:
    account = merchant.settlement_account
    return {
        "object": "merchant",
        "id": merchant.id,
        "agent_id": merchant.agent_id,
        "legal_name": merchant.legal_name,
        "unified_social_credit_code": merchant.unified_social_credit_code,
        "legal_person_name": merchant.legal_person_name,
        "legal_person_id_number": merchant.legal_person_id_number_masked,
        "contact_phone": merchant.contact_phone_masked,
        "mcc": merchant.mcc,
        "settlement_account": None
        if account is None
        else {
            "bank_name": account.bank_name,
            "account_name": account.account_name,
            "account_number": account.account_number_masked,
        },
        "acquiring_mode": merchant.acquiring_mode.value,
        "channel_sub_merchant_ids": dict(merchant.channel_sub_merchant_ids),
        "status": merchant.status.value,
        "status_reason": merchant.status_reason,
        "warnings": merchant.warnings,
        "created": merchant.created_at.isoformat(),
        "updated": merchant.updated_at.isoformat(),
    }


def review_view(review: Review) -> dict[str, Any]:
    return {
        "object": "merchant_review",
        "id": review.id,
        "merchant_id": review.merchant_id,
        "action": review.action.value,
        "from_status": review.from_status.value,
        "to_status": review.to_status.value,
        "reason": review.reason,
        "actor": review.actor,
        "created": review.created_at.isoformat(),
    }


def store_view(store: Store) -> dict[str, Any]:
    return {
        "object": "store",
        "id": store.id,
        "merchant_id": store.merchant_id,
        "name": store.name,
        "store_code": store.store_code,
        "address": store.address,
        "created": store.created_at.isoformat(),
    }


def key_view(key: AppKeyInfo) -> dict[str, Any]:
    return {
        "object": "app_key",
        "app_id": key.app_id,
        "serial_no": key.serial_no,
        "algorithm": key.algorithm,
        "public_key": key.public_key,
        "source": key.source,
        "status": key.status,
        "usable": key.usable,
        "retire_at": key.retire_at.isoformat() if key.retire_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "created": key.created_at.isoformat() if key.created_at else None,
    }


def app_view(app: App, keys: list[AppKeyInfo] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "object": "app",
        "id": app.id,
        "merchant_id": app.merchant_id,
        "name": app.name,
        "notify_url": app.notify_url,
        "payment_methods": list(app.payment_methods),
        "status": app.status.value,
        "created": app.created_at.isoformat(),
        "updated": app.updated_at.isoformat(),
    }
    if keys is not None:
        view["keys"] = [key_view(k) for k in keys]
    return view
