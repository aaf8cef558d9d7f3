"""Merchants' rules, pure: the onboarding (进件) state machine, field checks, key rotation.

Hierarchy: platform → agents (代理商, up to `MAX_AGENT_DEPTH` levels) → merchants → stores.
A merchant is `direct`, or an `isv` sub-merchant acquired under the platform's channel
accounts (服务商模式) and then carries the channel's sub-merchant id (WeChat `sub_mchid`, …).

Error messages never quote the value they refuse: it may be someone's ID or phone number.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from stdnum import luhn
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

from cloudpay.kernel.crypto import (
    MIN_RSA_KEY_BITS,
    InvalidKey,
    normalize_card_number,
    normalize_id_number,
    normalize_phone,
    rsa_public_key_serial_no,
    sm2_public_key_serial_no,
)
from cloudpay.kernel.masking import mask_card_number, mask_id_number, mask_phone
from cloudpay.kernel.vault import PersonalField
from cloudpay.merchants.errors import (
    AgentTooDeep,
    IllegalTransition,
    InvalidField,
    ReasonRequired,
)

# --- limits -----------------------------------------------------------------------------
MAX_AGENT_DEPTH: Final = 5  # 省/市/区/网点 and one spare: deeper chains are a commission smell
MAX_REASON_LENGTH: Final = 500
MAX_NOTIFY_URL_LENGTH: Final = 512
MAX_LIVE_KEYS_PER_APP: Final = 5  # active + retiring within overlap
DEFAULT_KEY_OVERLAP_HOURS: Final = 72  # old key keeps working while merchants redeploy
MAX_KEY_OVERLAP_HOURS: Final = 30 * 24
STORE_CODE_LENGTH: Final = 8  # 32**8 ≈ 10**12 codes: collisions are a non-event
STORE_CODE_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I L O U

# What an app may enable: each channel's methods, plus `micropay` (any wallet's payment code)
# and `aggregated_qr` (the store QR any wallet can scan).
PAYMENT_METHODS: Final = (
    "wechat_native", "wechat_jsapi", "wechat_micropay",
    "alipay_qr", "alipay_wap", "alipay_jsapi", "alipay_micropay",
    "unionpay_qr", "unionpay_wap", "unionpay_micropay",
    "micropay", "aggregated_qr",
)  # fmt: skip
SUB_MERCHANT_CHANNELS: Final = ("wechat", "alipay", "unionpay")

_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_CHARACTERS = re.compile(r"[\d\s+\-()]+")
_MCC = re.compile(r"\d{4}")
_ACCOUNT_CHARACTERS = re.compile(r"[\d\s-]+")
_STORE_CODE = re.compile(r"[A-Z0-9]{4,16}")
_SUB_MERCHANT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SM2_RAW_POINT = re.compile(r"[0-9a-f]{128}")


# --- personal fields: encrypted at rest, blind-indexed, masked --------------------------
LEGAL_PERSON_ID_NUMBER: Final = PersonalField(
    "merchants.legal_person_id_number", normalize_id_number, mask_id_number
)
CONTACT_PHONE: Final = PersonalField("merchants.contact_phone", normalize_phone, mask_phone)
SETTLEMENT_ACCOUNT_NUMBER: Final = PersonalField(
    "merchants.settlement_account_number", normalize_card_number, mask_card_number
)


# --- the onboarding state machine -------------------------------------------------------
class MerchantStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    FROZEN = "frozen"
    CLOSED = "closed"


class ReviewAction(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CLOSE = "close"


_S, _A = MerchantStatus, ReviewAction
TRANSITIONS: Final[Mapping[tuple[MerchantStatus, ReviewAction], MerchantStatus]] = {
    (_S.DRAFT, _A.SUBMIT): _S.SUBMITTED,
    (_S.REJECTED, _A.SUBMIT): _S.SUBMITTED,  # 驳回后重新提交
    (_S.SUBMITTED, _A.APPROVE): _S.APPROVED,
    (_S.SUBMITTED, _A.REJECT): _S.REJECTED,
    (_S.APPROVED, _A.FREEZE): _S.FROZEN,
    (_S.FROZEN, _A.UNFREEZE): _S.APPROVED,
    **{(status, _A.CLOSE): _S.CLOSED for status in _S if status is not _S.CLOSED},
}
REASON_REQUIRED: Final = frozenset({_A.REJECT, _A.FREEZE, _A.CLOSE})


def next_status(status: MerchantStatus, action: ReviewAction, reason: str | None) -> MerchantStatus:
    """The status after `action`, or the refusal: an illegal move, or a missing reason."""
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise IllegalTransition(
            f"cannot {action.value} a merchant that is {status.value}",
            details={"status": status.value, "action": action.value},
        )
    if action in REASON_REQUIRED and not (reason and reason.strip()):
        raise ReasonRequired(f"{action.value} needs a reason", param="reason")
    if reason is not None and len(reason) > MAX_REASON_LENGTH:
        raise InvalidField(
            f"reason is limited to {MAX_REASON_LENGTH} characters",
            code="parameter_invalid",
            param="reason",
        )
    return target


# --- field checks (each returns the canonical form or raises InvalidField) --------------
def check_uscc(value: str, *, param: str = "unified_social_credit_code") -> str:
    """统一社会信用代码: 18 characters with a check character (GB 32100-2015)."""
    try:
        return str(uscc.validate(value)).upper()
    except ValidationError as error:
        raise InvalidField(
            f"{param} is not a valid unified social credit code: {error}",
            code="uscc_invalid",
            param=param,
        ) from None


def check_resident_id(value: str, *, param: str = "legal_person_id_number") -> str:
    """居民身份证号码: 18 characters, a real birth date, the ISO 7064 check character."""
    normalized = normalize_id_number(value)
    try:
        ric.validate(normalized)
    except ValidationError as error:
        raise InvalidField(
            f"{param} is not a valid resident ID number: {error}",
            code="resident_id_invalid",
            param=param,
        ) from None
    return normalized


def check_mobile_phone(value: str, *, param: str = "contact_phone") -> str:
    """A mainland mobile number, optionally written with +86 and separators."""
    normalized = normalize_phone(value)
    if not _PHONE_CHARACTERS.fullmatch(value) or not _MOBILE.fullmatch(normalized):
        raise InvalidField(
            f"{param} is not a mainland mobile number (11 digits starting 13–19)",
            code="phone_invalid",
            param=param,
        )
    return normalized


def check_mcc(value: str, *, param: str = "mcc") -> str:
    """Merchant category code (ISO 18245): four digits."""
    if not _MCC.fullmatch(value):
        raise InvalidField(f"{param} must be 4 digits", code="mcc_invalid", param=param)
    return value


@dataclass(frozen=True)
class CheckedAccountNumber:
    digits: str
    checksum_ok: bool  # Luhn: card-style numbers pass; many corporate accounts have no Luhn


def check_bank_account_number(
    value: str, *, param: str = "settlement_account.account_number"
) -> CheckedAccountNumber:
    """8–32 digits; a failed Luhn check is only a warning (not every account number has one)."""
    digits = normalize_card_number(value)
    if not _ACCOUNT_CHARACTERS.fullmatch(value) or not 8 <= len(digits) <= 32:
        raise InvalidField(f"{param} must be 8–32 digits", code="bank_account_invalid", param=param)
    return CheckedAccountNumber(digits, bool(luhn.is_valid(digits)))


def check_notify_url(value: str, *, param: str = "notify_url") -> str:
    """An absolute http(s) URL with a host and no credentials in it."""
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        not port_ok
        or len(value) > MAX_NOTIFY_URL_LENGTH
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or any(c.isspace() for c in value)
    ):
        raise InvalidField(
            f"{param} must be an absolute http(s) URL of at most {MAX_NOTIFY_URL_LENGTH} chars",
            code="notify_url_invalid",
            param=param,
        )
    return value


def check_payment_methods(values: Iterable[str], *, param: str = "payment_methods") -> list[str]:
    """Known methods, deduplicated, in our canonical order; at least one."""
    chosen = set(values)
    unknown = chosen - set(PAYMENT_METHODS)
    if unknown or not chosen:
        raise InvalidField(
            f"{param} must be a non-empty subset of {', '.join(PAYMENT_METHODS)}",
            code="payment_method_invalid",
            param=param,
        )
    return [method for method in PAYMENT_METHODS if method in chosen]


def check_store_code(value: str, *, param: str = "store_code") -> str:
    code = value.strip().upper()
    if not _STORE_CODE.fullmatch(code):
        raise InvalidField(
            f"{param} must be 4–16 letters A–Z or digits", code="store_code_invalid", param=param
        )
    return code


def new_store_code() -> str:
    return "".join(secrets.choice(STORE_CODE_ALPHABET) for _ in range(STORE_CODE_LENGTH))


def check_sub_merchant_ids(
    values: Mapping[str, str], *, param: str = "channel_sub_merchant_ids"
) -> dict[str, str]:
    for channel, sub_merchant_id in values.items():
        if channel not in SUB_MERCHANT_CHANNELS or not _SUB_MERCHANT_ID.fullmatch(sub_merchant_id):
            raise InvalidField(
                f"{param}: channels are {', '.join(SUB_MERCHANT_CHANNELS)}; ids 1–32 of "
                "A–Z a–z 0–9 _ -",
                code="sub_merchant_id_invalid",
                param=f"{param}.{channel}",
            )
    return dict(sorted(values.items()))


# --- agents -----------------------------------------------------------------------------
def child_agent_depth(parent_depth: int | None) -> int:
    """Depth of a new agent: 1 under the platform, parent + 1 below another agent."""
    depth = 1 if parent_depth is None else parent_depth + 1
    if depth > MAX_AGENT_DEPTH:
        raise AgentTooDeep(f"agents nest at most {MAX_AGENT_DEPTH} levels", param="parent_agent_id")
    return depth


# --- apps and keys ----------------------------------------------------------------------
class AcquiringMode(StrEnum):
    DIRECT = "direct"
    ISV = "isv"  # 服务商模式: sub-merchant under the platform's channel accounts


class AppStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class KeyAlgorithm(StrEnum):
    RSA = "RSA"
    SM2 = "SM2"


class KeyStatus(StrEnum):
    ACTIVE = "active"
    RETIRING = "retiring"  # superseded; still verifies until `retire_at`
    REVOKED = "revoked"


class KeySource(StrEnum):
    GENERATED = "generated"  # the platform made the pair and handed the private key out once
    UPLOADED = "uploaded"


@dataclass(frozen=True)
class CanonicalPublicKey:
    text: str  # RSA: SubjectPublicKeyInfo PEM; SM2: "04" + X + Y, lower-case hex
    serial_no: str


def canonical_public_key(
    algorithm: KeyAlgorithm, text: str, *, param: str = "public_key"
) -> CanonicalPublicKey:
    """Parse an uploaded public key; refuse anything but RSA ≥ 2048 PEM or an SM2 point."""
    try:
        if algorithm is KeyAlgorithm.RSA:
            pem = _canonical_rsa_pem(text)
            return CanonicalPublicKey(pem, rsa_public_key_serial_no(pem))
        point = text.strip().lower()
        point = "04" + point if _SM2_RAW_POINT.fullmatch(point) else point
        return CanonicalPublicKey(point, sm2_public_key_serial_no(point))
    except InvalidKey as error:
        raise InvalidField(
            f"{param} is not a valid {algorithm.value} public key: {error}",
            code="public_key_invalid",
            param=param,
        ) from None


def _canonical_rsa_pem(text: str) -> str:
    try:
        key = serialization.load_pem_public_key(text.strip().encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as error:
        raise InvalidKey("not a PEM public key") from error
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_KEY_BITS:
        raise InvalidKey(f"not an RSA key of at least {MIN_RSA_KEY_BITS} bits")
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def check_overlap_hours(hours: int, *, param: str = "previous_key_overlap_hours") -> timedelta:
    if not 0 <= hours <= MAX_KEY_OVERLAP_HOURS:
        raise InvalidField(
            f"{param} must be 0–{MAX_KEY_OVERLAP_HOURS}", code="parameter_invalid", param=param
        )
    return timedelta(hours=hours)


def key_is_usable(
    *,
    key_status: KeyStatus,
    retire_at: datetime | None,
    app_status: AppStatus,
    merchant_status: MerchantStatus,
    now: datetime,
) -> bool:
    """Whether a signature made with this key is accepted now."""
    if app_status is not AppStatus.ENABLED or merchant_status is not MerchantStatus.APPROVED:
        return False
    if key_status is KeyStatus.ACTIVE:
        return True
    return key_status is KeyStatus.RETIRING and retire_at is not None and now < retire_at


def key_is_live(key_status: KeyStatus, retire_at: datetime | None, now: datetime) -> bool:
    """Counts towards `MAX_LIVE_KEYS_PER_APP`: active, or retiring within its overlap."""
    if key_status is KeyStatus.ACTIVE:
        return True
    return key_status is KeyStatus.RETIRING and retire_at is not None and now < retire_at


# --- records ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    parent_agent_id: str | None
    depth: int
    created_at: datetime


@dataclass(frozen=True)
class MerchantApplication:
    """What 进件 brings, as typed by the applicant (plain personal values: handle with care)."""

    legal_name: str
    unified_social_credit_code: str
    legal_person_name: str
    legal_person_id_number: str
    contact_phone: str
    mcc: str
    settlement_bank_name: str | None = None
    settlement_account_name: str | None = None
    settlement_account_number: str | None = None
    agent_id: str | None = None
    acquiring_mode: AcquiringMode = AcquiringMode.DIRECT
    channel_sub_merchant_ids: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        return f"MerchantApplication(legal_name={self.legal_name!r}, …)"


@dataclass(frozen=True)
class SettlementAccount:
    bank_name: str
    account_name: str
    account_number_masked: str
    account_number_checksum_ok: bool


@dataclass(frozen=True)
class Merchant:
    """A merchant as every reader sees it: personal values only in masked form."""

    id: str
    agent_id: str | None
    legal_name: str
    unified_social_credit_code: str
    legal_person_name: str  # 法定代表人 is public in the business registry
    legal_person_id_number_masked: str
    contact_phone_masked: str
    mcc: str
    settlement_account: SettlementAccount | None
    acquiring_mode: AcquiringMode
    channel_sub_merchant_ids: Mapping[str, str]
    status: MerchantStatus
    status_reason: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def warnings(self) -> list[str]:
        account = self.settlement_account
        if account is not None and not account.account_number_checksum_ok:
            return ["settlement_account_number_checksum_failed"]
        return []


@dataclass(frozen=True)
class Review:
    id: str
    merchant_id: str
    action: ReviewAction
    from_status: MerchantStatus
    to_status: MerchantStatus
    reason: str | None
    actor: str
    created_at: datetime


@dataclass(frozen=True)
class Store:
    id: str
    merchant_id: str
    name: str
    store_code: str
    address: str | None
    created_at: datetime


@dataclass(frozen=True)
class App:
    id: str
    merchant_id: str
    name: str
    notify_url: str | None
    payment_methods: tuple[str, ...]
    status: AppStatus
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AppKeyInfo:
    """One public key of an app, with what a signature check needs to decide.

    `usable`: the key is active (or retiring before `retire_at`), the app is enabled and the
    merchant approved — evaluated at the reader's `now`.
    """

    app_id: str
    merchant_id: str
    serial_no: str
    algorithm: str  # "RSA" | "SM2"
    public_key: str  # RSA: PEM; SM2: hex point
    usable: bool
    app_status: str
    merchant_status: str
    status: str = KeyStatus.ACTIVE.value
    retire_at: datetime | None = None
    revoked_at: datetime | None = None
    source: str = KeySource.UPLOADED.value
    created_at: datetime | None = None
