from __future__ import annotations

import base64
import dataclasses

import gmssl_pyx  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudpay.kernel.crypto import (
    SM2_DEFAULT_USER_ID,
    BlindIndex,
    BlindIndexAlgorithm,
    DecryptionFailed,
    FieldAlgorithm,
    FieldCipher,
    FieldKey,
    InvalidKey,
    RsaKeyPair,
    Sm2KeyPair,
    UnknownKeyId,
    generate_field_key,
    generate_rsa_key_pair,
    generate_sm2_key_pair,
    normalize_card_number,
    normalize_id_number,
    normalize_phone,
    rsa_public_key_serial_no,
    rsa_sign,
    rsa_verify,
    sm2_public_key_serial_no,
    sm2_sign,
    sm2_verify,
)
from cloudpay.kernel.masking import Secret

REQUEST = b"POST\n/v1/payments\n1700000000\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n"
CONTEXT = b"citizens.id_number"

# GM/T 0003.5-2012 Annex A / GB/T 32918.5-2017 signature example (recommended curve),
# as reproduced in OpenSSL's test/sm2_internal_test.c.
GBT_PRIVATE_KEY = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
GBT_PUBLIC_KEY = (
    "04"
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
GBT_MESSAGE = b"message digest"
GBT_Z = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
GBT_E = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
GBT_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
GBT_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA
SM2_CURVE_A_B_G = (
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0"
)
# Signatures of CROSS_MESSAGE with the GB/T key, made by other SM2 implementations
# (tongsuopy 1.0.1 = Tongsuo 8.3.2, snowland-smx 1.1.0) when we chose the library.
CROSS_MESSAGE = b"GET\n/v1/payments/ord_01\n1700000000\nNONCE123\n\n"
CROSS_SIGNATURES = {
    "tongsuopy": (
        "MEYCIQDlDqluD4BbZPTKuBm/yV5tt6HpvpWQA24IatuY2Ehi5wIhAPTuXG9c"
        "SJsdlf4RLJPqMVbJ86ZM07/1VHLFTe3UmJlp"
    ),
    "snowland-smx": (
        "MEUCIQD9ZEJdSEzrqcKtqH9R4rCKnhR9zgI2Xw/Bsh3ZS/sKJQIgToQiOnEd"
        "qz5Xa3wCTMxIzlSvpQmx0EA8eOb6bEAEf3s="
    ),
}


@pytest.fixture(scope="module")
def rsa_pair() -> RsaKeyPair:
    return generate_rsa_key_pair()


@pytest.fixture(scope="module")
def sm2_pair() -> Sm2KeyPair:
    return generate_sm2_key_pair()


def flip_char(text: str, index: int) -> str:
    """The same text with one base64/base64url character replaced by another."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


# --- RSA --------------------------------------------------------------------------------


def test_rsa_signature_round_trips_and_binds_message_and_key(rsa_pair: RsaKeyPair) -> None:
    """An RSA signature verifies for its message and key, and for nothing else."""
    signature = rsa_sign(rsa_pair.private_key_pem, REQUEST)
    assert len(base64.b64decode(signature)) == 256  # RSA-2048
    assert rsa_verify(rsa_pair.public_key_pem, REQUEST, signature)
    assert not rsa_verify(rsa_pair.public_key_pem, REQUEST + b" ", signature)
    other = generate_rsa_key_pair()
    assert not rsa_verify(other.public_key_pem, REQUEST, signature)


def test_rsa_verify_rejects_tampered_or_garbled_signatures(rsa_pair: RsaKeyPair) -> None:
    """A changed byte, bad base64 or an empty signature is a failed check, not a crash."""
    signature = rsa_sign(rsa_pair.private_key_pem, REQUEST)
    raw = bytearray(base64.b64decode(signature))
    raw[10] ^= 0x01
    tampered = base64.b64encode(bytes(raw)).decode()
    for bad in (tampered, "not base64!", "", signature[:-4]):
        assert not rsa_verify(rsa_pair.public_key_pem, REQUEST, bad)


def test_rsa_signature_is_pkcs1v15_sha256_so_peers_can_check_it(rsa_pair: RsaKeyPair) -> None:
    """The signature is deterministic PKCS#1 v1.5 over SHA-256, what WeChat Pay v3 uses."""
    assert rsa_sign(rsa_pair.private_key_pem, REQUEST) == rsa_sign(
        rsa_pair.private_key_pem.reveal(), REQUEST
    )


def test_rsa_keys_that_are_not_pem_or_too_weak_are_refused(rsa_pair: RsaKeyPair) -> None:
    """Garbage, a public key where a private one belongs, or a 1024-bit key raise InvalidKey."""
    with pytest.raises(InvalidKey):
        rsa_sign("-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n", REQUEST)
    with pytest.raises(InvalidKey):
        rsa_sign(rsa_pair.public_key_pem, REQUEST)
    with pytest.raises(InvalidKey):
        rsa_verify("hello", REQUEST, "c2ln")
    with pytest.raises(InvalidKey):
        generate_rsa_key_pair(key_size_bits=1024)


def test_rsa_key_pair_never_shows_its_private_key(rsa_pair: RsaKeyPair) -> None:
    """The repr of a key pair, as a log line would print it, has no private key material."""
    text = repr(rsa_pair) + str(dataclasses.asdict(rsa_pair)["private_key_pem"])
    assert "PRIVATE" not in text
    assert "BEGIN PUBLIC KEY" in rsa_pair.public_key_pem


def test_rsa_serial_no_is_stable_upper_hex_and_distinct(rsa_pair: RsaKeyPair) -> None:
    """A serial number is 40 upper-case hex chars, the same each time, different per key."""
    serial_no = rsa_public_key_serial_no(rsa_pair.public_key_pem)
    assert serial_no == rsa_public_key_serial_no(rsa_pair.public_key_pem)
    assert len(serial_no) == 40
    assert serial_no == serial_no.upper()
    int(serial_no, 16)
    assert serial_no != rsa_public_key_serial_no(generate_rsa_key_pair().public_key_pem)


# --- SM2 --------------------------------------------------------------------------------


def test_sm2_key_pair_has_documented_hex_shapes(sm2_pair: Sm2KeyPair) -> None:
    """Private keys are 64 hex chars; public keys are uncompressed points, 04 + 128 hex."""
    assert len(sm2_pair.private_key_hex.reveal()) == 64
    assert len(sm2_pair.public_key_hex) == 130
    assert sm2_pair.public_key_hex.startswith("04")
    assert sm2_pair.private_key_hex.reveal() not in repr(sm2_pair)


def test_sm2_signature_round_trips_and_binds_message_key_and_user_id(
    sm2_pair: Sm2KeyPair,
) -> None:
    """An SM2 signature verifies only for its message, public key and user ID."""
    signature = sm2_sign(sm2_pair.private_key_hex, sm2_pair.public_key_hex, REQUEST)
    assert base64.b64decode(signature)[0] == 0x30  # DER SEQUENCE
    assert sm2_verify(sm2_pair.public_key_hex, REQUEST, signature)
    assert not sm2_verify(sm2_pair.public_key_hex, REQUEST + b" ", signature)
    assert not sm2_verify(generate_sm2_key_pair().public_key_hex, REQUEST, signature)
    assert not sm2_verify(sm2_pair.public_key_hex, REQUEST, signature, user_id=b"ALICE")
    signed_as_alice = sm2_sign(
        sm2_pair.private_key_hex, sm2_pair.public_key_hex, REQUEST, user_id=b"ALICE"
    )
    assert sm2_verify(sm2_pair.public_key_hex, REQUEST, signed_as_alice, user_id=b"ALICE")


def test_sm2_verify_rejects_tampered_garbled_and_non_canonical_signatures(
    sm2_pair: Sm2KeyPair,
) -> None:
    """Any altered byte, bad base64, or a second encoding of a valid signature fails."""
    signature = sm2_sign(sm2_pair.private_key_hex, sm2_pair.public_key_hex, REQUEST)
    der = base64.b64decode(signature)
    for index in range(len(der)):
        changed = bytearray(der)
        changed[index] ^= 0x01
        tampered = base64.b64encode(bytes(changed)).decode()
        assert not sm2_verify(sm2_pair.public_key_hex, REQUEST, tampered)
    # BER long-form length: the same (r, s), a different byte string.
    long_form = b"\x30\x81" + der[1:]
    zeros = base64.b64encode(b"\0" * 64).decode()
    for bad in ("", "%%%", base64.b64encode(long_form).decode(), zeros):
        assert not sm2_verify(sm2_pair.public_key_hex, REQUEST, bad)


def test_sm2_verifies_the_published_gbt_32918_example() -> None:
    """The GB/T 32918.5 Annex A signature of "message digest" verifies with our code."""
    signature = base64.b64encode(encode_dss_signature(GBT_R, GBT_S)).decode()
    assert sm2_verify(GBT_PUBLIC_KEY, GBT_MESSAGE, signature)
    assert not sm2_verify(GBT_PUBLIC_KEY, b"message digesT", signature)


def test_sm2_digest_matches_an_independent_z_a_computation() -> None:
    """Z_A and e computed here with cryptography's SM3 equal the published ones and verify."""
    user_id = SM2_DEFAULT_USER_ID
    z_input = (
        (len(user_id) * 8).to_bytes(2, "big")
        + user_id
        + bytes.fromhex(SM2_CURVE_A_B_G)
        + bytes.fromhex(GBT_PUBLIC_KEY[2:])
    )
    z_a = sm3(z_input)
    e = sm3(z_a + GBT_MESSAGE)
    assert z_a.hex().upper() == GBT_Z
    assert e.hex().upper() == GBT_E
    der = encode_dss_signature(GBT_R, GBT_S)
    assert gmssl_pyx.sm2_verify_sm3_digest(bytes.fromhex(GBT_PUBLIC_KEY[2:]), e, der)


@pytest.mark.parametrize("library", sorted(CROSS_SIGNATURES))
def test_sm2_verifies_signatures_made_by_other_implementations(library: str) -> None:
    """Signatures frozen from Tongsuo and snowland-smx verify: the wire format interoperates."""
    assert sm2_verify(GBT_PUBLIC_KEY, CROSS_MESSAGE, CROSS_SIGNATURES[library])


def test_sm2_signs_with_the_published_key_so_others_can_verify() -> None:
    """Our signature under the GB/T key also passes a digest-level check with its e."""
    signature = sm2_sign(GBT_PRIVATE_KEY, GBT_PUBLIC_KEY, GBT_MESSAGE)
    der = base64.b64decode(signature)
    assert gmssl_pyx.sm2_verify_sm3_digest(
        bytes.fromhex(GBT_PUBLIC_KEY[2:]), bytes.fromhex(GBT_E), der
    )


def test_sm2_malformed_keys_raise_invalid_key(sm2_pair: Sm2KeyPair) -> None:
    """Wrong lengths, a missing 04 prefix, an off-curve point or a zero scalar raise."""
    off_curve = "04" + "11" * 64
    for public_key in ("", sm2_pair.public_key_hex[2:], "05" + "00" * 64, off_curve):
        with pytest.raises(InvalidKey):
            sm2_verify(public_key, REQUEST, "MEUCIQ==")
    with pytest.raises(InvalidKey):
        sm2_sign("00" * 32, sm2_pair.public_key_hex, REQUEST)
    with pytest.raises(InvalidKey):
        sm2_sign("xyz", sm2_pair.public_key_hex, REQUEST)


def test_sm2_serial_no_is_stable_and_distinct(sm2_pair: Sm2KeyPair) -> None:
    """An SM2 serial number is 40 upper-case hex chars, stable, different per key."""
    serial_no = sm2_public_key_serial_no(sm2_pair.public_key_hex)
    assert serial_no == sm2_public_key_serial_no(sm2_pair.public_key_hex.upper())
    assert len(serial_no) == 40
    assert serial_no == serial_no.upper()
    assert serial_no != sm2_public_key_serial_no(GBT_PUBLIC_KEY)


# --- field encryption -------------------------------------------------------------------

aes_key = generate_field_key(FieldAlgorithm.AES_256_GCM)
sm4_key = generate_field_key(FieldAlgorithm.SM4_GCM)
algorithms = st.sampled_from([("aes", aes_key), ("sm4", sm4_key)])


@settings(max_examples=60)
@given(plaintext=st.text(max_size=200), context=st.binary(max_size=40), chosen=algorithms)
def test_field_tokens_round_trip(
    plaintext: str, context: bytes, chosen: tuple[str, FieldKey]
) -> None:
    """Any text encrypts to a token that decrypts back to it, with either algorithm."""
    key_id, key = chosen
    cipher = FieldCipher({key_id: key}, active_key_id=key_id)
    token = cipher.encrypt(plaintext, context=context)
    assert cipher.decrypt(token, context=context) == plaintext


def test_field_token_is_self_describing_and_fresh_each_time() -> None:
    """Tokens name version, key and algorithm; equal inputs give unequal tokens (random nonce)."""
    cipher = FieldCipher({"k2026": sm4_key}, active_key_id="k2026")
    first = cipher.encrypt("13812345678", context=CONTEXT)
    second = cipher.encrypt("13812345678", context=CONTEXT)
    assert first.startswith("v1.k2026.sm4gcm.")
    assert first != second
    assert "13812345678" not in first


@pytest.mark.parametrize("key", [aes_key, sm4_key], ids=["aes", "sm4"])
def test_every_changed_character_of_a_token_is_detected(key: FieldKey) -> None:
    """Replacing any character of the nonce or ciphertext makes decryption fail."""
    cipher = FieldCipher({"k1": key}, active_key_id="k1")
    token = cipher.encrypt("110101199003071234", context=CONTEXT)
    body_start = token.index(".", len("v1.k1.")) + 1
    for index in range(body_start, len(token)):
        if token[index] == ".":
            continue
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(flip_char(token, index), context=CONTEXT)


def test_a_token_cannot_move_to_another_field() -> None:
    """A token decrypted under another context (table.column) fails."""
    cipher = FieldCipher({"k1": aes_key}, active_key_id="k1")
    token = cipher.encrypt("110101199003071234", context=b"citizens.id_number")
    with pytest.raises(DecryptionFailed, match="another field"):
        cipher.decrypt(token, context=b"merchants.legal_person_id_number")


def test_a_token_cannot_be_relabelled_to_another_key_or_algorithm() -> None:
    """Editing the key id or algorithm in the header is detected, not misread."""
    same_bytes = FieldKey(FieldAlgorithm.AES_256_GCM, aes_key.key)
    cipher = FieldCipher({"k1": aes_key, "k2": same_bytes}, active_key_id="k1")
    token = cipher.encrypt("secret", context=CONTEXT)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(token.replace("v1.k1.", "v1.k2.", 1), context=CONTEXT)
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(token.replace(".a256gcm.", ".sm4gcm.", 1), context=CONTEXT)


def test_malformed_tokens_raise_decryption_failed() -> None:
    """Junk, truncated tokens and other versions raise DecryptionFailed, nothing else."""
    cipher = FieldCipher({"k1": aes_key}, active_key_id="k1")
    token = cipher.encrypt("x", context=CONTEXT)
    junk = ["", "v1", token + ".x", "v2" + token[2:], token[: token.rindex(".") + 3]]
    junk += [token.replace(".", "..", 1), token[:-1] + "!", "v1.k1.a256gcm.AAAA.AAAA"]
    junk += ["v1.k1.a256gcm." + "A" * 100_000 + ".AA"]
    for bad in junk:
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(bad, context=CONTEXT)


def test_key_rotation_keeps_old_tokens_readable() -> None:
    """After rotating k1 → k2, k1 tokens still decrypt, new ones use k2, rotate re-keys."""
    before = FieldCipher({"k1": aes_key}, active_key_id="k1")
    old_token = before.encrypt("6222021234567890123", context=CONTEXT)

    after = FieldCipher({"k1": aes_key, "k2": sm4_key}, active_key_id="k2")
    assert after.decrypt(old_token, context=CONTEXT) == "6222021234567890123"
    assert after.needs_rotation(old_token)
    new_token = after.encrypt("6222021234567890123", context=CONTEXT)
    assert new_token.startswith("v1.k2.sm4gcm.")
    assert not after.needs_rotation(new_token)

    rotated = after.rotate(old_token, context=CONTEXT)
    assert rotated.startswith("v1.k2.")
    assert after.rotate(rotated, context=CONTEXT) == rotated

    retired = FieldCipher({"k2": sm4_key}, active_key_id="k2")
    assert retired.decrypt(rotated, context=CONTEXT) == "6222021234567890123"
    with pytest.raises(UnknownKeyId):
        retired.decrypt(old_token, context=CONTEXT)


def test_keyring_refuses_bad_configuration() -> None:
    """Wrong key lengths, ids that break the token format, or a missing active key raise."""
    short = FieldKey(FieldAlgorithm.AES_256_GCM, Secret(b"k" * 16))
    with pytest.raises(InvalidKey):
        FieldCipher({"k1": short}, active_key_id="k1")
    with pytest.raises(InvalidKey):
        FieldCipher({"k.1": aes_key}, active_key_id="k.1")
    with pytest.raises(InvalidKey):
        FieldCipher({"k1": aes_key}, active_key_id="k2")


def test_field_cipher_and_keys_do_not_print_key_bytes() -> None:
    """repr of a keyring or key shows ids and algorithms, never key bytes."""
    cipher = FieldCipher({"k1": aes_key}, active_key_id="k1")
    text = repr(cipher) + repr(aes_key)
    assert aes_key.key.reveal().hex() not in text
    assert repr(aes_key.key.reveal()) not in text
    assert "k1" in repr(cipher)


def test_plaintext_size_is_limited() -> None:
    """Field values above 64 KiB are refused: columns hold small values."""
    cipher = FieldCipher({"k1": aes_key}, active_key_id="k1")
    with pytest.raises(ValueError, match="limited"):
        cipher.encrypt("x" * (64 * 1024 + 1), context=CONTEXT)


# --- blind index ------------------------------------------------------------------------

INDEX_KEY = b"i" * 32


def test_blind_index_is_stable_and_normalises_id_numbers() -> None:
    """Spacing and a lower-case check character do not change an ID number's index."""
    index = BlindIndex(INDEX_KEY)
    expected = index.compute("11010119900307123X", context=CONTEXT, normalize=normalize_id_number)
    for variant in (" 11010119900307123x ", "110101 19900307 123X", "１１０１０１19900307123X"):
        assert index.compute(variant, context=CONTEXT, normalize=normalize_id_number) == expected
    assert len(expected) == 32
    int(expected, 16)


def test_blind_index_normalises_phone_and_card_numbers() -> None:
    """+86, dashes and spaces do not change a phone's index; card spacing is ignored."""
    index = BlindIndex(INDEX_KEY)

    def phone(value: str) -> str:
        return index.compute(value, context=b"phone", normalize=normalize_phone)

    assert phone("138-1234-5678") == phone("+86 138 1234 5678") == phone("008613812345678")
    assert phone("13812345678") != phone("13812345679")
    card = index.compute("6222 0212 3456 7890", context=b"card", normalize=normalize_card_number)
    assert card == index.compute(
        "6222021234567890", context=b"card", normalize=normalize_card_number
    )


def test_blind_index_depends_on_key_context_and_algorithm() -> None:
    """Another key, column or hash gives an unrelated index for the same value."""
    value = "13812345678"
    base = BlindIndex(INDEX_KEY).compute(value, context=b"a")
    assert BlindIndex(b"j" * 32).compute(value, context=b"a") != base
    assert BlindIndex(INDEX_KEY).compute(value, context=b"b") != base
    sm3_index = BlindIndex(INDEX_KEY, algorithm=BlindIndexAlgorithm.HMAC_SM3)
    assert sm3_index.compute(value, context=b"a") != base
    assert len(BlindIndex(INDEX_KEY, length_hex_chars=16).compute(value, context=b"a")) == 16


def test_blind_index_refuses_weak_keys_and_empty_values() -> None:
    """Keys under 32 bytes, odd lengths and values that normalise to nothing raise."""
    with pytest.raises(InvalidKey):
        BlindIndex(b"short")
    with pytest.raises(ValueError, match="between"):
        BlindIndex(INDEX_KEY, length_hex_chars=8)
    with pytest.raises(ValueError, match="empty"):
        BlindIndex(INDEX_KEY).compute(" - ", context=CONTEXT, normalize=normalize_phone)
    assert "iiii" not in repr(BlindIndex(Secret(INDEX_KEY)))
