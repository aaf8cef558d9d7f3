"""Cryptography every context uses: request signatures, field encryption, blind indexes.

- RSA-SHA256 (PKCS#1 v1.5) and SM2-with-SM3 signatures, base64 text as in WeChat Pay v3.
- `FieldCipher`: AES-256-GCM or SM4-GCM tokens that name their key, so keys can rotate.
- `BlindIndex`: keyed HMAC of a normalised value, to look encrypted columns up by equality.

Failures here are programmer or operations errors (a bad key, a tampered row), so they are
`CryptoError`s, not `CloudPayError`s. Why these libraries: docs/adr/0003-crypto-libraries.md.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import gmssl_pyx  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloudpay.kernel.masking import Secret


class CryptoError(Exception):
    """A cryptographic operation could not be done; never caused by an API caller alone."""


class InvalidKey(CryptoError, ValueError):
    """A key is malformed, of the wrong type or too weak."""


class DecryptionFailed(CryptoError):
    """A token is malformed, was altered, or belongs to another field."""


class UnknownKeyId(DecryptionFailed):
    """A token names a key this keyring does not hold (retired too early?)."""


def _reveal(value: str | Secret[str]) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def _b64decode_strict(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# ---------------------------------------------------------------- RSA-SHA256 (PKCS#1 v1.5)

MIN_RSA_KEY_BITS = 2048
SERIAL_NO_CHARS = 40


@dataclass(frozen=True)
class RsaKeyPair:
    private_key_pem: Secret[str] = field(repr=False)
    public_key_pem: str


def generate_rsa_key_pair(*, key_size_bits: int = MIN_RSA_KEY_BITS) -> RsaKeyPair:
    """A new RSA key pair: PKCS#8 PEM private key, SubjectPublicKeyInfo PEM public key."""
    if key_size_bits < MIN_RSA_KEY_BITS:
        raise InvalidKey(f"RSA keys must have at least {MIN_RSA_KEY_BITS} bits")
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size_bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return RsaKeyPair(Secret(private_pem), _public_pem(key.public_key()))


def _public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


# Parsing a private key checks it (milliseconds); a signer uses the same few keys all day.
@functools.lru_cache(maxsize=256)
def _load_rsa_private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as error:
        raise InvalidKey("not a PEM private key") from error
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_KEY_BITS:
        raise InvalidKey(f"not an RSA private key of at least {MIN_RSA_KEY_BITS} bits")
    return key


@functools.lru_cache(maxsize=1024)
def _load_rsa_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as error:
        raise InvalidKey("not a PEM public key") from error
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_KEY_BITS:
        raise InvalidKey(f"not an RSA public key of at least {MIN_RSA_KEY_BITS} bits")
    return key


