"""Errors of the merchants context, each with one HTTP status and a stable code.

| code                              | status | when |
|-----------------------------------|--------|------|
| `uscc_invalid`                    | 400 | unified social credit code fails `stdnum.cn.uscc` |
| `resident_id_invalid`             | 400 | legal person's resident ID fails `stdnum.cn.ric` |
| `phone_invalid`                   | 400 | not a mainland mobile number (11 digits, 1[3-9]…) |
| `mcc_invalid`                     | 400 | business category is not 4 digits |
| `bank_account_invalid`            | 400 | settlement account number is not 8–32 digits |
| `notify_url_invalid`              | 400 | not an absolute http(s) URL |
| `payment_method_invalid`          | 400 | a payment method we do not offer |
| `public_key_invalid`              | 400 | not an RSA ≥ 2048 PEM / SM2 hex public key |
| `store_code_invalid`              | 400 | store code is not 4–16 of A–Z, 0–9 |
| `sub_merchant_id_invalid`         | 400 | channel sub-merchant id malformed or channel unknown |
| `reason_required`                 | 400 | reject / freeze / close without a reason |
| `merchant_not_found`              | 404 | |
| `agent_not_found`                 | 404 | |
| `app_not_found`                   | 404 | |
| `app_key_not_found`               | 404 | |
| `store_not_found`                 | 404 | |
| `merchant_transition_invalid`     | 409 | review action not allowed from the current status |
| `merchant_closed`                 | 409 | a closed merchant gets no new apps, stores or ids |
| `merchant_already_onboarded`      | 409 | the USCC is on a merchant not closed or rejected |
| `agent_depth_exceeded`            | 409 | a sub-agent deeper than `MAX_AGENT_DEPTH` levels |
| `sub_merchant_ids_require_isv`    | 409 | channel sub-merchant ids on a `direct` merchant |
| `store_code_taken`                | 409 | |
| `app_key_exists`                  | 409 | this public key is already on the app |
| `app_key_limit_reached`           | 409 | `MAX_LIVE_KEYS_PER_APP` usable keys already |
"""

from __future__ import annotations

from cloudpay.kernel.errors import Conflict, InvalidRequest, NotFound


class InvalidField(InvalidRequest):
    """A field of an application or request fails its check; `param` names it."""

    default_code = "parameter_invalid"


class ReasonRequired(InvalidRequest):
    default_code = "reason_required"


class MerchantNotFound(NotFound):
    default_code = "merchant_not_found"


class AgentNotFound(NotFound):
    default_code = "agent_not_found"


class AppNotFound(NotFound):
    default_code = "app_not_found"


class AppKeyNotFound(NotFound):
    default_code = "app_key_not_found"


class StoreNotFound(NotFound):
    default_code = "store_not_found"


class IllegalTransition(Conflict):
    default_code = "merchant_transition_invalid"


class MerchantClosed(Conflict):
    default_code = "merchant_closed"


class MerchantAlreadyOnboarded(Conflict):
    default_code = "merchant_already_onboarded"


class AgentTooDeep(Conflict):
    default_code = "agent_depth_exceeded"


class SubMerchantIdsRequireIsv(Conflict):
    default_code = "sub_merchant_ids_require_isv"


class StoreCodeTaken(Conflict):
    default_code = "store_code_taken"


class AppKeyExists(Conflict):
    default_code = "app_key_exists"


class AppKeyLimitReached(Conflict):
    default_code = "app_key_limit_reached"
