"""Merchants' pure rules: the onboarding state machine, field checks, keys, vault and views."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cloudpay.kernel.crypto import (
    DecryptionFailed,
    InvalidKey,
    generate_sm2_key_pair,
    rsa_public_key_serial_no,
)
from cloudpay.kernel.vault import PersonalDataVault
from cloudpay.merchants.errors import AgentTooDeep, IllegalTransition, InvalidField, ReasonRequired
from cloudpay.merchants.model import (
    CONTACT_PHONE,
    LEGAL_PERSON_ID_NUMBER,
    MAX_AGENT_DEPTH,
    SETTLEMENT_ACCOUNT_NUMBER,
    AcquiringMode,
    AppStatus,
    KeyAlgorithm,
    KeyStatus,
    Merchant,
    MerchantStatus,
    ReviewAction,
    SettlementAccount,
    canonical_public_key,
    check_bank_account_number,
    check_mcc,
    check_mobile_phone,
    check_notify_url,
    check_payment_methods,
    check_resident_id,
    check_store_code,
    check_sub_merchant_ids,
    check_uscc,
    child_agent_depth,
    key_is_usable,
    new_store_code,
    next_status,
)
from cloudpay.merchants.schemas import merchant_view

S, A = MerchantStatus, ReviewAction
ID_NUMBER = "11010519491231002X"
PHONE = "13800138000"
ACCOUNT = "6222021234567890128"  # passes Luhn
NOW = datetime(2026, 1, 1, tzinfo=UTC)

# The whole table, written out independently of `TRANSITIONS`: anything not here is refused.
ALLOWED = {
    (S.DRAFT, A.SUBMIT): S.SUBMITTED,
    (S.REJECTED, A.SUBMIT): S.SUBMITTED,
    (S.SUBMITTED, A.APPROVE): S.APPROVED,
    (S.SUBMITTED, A.REJECT): S.REJECTED,
    (S.APPROVED, A.FREEZE): S.FROZEN,
    (S.FROZEN, A.UNFREEZE): S.APPROVED,
    (S.DRAFT, A.CLOSE): S.CLOSED,
    (S.SUBMITTED, A.CLOSE): S.CLOSED,
    (S.REJECTED, A.CLOSE): S.CLOSED,
    (S.APPROVED, A.CLOSE): S.CLOSED,
    (S.FROZEN, A.CLOSE): S.CLOSED,
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(S, A)))
def test_every_status_and_action_pair_is_allowed_or_refused_with_409(
    status: MerchantStatus, action: ReviewAction
) -> None:
    """Each of the 36 (status, action) pairs moves as the table says or is a 409 refusal."""
    expected = ALLOWED.get((status, action))
    if expected is None:
        with pytest.raises(IllegalTransition) as refused:
            next_status(status, action, "a reason")
        assert refused.value.http_status == 409
        assert refused.value.code == "merchant_transition_invalid"
        assert refused.value.details == {"status": status.value, "action": action.value}
    else:
        assert next_status(status, action, "a reason") is expected


@pytest.mark.parametrize("action", [A.REJECT, A.FREEZE, A.CLOSE])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_freeze_and_close_need_a_reason(action: ReviewAction, reason: str | None) -> None:
    """Reject, freeze and close are refused without a non-blank reason, naming `reason`."""
    status = S.SUBMITTED if action is A.REJECT else S.APPROVED
    with pytest.raises(ReasonRequired) as refused:
        next_status(status, action, reason)
    assert (refused.value.code, refused.value.param) == ("reason_required", "reason")


def test_a_reason_has_a_length_limit() -> None:
    """A reason longer than 500 characters is refused with the `reason` param."""
    with pytest.raises(InvalidField) as refused:
        next_status(S.SUBMITTED, A.REJECT, "x" * 501)
    assert refused.value.param == "reason"


def test_closed_is_terminal() -> None:
    """No action leaves `closed`."""
    assert all((S.CLOSED, action) not in ALLOWED for action in A)
    for action in A:
        with pytest.raises(IllegalTransition):
            next_status(S.CLOSED, action, "reason")


# --- field checks -----------------------------------------------------------------------
def test_uscc_is_checked_and_canonicalised() -> None:
    """A valid USCC comes back upper-case and compact; a bad check character is refused."""
    assert check_uscc(" 91110000600037341l ") == "91110000600037341L"
    for bad in ("91110000600037341A", "123", ""):
        with pytest.raises(InvalidField) as refused:
            check_uscc(bad)
        assert (refused.value.code, refused.value.param) == (
            "uscc_invalid",
            "unified_social_credit_code",
        )


def test_resident_id_is_checked_and_never_quoted() -> None:
    """A valid resident ID is normalised; a bad one is refused without echoing it."""
    assert check_resident_id("110105 19491231 002x") == ID_NUMBER
    for bad in ("110105194912310021", "11010519491331002X", "1234"):
        with pytest.raises(InvalidField) as refused:
            check_resident_id(bad)
        assert refused.value.code == "resident_id_invalid"
        assert refused.value.param == "legal_person_id_number"
        assert bad not in refused.value.message


@pytest.mark.parametrize("good", ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000"])
def test_mainland_mobile_numbers_are_accepted_in_common_spellings(good: str) -> None:
    """Separators and a +86/0086 prefix are fine; the canonical form is 11 digits."""
    assert check_mobile_phone(good) == PHONE


@pytest.mark.parametrize("bad", ["12800138000", "1380013800", "0535-8888888", "138abc00138000"])
def test_other_phone_numbers_are_refused(bad: str) -> None:
    """Landlines, wrong prefixes, wrong lengths and letters are refused, never echoed."""
    with pytest.raises(InvalidField) as refused:
        check_mobile_phone(bad)
    assert (refused.value.code, refused.value.param) == ("phone_invalid", "contact_phone")
    assert bad not in refused.value.message


def test_mcc_is_four_digits() -> None:
    """An MCC is exactly four digits."""
    assert check_mcc("5812") == "5812"
    for bad in ("581", "58120", "58a2"):
        with pytest.raises(InvalidField, match="4 digits"):
            check_mcc(bad)


def test_bank_account_luhn_is_only_a_warning() -> None:
    """Luhn failures are accepted with `checksum_ok` false; letters and short numbers are not."""
    assert check_bank_account_number("6222 0212 3456 7890 128").checksum_ok is True
    unchecked = check_bank_account_number("6222021234567890123")
    assert (unchecked.digits, unchecked.checksum_ok) == ("6222021234567890123", False)
    for bad in ("1234567", "62220212345678901a"):
        with pytest.raises(InvalidField) as refused:
            check_bank_account_number(bad)
        assert refused.value.param == "settlement_account.account_number"


@pytest.mark.parametrize(
    "url", ["https://shop.example.com/notify", "http://127.0.0.1:8080/hook?x=1"]
)
def test_http_and_https_notify_urls_are_accepted(url: str) -> None:
    """Absolute http(s) URLs with a host pass unchanged."""
    assert check_notify_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https:///no-host",
        "example.com/notify",
        "https://user:pw@example.com/",
        "https://example.com/a b",
        "https://example.com:99999/",
        "https://example.com/" + "a" * 600,
    ],
)
def test_other_notify_urls_are_refused(url: str) -> None:
    """Other schemes, missing hosts, credentials, spaces, bad ports and huge URLs are 400s."""
    with pytest.raises(InvalidField) as refused:
        check_notify_url(url)
    assert (refused.value.code, refused.value.param) == ("notify_url_invalid", "notify_url")


def test_payment_methods_are_known_deduplicated_and_ordered() -> None:
    """Known methods come back once each in canonical order; unknown or none is refused."""
    assert check_payment_methods(["wechat_jsapi", "wechat_native", "wechat_jsapi"]) == [
        "wechat_native",
        "wechat_jsapi",
    ]
    for bad in ([], ["paypal_qr"], ["wechat_native", "cash"]):
        with pytest.raises(InvalidField) as refused:
            check_payment_methods(bad)
        assert refused.value.code == "payment_method_invalid"


def test_store_codes_are_short_and_upper_case() -> None:
    """Given codes are upper-cased and checked; generated ones are 8 Crockford characters."""
    assert check_store_code("wf01") == "WF01"
    for bad in ("ab", "WF-01", "A" * 17):
        with pytest.raises(InvalidField):
            check_store_code(bad)
    codes = {new_store_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(check_store_code(code) == code and len(code) == 8 for code in codes)


def test_sub_merchant_ids_name_a_known_channel() -> None:
    """Sub-merchant ids are per known channel and well-formed; the param names the channel."""
    assert check_sub_merchant_ids({"wechat": "1900000109"}) == {"wechat": "1900000109"}
    with pytest.raises(InvalidField) as refused:
        check_sub_merchant_ids({"paypal": "x"})
    assert refused.value.param == "channel_sub_merchant_ids.paypal"
    with pytest.raises(InvalidField):
        check_sub_merchant_ids({"wechat": "has space"})


def test_agents_nest_at_most_five_levels() -> None:
    """Depth counts from 1 under the platform; a sixth level is refused."""
    assert child_agent_depth(None) == 1
    assert child_agent_depth(MAX_AGENT_DEPTH - 1) == MAX_AGENT_DEPTH
    with pytest.raises(AgentTooDeep) as refused:
        child_agent_depth(MAX_AGENT_DEPTH)
    assert refused.value.http_status == 409


# --- keys -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rsa_2048_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )


def test_rsa_public_keys_are_canonicalised_to_spki(rsa_2048_pem: str) -> None:
    """A PKCS#1 RSA-2048 PEM is stored as SubjectPublicKeyInfo with its serial number."""
    key = canonical_public_key(KeyAlgorithm.RSA, rsa_2048_pem)
    assert key.text.startswith("-----BEGIN PUBLIC KEY-----")
    assert key.serial_no == rsa_public_key_serial_no(key.text)
    assert canonical_public_key(KeyAlgorithm.RSA, key.text) == key


