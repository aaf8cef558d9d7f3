"""Citizens' pure checks: real-name fields, payer ids, and how personal values are sealed."""

from __future__ import annotations

import pytest

from cloudpay.citizen.errors import InvalidCitizenField
from cloudpay.citizen.model import (
    NAME,
    PHONE,
    RESIDENT_ID,
    check_district,
    check_mobile_phone,
    check_name,
    check_payer_id,
    check_resident_id,
)
from cloudpay.kernel.vault import PersonalDataVault

VALID_ID = "11010519491231002X"  # the example of GB 11643-1999


def test_resident_id_is_checked_and_normalised() -> None:
    """Spaces and a lower-case check character are accepted; a wrong check digit is not."""
    assert check_resident_id("110105 19491231 002x") == VALID_ID
    with pytest.raises(InvalidCitizenField) as refused:
        check_resident_id("110105194912310021")
    assert refused.value.code == "resident_id_invalid"
    assert "110105" not in refused.value.message


def test_mobile_phone_accepts_plus_86_and_refuses_landlines() -> None:
    """+86 138-0013-8000 is a mobile number; a landline or letters are `phone_invalid`."""
    assert check_mobile_phone("+86 138-0013-8000") == "13800138000"
    for bad in ("0536-8888888", "1380013800a", "12800138000"):
        with pytest.raises(InvalidCitizenField) as refused:
            check_mobile_phone(bad)
        assert refused.value.code == "phone_invalid"


@pytest.mark.parametrize(
    ("check", "value", "code"),
    [
        (check_name, "", "name_invalid"),
        (check_name, "张\x00三", "name_invalid"),
        (check_district, "37070", "district_invalid"),
        (check_payer_id, "o" * 65, "payer_id_invalid"),
        (check_payer_id, "oUp F8u", "payer_id_invalid"),
    ],
)
def test_malformed_fields_are_refused_with_their_code(check: object, value: str, code: str) -> None:
    """Each field check names its own refusal."""
    with pytest.raises(InvalidCitizenField) as refused:
        check(value)  # type: ignore[operator]
    assert refused.value.code == code


def test_sealed_values_are_masked_and_indexed_the_same_however_written() -> None:
    """The blind index ignores formatting (one person = one ID); masks hide the middle."""
    vault = PersonalDataVault.from_hex("66" * 32, "77" * 32)
    sealed = vault.seal(RESIDENT_ID, VALID_ID)
    assert sealed.masked == "110***********002X"
    assert vault.index(RESIDENT_ID, "110105 19491231 002x") == sealed.blind_index
    assert VALID_ID not in sealed.token
    assert vault.seal(PHONE, "13800138000").masked == "138****8000"
    assert vault.seal(NAME, "欧阳娜娜").masked == "欧阳**"
    assert vault.open(RESIDENT_ID, sealed.token).reveal() == VALID_ID
