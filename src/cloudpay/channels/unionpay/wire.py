"""UnionPay full-channel (全渠道) 5.1.0 wire rules: form encoding, RSA signatures, certificates.

Signature, signMethod 01 (https://open.unionpay.com/tjweb/acproduct/APIList, "签名机制"; the
acp_sdk `AcpService.sign`/`validate` do the same):
1. every field except `signature`, sorted by name, joined as `name=value&name=value…`
   (empty values included: the gateway signs what it sends);
2. SHA-256 of that UTF-8 string, as lower-case hex text;
3. SHA256withRSA (PKCS#1 v1.5) over the hex text, base64 → `signature`.
`certId` is the decimal serial number of the signing certificate.

5.1.0 answers and notifications carry the signer's certificate (`signPubKeyCert`, PEM). A
receiver trusts it only if it chains to UnionPay's root through the middle certificate, is
within its validity period and names UnionPay (中国银联股份有限公司) in the third `@`-separated
part of its CN, as acp_sdk's `CertUtil.verifyAndGetVerifyPubKey` checks
(https://github.com/Javen205/IJPay, src/main/java/com/jpay/unionpay/CertUtil.java).

Requests and notifications are `application/x-www-form-urlencoded`, UTF-8. Synchronous
answers are not percent-encoded: `name=value&…` as is, split at the first `=`, a value in
`{…}` may hold `&` — what acp_sdk's `SDKUtil.convertResultStringToMap` parses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from cloudpay.kernel.crypto import rsa_sign, rsa_verify
from cloudpay.kernel.masking import Secret

VERSION = "5.1.0"
ENCODING = "UTF-8"
SIGN_METHOD_RSA = "01"
SIGNATURE_FIELD = "signature"
SIGNER_CERT_FIELD = "signPubKeyCert"
UNIONPAY_NAME = "中国银联股份有限公司"
MAX_FORM_BYTES = 4 * 1024 * 1024  # a bill answer (base64 of a zip) is the largest we accept
MAX_FIELDS = 200


class WireFormatError(ValueError):
    """A body is not a well-formed UnionPay form."""


class CertificateRejected(ValueError):
    """A `signPubKeyCert` does not chain to the configured root or does not name UnionPay."""


def signing_string(fields: Mapping[str, str]) -> str:
    return "&".join(f"{name}={fields[name]}" for name in sorted(fields) if name != SIGNATURE_FIELD)


def _digest_hex(fields: Mapping[str, str]) -> bytes:
    return hashlib.sha256(signing_string(fields).encode("utf-8")).hexdigest().encode("ascii")


def sign_fields(fields: Mapping[str, str], private_key_pem: str | Secret[str]) -> dict[str, str]:
    """`fields` plus their `signature` (signMethod 01). `certId` must already be among them."""
    unsigned = {name: value for name, value in fields.items() if name != SIGNATURE_FIELD}
    return {**unsigned, SIGNATURE_FIELD: rsa_sign(private_key_pem, _digest_hex(unsigned))}


def signature_valid(fields: Mapping[str, str], public_key_pem: str) -> bool:
    signature = fields.get(SIGNATURE_FIELD)
    if not signature:
        return False
    return rsa_verify(public_key_pem, _digest_hex(fields), signature)


def encode_form(fields: Mapping[str, str]) -> bytes:
    return urlencode(list(fields.items())).encode("ascii")


def decode_form(body: bytes) -> dict[str, str]:
    """Parse a form body strictly: UTF-8, every pair `name=value`, no name twice."""
    if len(body) > MAX_FORM_BYTES:
        raise WireFormatError("form body too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise WireFormatError(f"not a UTF-8 form body: {error}") from error
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise WireFormatError(f"field {name!r} appears twice")
        fields[name] = value
    return fields


def encode_answer(fields: Mapping[str, str]) -> bytes:
    """A synchronous answer as the gateway writes it: raw `name=value&…`."""
    for name, value in fields.items():
        if "&" in value and not (value.startswith("{") and value.endswith("}")):
            raise ValueError(f"{name} holds '&' outside braces")
    return "&".join(f"{name}={value}" for name, value in fields.items()).encode("utf-8")


def _answer_pairs(text: str) -> list[str]:
    pairs, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise WireFormatError("unbalanced '}' in answer")
        elif char == "&" and depth == 0:
            pairs.append(text[start:index])
            start = index + 1
    if depth:
        raise WireFormatError("unbalanced '{' in answer")
    return [*pairs, text[start:]]


def decode_answer(body: bytes) -> dict[str, str]:
    """Parse a synchronous answer strictly: UTF-8, every pair `name=value`, no name twice."""
    if not body or len(body) > MAX_FORM_BYTES:
        raise WireFormatError("answer is empty or too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise WireFormatError("answer is not UTF-8") from error
    fields: dict[str, str] = {}
    for pair in _answer_pairs(text):
        name, equals, value = pair.partition("=")
        if not name or not equals or name in fields or len(fields) >= MAX_FIELDS:
            raise WireFormatError(f"bad answer pair {pair[:40]!r}")
        fields[name] = value
    return fields


# ---------------------------------------------------------------- certificates


def load_certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as error:
        raise CertificateRejected("not a PEM certificate") from error


def cert_id(certificate_pem: str) -> str:
    """The `certId` of a certificate: its serial number in decimal."""
    return str(load_certificate(certificate_pem).serial_number)


def public_key_pem(certificate: x509.Certificate) -> str:
    return (
        certificate.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _check_issued(child: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise CertificateRejected(f"{what} is not issued by its CA: {error}") from error


def _check_valid_at(certificate: x509.Certificate, now: datetime, what: str) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise CertificateRejected(f"{what} is outside its validity period")


def verified_signer_key(signer_pem: str, *, middle_pem: str, root_pem: str, now: datetime) -> str:
    """The public key of a `signPubKeyCert` that chains root → middle → signer at `now`."""
    signer, middle = load_certificate(signer_pem), load_certificate(middle_pem)
    root = load_certificate(root_pem)
    _check_issued(middle, root, "the middle certificate")
    _check_issued(signer, middle, "the signing certificate")
    for certificate, what in ((root, "root"), (middle, "middle"), (signer, "signer")):
        _check_valid_at(certificate, now, f"the {what} certificate")
    parts = _common_name(signer).split("@")
    if len(parts) < 3 or parts[2] != UNIONPAY_NAME:
        raise CertificateRejected("the signing certificate does not name UnionPay")
    return public_key_pem(signer)