def test_weak_or_foreign_public_keys_are_refused() -> None:
    """RSA-1024, an EC key and garbage are all `public_key_invalid`."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 — the weak key under test
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    for text in (
        weak.public_bytes(serialization.Encoding.PEM, spki).decode(),
        ec_key.public_bytes(serialization.Encoding.PEM, spki).decode(),
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----",
    ):
        with pytest.raises(InvalidField) as refused:
            canonical_public_key(KeyAlgorithm.RSA, text)
        assert (refused.value.code, refused.value.param) == ("public_key_invalid", "public_key")


def test_sm2_public_keys_are_hex_points() -> None:
    """An SM2 point is accepted with or without its 04 prefix; off-curve points are refused."""
    public_hex = generate_sm2_key_pair().public_key_hex
    with_prefix = canonical_public_key(KeyAlgorithm.SM2, public_hex.upper())
    assert with_prefix.text == public_hex.lower()
    assert canonical_public_key(KeyAlgorithm.SM2, public_hex[2:]) == with_prefix
    with pytest.raises(InvalidField):
        canonical_public_key(KeyAlgorithm.SM2, "04" + "11" * 64)


@pytest.mark.parametrize(
    ("key_status", "retire_in_s", "app_status", "merchant_status", "usable"),
    [
        (KeyStatus.ACTIVE, None, AppStatus.ENABLED, S.APPROVED, True),
        (KeyStatus.RETIRING, 1, AppStatus.ENABLED, S.APPROVED, True),
        (KeyStatus.RETIRING, 0, AppStatus.ENABLED, S.APPROVED, False),
        (KeyStatus.RETIRING, -1, AppStatus.ENABLED, S.APPROVED, False),
        (KeyStatus.REVOKED, 1, AppStatus.ENABLED, S.APPROVED, False),
        (KeyStatus.ACTIVE, None, AppStatus.DISABLED, S.APPROVED, False),
        (KeyStatus.ACTIVE, None, AppStatus.ENABLED, S.FROZEN, False),
        (KeyStatus.ACTIVE, None, AppStatus.ENABLED, S.SUBMITTED, False),
        (KeyStatus.ACTIVE, None, AppStatus.ENABLED, S.CLOSED, False),
    ],
)
def test_key_usability(
    key_status: KeyStatus,
    retire_in_s: int | None,
    app_status: AppStatus,
    merchant_status: MerchantStatus,
    usable: bool,
) -> None:
    """Usable = active or retiring before retire_at, on an enabled app of an approved merchant."""
    retire_at = None if retire_in_s is None else NOW + timedelta(seconds=retire_in_s)
    assert (
        key_is_usable(
            key_status=key_status,
            retire_at=retire_at,
            app_status=app_status,
            merchant_status=merchant_status,
            now=NOW,
        )
        is usable
    )


# --- vault and views --------------------------------------------------------------------
@pytest.fixture
def vault() -> PersonalDataVault:
    return PersonalDataVault.from_hex("22" * 32, "33" * 32)


def test_vault_seals_indexes_and_masks(vault: PersonalDataVault) -> None:
    """A sealed value decrypts back, indexes like its other spellings, and masks correctly."""
    sealed = vault.seal(LEGAL_PERSON_ID_NUMBER, "110105194912310 02x")
    assert ID_NUMBER not in sealed.token
    assert ID_NUMBER not in repr(sealed)
    assert vault.open(LEGAL_PERSON_ID_NUMBER, sealed.token).reveal() == ID_NUMBER
    assert sealed.blind_index == vault.index(LEGAL_PERSON_ID_NUMBER, ID_NUMBER)
    assert sealed.masked == "110***********002X"
    assert vault.seal(CONTACT_PHONE, "+86 13800138000").masked == "138****8000"
    assert vault.seal(SETTLEMENT_ACCOUNT_NUMBER, ACCOUNT).masked == "622202*********0128"


def test_vault_tokens_are_bound_to_their_column(vault: PersonalDataVault) -> None:
    """A token moved to another column does not decrypt; indexes differ across columns."""
    token = vault.seal(CONTACT_PHONE, PHONE).token
    with pytest.raises(DecryptionFailed):
        vault.open(SETTLEMENT_ACCOUNT_NUMBER, token)
    assert vault.index(CONTACT_PHONE, PHONE) != vault.index(SETTLEMENT_ACCOUNT_NUMBER, PHONE)


def test_vault_keys_from_settings() -> None:
    """32-byte keys give AES-256-GCM, 16-byte keys SM4-GCM; anything else is refused."""
    sm4 = PersonalDataVault.from_hex("44" * 16, "33" * 32)
    assert ".sm4gcm." in sm4.seal(CONTACT_PHONE, PHONE).token
    for field_key, index_key in (("44" * 20, "33" * 32), ("zz", "33" * 32), ("44" * 32, "33")):
        with pytest.raises(InvalidKey):
            PersonalDataVault.from_hex(field_key, index_key)


def test_merchant_view_shows_personal_data_only_masked(vault: PersonalDataVault) -> None:
    """The wire view of a merchant carries masked ID, phone and account, and a Luhn warning."""
    id_number = vault.seal(LEGAL_PERSON_ID_NUMBER, ID_NUMBER)
    phone = vault.seal(CONTACT_PHONE, PHONE)
    account = vault.seal(SETTLEMENT_ACCOUNT_NUMBER, "6222021234567890123")
    merchant = Merchant(
        id="mch_1", agent_id=None, legal_name="潍坊面馆",
        unified_social_credit_code="91110000600037341L", legal_person_name="张三",
        legal_person_id_number_masked=id_number.masked, contact_phone_masked=phone.masked,
        mcc="5812",
        settlement_account=SettlementAccount("潍坊银行", "潍坊面馆", account.masked, False),
        acquiring_mode=AcquiringMode.DIRECT, channel_sub_merchant_ids={},
        status=S.DRAFT, status_reason=None, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    text = json.dumps(merchant_view(merchant), ensure_ascii=False)
    for plain in (ID_NUMBER, PHONE, "6222021234567890123"):
        assert plain not in text
    view = merchant_view(merchant)
    assert view["legal_person_id_number"] == "110***********002X"
    assert view["contact_phone"] == "138****8000"
    assert view["settlement_account"]["account_number"] == "622202*********0123"
    assert view["warnings"] == ["settlement_account_number_checksum_failed"]