def rsa_sign(private_key_pem: str | Secret[str], message: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5) signature of `message`, base64."""
    key = _load_rsa_private_key(_reveal(private_key_pem))
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa_verify(public_key_pem: str, message: bytes, signature_b64: str) -> bool:
    """True only if `signature_b64` is a valid SHA256withRSA signature of `message`."""
    key = _load_rsa_public_key(public_key_pem)
    signature = _b64decode_strict(signature_b64)
    if signature is None:
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def rsa_public_key_serial_no(public_key_pem: str) -> str:
    """Stable id of a public key: SHA-256 of its DER form, upper-case hex, first 40 chars."""
    der = _load_rsa_public_key(public_key_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest().upper()[:SERIAL_NO_CHARS]


# ---------------------------------------------------------------- SM2 with SM3 (GB/T 32918)

# The default user ID of GM/T 0009-2012; peers that set none (Java BouncyCastle, GmSSL) use it.
SM2_DEFAULT_USER_ID = b"1234567812345678"
SM2_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_SM2_PUBLIC_KEY_HEX = re.compile(r"04[0-9a-fA-F]{128}")
_SM2_PRIVATE_KEY_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Sm2KeyPair:
    private_key_hex: Secret[str] = field(repr=False)
    public_key_hex: str  # uncompressed point: "04" + X + Y, 130 hex characters


def generate_sm2_key_pair() -> Sm2KeyPair:
    """A new SM2 key pair: 64-hex private scalar, 130-hex uncompressed public point."""
    public_raw, private_raw = gmssl_pyx.sm2_key_generate()
    return Sm2KeyPair(Secret(bytes(private_raw).hex()), "04" + bytes(public_raw).hex())


def _sm2_public_key(public_key_hex: str) -> bytes:
    if not _SM2_PUBLIC_KEY_HEX.fullmatch(public_key_hex):
        raise InvalidKey("an SM2 public key is 130 hex characters starting with 04")
    try:
        return bytes(gmssl_pyx.normalize_sm2_public_key(bytes.fromhex(public_key_hex)))
    except gmssl_pyx.InvalidValueError as error:
        raise InvalidKey("SM2 public key is not a point on the curve") from error


def sm2_sign(
    private_key_hex: str | Secret[str],
    public_key_hex: str,
    message: bytes,
    *,
    user_id: bytes = SM2_DEFAULT_USER_ID,
) -> str:
    """SM2-with-SM3 signature of `message`: base64 of DER `SEQUENCE {r, s}`.

    The public key is needed because the signed digest binds it (Z_A of GB/T 32918.2).
    """
    private_hex = _reveal(private_key_hex)
    if not _SM2_PRIVATE_KEY_HEX.fullmatch(private_hex):
        raise InvalidKey("an SM2 private key is 64 hex characters")
    public_raw = _sm2_public_key(public_key_hex)
    try:
        der = gmssl_pyx.sm2_sign(bytes.fromhex(private_hex), public_raw, message, user_id)
    except gmssl_pyx.InvalidValueError as error:
        raise InvalidKey("SM2 private key is out of range") from error
    return base64.b64encode(bytes(der)).decode("ascii")


def sm2_verify(
    public_key_hex: str,
    message: bytes,
    signature_b64: str,
    *,
    user_id: bytes = SM2_DEFAULT_USER_ID,
) -> bool:
    """True only if `signature_b64` (base64 DER) is a valid SM2 signature of `message`."""
    public_raw = _sm2_public_key(public_key_hex)
    der = _b64decode_strict(signature_b64)
    if der is None or not _is_canonical_sm2_der(der):
        return False
    try:
        return bool(gmssl_pyx.sm2_verify(public_raw, message, der, user_id))
    except gmssl_pyx.GmsslInnerError:
        return False


def _is_canonical_sm2_der(der: bytes) -> bool:
    # One signature, one encoding: a re-encoded variant must not pass as a new signature.
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        return False
    return 0 < r < SM2_ORDER and 0 < s < SM2_ORDER and encode_dss_signature(r, s) == der


def sm2_public_key_serial_no(public_key_hex: str) -> str:
    """Stable id of an SM2 public key: SHA-256 of the 65-byte point, upper-case hex, 40 chars."""
    point = b"\x04" + _sm2_public_key(public_key_hex)
    return hashlib.sha256(point).hexdigest().upper()[:SERIAL_NO_CHARS]


# ---------------------------------------------------------------- field encryption

FORMAT_VERSION = "v1"
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_PLAINTEXT_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 100 + (MAX_PLAINTEXT_BYTES + TAG_BYTES) * 4 // 3
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class FieldAlgorithm(StrEnum):
    AES_256_GCM = "a256gcm"
    SM4_GCM = "sm4gcm"


KEY_BYTES = {FieldAlgorithm.AES_256_GCM: 32, FieldAlgorithm.SM4_GCM: 16}


@dataclass(frozen=True)
class FieldKey:
    """One data-encryption key; its id is the key of the mapping given to `FieldCipher`."""

    algorithm: FieldAlgorithm
    key: Secret[bytes] = field(repr=False)


def generate_field_key(algorithm: FieldAlgorithm = FieldAlgorithm.AES_256_GCM) -> FieldKey:
    return FieldKey(algorithm, Secret(secrets.token_bytes(KEY_BYTES[algorithm])))


def _seal(key: FieldKey, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    raw_key = key.key.reveal()
    if key.algorithm is FieldAlgorithm.AES_256_GCM:
        return AESGCM(raw_key).encrypt(nonce, plaintext, aad)
    encryptor = Cipher(algorithms.SM4(raw_key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag


def _open(key: FieldKey, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    raw_key = key.key.reveal()
    if key.algorithm is FieldAlgorithm.AES_256_GCM:
        return AESGCM(raw_key).decrypt(nonce, sealed, aad)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(raw_key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise DecryptionFailed("token part is not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Unused trailing bits must be zero, so each value has exactly one token spelling.
    if _b64url(data) != text:
        raise DecryptionFailed("token part is not canonical base64url")
    return data


@dataclass(frozen=True)
class _Token:
    key_id: str
    algorithm: str
    nonce: bytes
    sealed: bytes

    @property
    def header(self) -> str:
        return f"{FORMAT_VERSION}.{self.key_id}.{self.algorithm}"


def _parse_token(token: str) -> _Token:
    parts = token.split(".") if len(token) <= MAX_TOKEN_CHARS else []
    if len(parts) != 5 or parts[0] != FORMAT_VERSION:
        raise DecryptionFailed(f"not a {FORMAT_VERSION} field token")
    _, key_id, algorithm, nonce_text, sealed_text = parts
    nonce, sealed = _b64url_decode(nonce_text), _b64url_decode(sealed_text)
    if len(nonce) != NONCE_BYTES or len(sealed) < TAG_BYTES:
        raise DecryptionFailed("token nonce or ciphertext has the wrong length")
    return _Token(key_id, algorithm, nonce, sealed)


def _associated_data(header: str, context: bytes) -> bytes:
    # The header is authenticated too, so nobody can relabel a token's key or algorithm;
    # the context (e.g. b"merchants.legal_person_id_number") pins the token to its field.
    return header.encode("ascii") + b"\x00" + context


class FieldCipher:
    """Encrypts column values into `v1.<key_id>.<alg>.<nonce>.<ciphertext+tag>` tokens.

    New tokens use the active key; any key still in the ring decrypts, so rotating is: add
    a key, make it active, re-encrypt rows where `needs_rotation`, then drop the old key.
    Random 96-bit nonces: rotate a key well before 2**32 encryptions (NIST SP 800-38D).
    """

    def __init__(self, keys: Mapping[str, FieldKey], *, active_key_id: str) -> None:
        for key_id, key in keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise InvalidKey(f"key id {key_id!r} must match {_KEY_ID.pattern}")
            if len(key.key.reveal()) != KEY_BYTES[key.algorithm]:
                raise InvalidKey(f"key {key_id!r} must be {KEY_BYTES[key.algorithm]} bytes")
        if active_key_id not in keys:
            raise InvalidKey(f"active key {active_key_id!r} is not in the keyring")
        self._keys = dict(keys)
        self.active_key_id = active_key_id

    def __repr__(self) -> str:
        return f"FieldCipher(key_ids={sorted(self._keys)}, active_key_id={self.active_key_id!r})"

    def encrypt(self, plaintext: str, *, context: bytes) -> str:
        data = plaintext.encode("utf-8")
        if len(data) > MAX_PLAINTEXT_BYTES:
            raise ValueError(f"field values are limited to {MAX_PLAINTEXT_BYTES} bytes")
        key = self._keys[self.active_key_id]
        header = f"{FORMAT_VERSION}.{self.active_key_id}.{key.algorithm.value}"
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = _seal(key, nonce, data, _associated_data(header, context))
        return f"{header}.{_b64url(nonce)}.{_b64url(sealed)}"

    def decrypt(self, token: str, *, context: bytes) -> str:
        parsed = _parse_token(token)
        key = self._keys.get(parsed.key_id)
        if key is None:
            raise UnknownKeyId(f"no key {parsed.key_id!r} in the keyring")
        if parsed.algorithm != key.algorithm.value:
            raise DecryptionFailed(f"key {parsed.key_id!r} is not a {parsed.algorithm} key")
        aad = _associated_data(parsed.header, context)
        try:
            return _open(key, parsed.nonce, parsed.sealed, aad).decode("utf-8")
        except InvalidTag as error:
            raise DecryptionFailed("token was altered or belongs to another field") from error

    def needs_rotation(self, token: str) -> bool:
        """True if `token` was not made with the active key."""
        return _parse_token(token).key_id != self.active_key_id

    def rotate(self, token: str, *, context: bytes) -> str:
        """The same value under the active key (the token itself if already there)."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)


