"""Merchants: agents (代理商), merchants and their onboarding (进件), stores, apps and app keys.

Other contexts call only these functions, with their unit of work; the clock is `uow.clock`.
`find_app_key` is what the merchant-request signature check relies on: keep its shape.
"""

from cloudpay.merchants.model import (
    MAX_AGENT_DEPTH,
    PAYMENT_METHODS,
    AcquiringMode,
    Agent,
    App,
    AppKeyInfo,
    AppStatus,
    KeyAlgorithm,
    KeyStatus,
    Merchant,
    MerchantStatus,
    SettlementAccount,
    Store,
)
from cloudpay.merchants.service import (
    find_app_key,
    find_store_by_code,
    get_agent,
    get_app,
    get_merchant,
    get_store,
    list_app_keys,
)

__all__ = [
    "MAX_AGENT_DEPTH",
    "PAYMENT_METHODS",
    "AcquiringMode",
    "Agent",
    "App",
    "AppKeyInfo",
    "AppStatus",
    "KeyAlgorithm",
    "KeyStatus",
    "Merchant",
    "MerchantStatus",
    "SettlementAccount",
    "Store",
    "find_app_key",
    "find_store_by_code",
    "get_agent",
    "get_app",
    "get_merchant",
    "get_store",
    "list_app_keys",
]
