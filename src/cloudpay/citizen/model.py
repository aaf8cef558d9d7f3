"""Citizens' rules, pure: real-name identity (实名) checks and the wallet payer identities.

One person is one resident ID (居民身份证号码), however many wallets pay for them: the ID's
blind index is unique, and each channel payer id (WeChat `openid`, Alipay `buyer_id`,
UnionPay user id) points at exactly one citizen, so a voucher follows the person whichever
wallet pays. Error messages never quote the refused value: it is someone's personal data.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from stdnum.cn import ric
from stdnum.exceptions import ValidationError

from cloudpay.citizen.errors import InvalidCitizenField
from cloudpay.kernel.crypto import normalize_id_number, normalize_phone
from cloudpay.kernel.masking import mask_id_number, mask_name, mask_phone
from cloudpay.kernel.vault import PersonalField

MAX_NAME_LENGTH: Final = 64
MAX_PAYER_IDS_PER_CITIZEN: Final = 20  # a handful of wallets per person; bound the list
_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_CHARACTERS = re.compile(r"[\d\s+\-()]+")
_DISTRICT = re.compile(r"\d{6}")  # GB/T 2260 county-level division code, e.g. 370702
# openid is 28 chars, Alipay buyer_id 16 digits (2088…), newer open_id longer: allow 64.
_PAYER_ID = re.compile(r"[A-Za-z0-9_\-]{6,64}")


def _normalize_name(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


NAME: Final = PersonalField("citizens.name", _normalize_name, mask_name)
RESIDENT_ID: Final = PersonalField("citizens.resident_id", normalize_id_number, mask_id_number)
PHONE: Final = PersonalField("citizens.phone", normalize_phone, mask_phone)


class PayerChannel(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"
    UNIONPAY = "unionpay"


@dataclass(frozen=True)
class Registration:
    """What an operator (or the city app) sends to register a citizen; values still plain."""

    name: str
    resident_id: str
    phone: str
    resident: bool
    district: str | None


@dataclass(frozen=True)
class PayerId:
    channel: PayerChannel
    payer_id: str
    citizen_id: str
    created_at: datetime


@dataclass(frozen=True)
class Citizen:
    """A citizen as every reader sees it: personal values only masked."""

    id: str
    name_masked: str
    resident_id_masked: str
    phone_masked: str
    resident: bool
    district: str | None
    created_at: datetime
    payer_ids: tuple[PayerId, ...] = ()


def check_name(value: str, *, param: str = "name") -> str:
    name = _normalize_name(value)
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidCitizenField(
            f"{param} must be 1–{MAX_NAME_LENGTH} printable characters",
            code="name_invalid",
            param=param,
        )
    return name


def check_resident_id(value: str, *, param: str = "resident_id") -> str:
    """居民身份证号码: 18 characters, a real birth date, the ISO 7064 check character."""
    normalized = normalize_id_number(value)
    try:
        ric.validate(normalized)
    except ValidationError as error:
        raise InvalidCitizenField(
            f"{param} is not a valid resident ID number: {error}",
            code="resident_id_invalid",
            param=param,
        ) from None
    return normalized


def check_mobile_phone(value: str, *, param: str = "phone") -> str:
    """A mainland mobile number, optionally written with +86 and separators."""
    normalized = normalize_phone(value)
    if not _PHONE_CHARACTERS.fullmatch(value) or not _MOBILE.fullmatch(normalized):
        raise InvalidCitizenField(
            f"{param} is not a mainland mobile number (11 digits starting 13–19)",
            code="phone_invalid",
            param=param,
        )
    return normalized


def check_district(value: str | None, *, param: str = "district") -> str | None:
    if value is None:
        return None
    if not _DISTRICT.fullmatch(value):
        raise InvalidCitizenField(
            f"{param} must be a 6-digit administrative division code",
            code="district_invalid",
            param=param,
        )
    return value


def check_payer_id(value: str, *, param: str = "payer_id") -> str:
    if not _PAYER_ID.fullmatch(value):
        raise InvalidCitizenField(
            f"{param} must be 6–64 letters, digits, '_' or '-'",
            code="payer_id_invalid",
            param=param,
        )
    return value