# ---------------------------------------------------------------- blind index

MIN_BLIND_INDEX_KEY_BYTES = 32
DEFAULT_BLIND_INDEX_HEX_CHARS = 32  # 128 bits: no accidental collisions among 10**9 rows


class BlindIndexAlgorithm(StrEnum):
    HMAC_SHA256 = "hmac-sha256"
    HMAC_SM3 = "hmac-sm3"


_BLIND_INDEX_HASHES: dict[BlindIndexAlgorithm, Callable[[], hashes.HashAlgorithm]] = {
    BlindIndexAlgorithm.HMAC_SHA256: hashes.SHA256,
    BlindIndexAlgorithm.HMAC_SM3: hashes.SM3,
}


def normalize_text(value: str) -> str:
    """Unicode NFKC, trimmed, case-folded: for e-mails and free text."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def normalize_id_number(value: str) -> str:
    """Resident ID: no spaces or dashes, upper case (the check character may be `x`)."""
    return re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", value)).upper()


def normalize_phone(value: str) -> str:
    """Digits only; a +86 / 0086 prefix on an 11-digit mobile number is dropped."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", value))
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix) :]
    return digits


def normalize_card_number(value: str) -> str:
    """Digits only."""
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", value))


class BlindIndex:
    """Keyed HMAC of a normalised value, hex, truncated: equality lookup on encrypted columns.

    Its key must not be an encryption key: whoever holds it can test guesses, and ID and
    phone numbers are few enough to enumerate. The context separates columns, so one value
    indexed in two columns gives two unrelated indexes.
    """

    def __init__(
        self,
        key: bytes | Secret[bytes],
        *,
        algorithm: BlindIndexAlgorithm = BlindIndexAlgorithm.HMAC_SHA256,
        length_hex_chars: int = DEFAULT_BLIND_INDEX_HEX_CHARS,
    ) -> None:
        raw_key = key.reveal() if isinstance(key, Secret) else key
        if len(raw_key) < MIN_BLIND_INDEX_KEY_BYTES:
            raise InvalidKey(f"blind index keys need {MIN_BLIND_INDEX_KEY_BYTES}+ bytes")
        if not 16 <= length_hex_chars <= 64:
            raise ValueError("length_hex_chars must be between 16 and 64")
        self._key = Secret(raw_key)
        self.algorithm = algorithm
        self.length_hex_chars = length_hex_chars

    def __repr__(self) -> str:
        return f"BlindIndex(algorithm={self.algorithm.value!r}, length={self.length_hex_chars})"

    def compute(
        self,
        value: str,
        *,
        context: bytes,
        normalize: Callable[[str], str] = normalize_text,
    ) -> str:
        normalized = normalize(value)
        if not normalized:
            raise ValueError("nothing to index: the value is empty once normalised")
        # Length-prefixed so (context, value) pairs cannot run into each other.
        message = len(context).to_bytes(4, "big") + context + normalized.encode("utf-8")
        return self._mac(message).hex()[: self.length_hex_chars]

    def _mac(self, message: bytes) -> bytes:
        mac = crypto_hmac.HMAC(self._key.reveal(), _BLIND_INDEX_HASHES[self.algorithm]())
        mac.update(message)
        return mac.finalize()
