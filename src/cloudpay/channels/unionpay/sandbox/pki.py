"""The sandbox's own certificate hierarchy, shaped like UnionPay's.

UnionPay (CFCA-operated) issues a root certificate, a middle (intermediate) certificate, its
own signing certificate — CN `041@<id>@中国银联股份有限公司@<n>` — and one signing
certificate per merchant, whose decimal serial is the merchant's `certId`. The sandbox makes
all of them with `cryptography`, so the adapter's chain checks run against real X.509.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cloudpay.channels.unionpay.wire import UNIONPAY_NAME
from cloudpay.kernel.masking import Secret

CERT_LIFETIME = timedelta(days=3 * 365)
KEY_BITS = 2048


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key; `cert_id` is the serial in decimal."""

    private_key_pem: Secret[str] = field(repr=False)
    cert_pem: str = field(repr=False)
    cert_id: str


@dataclass(frozen=True)
class Hierarchy:
    root: Issued
    middle: Issued
    unionpay_signer: Issued


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China Financial CA (sandbox)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(key: rsa.RSAPrivateKey) -> Secret[str]:
    return Secret(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
    )


def issue(
    common_name: str, *, now: datetime, issuer: Issued | None = None, ca: bool = False
) -> Issued:
    """A certificate for `common_name`, signed by `issuer` (self-signed when None)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    serial = 10**10 + secrets.randbelow(9 * 10**10)  # 11 digits, like UnionPay's certIds
    if issuer is None:
        issuer_name, signing_key = _name(common_name), key
    else:
        issuer_cert = x509.load_pem_x509_certificate(issuer.cert_pem.encode("ascii"))
        loaded = serialization.load_pem_private_key(
            issuer.private_key_pem.reveal().encode("ascii"), password=None
        )
        assert isinstance(loaded, rsa.RSAPrivateKey)
        issuer_name, signing_key = issuer_cert.subject, loaded
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return Issued(_pem(key), cert_pem, str(serial))


def new_hierarchy(now: datetime) -> Hierarchy:
    root = issue("CFCA ACS TEST OCA31 sandbox root", now=now, ca=True)
    middle = issue("CFCA ACS TEST OCA33 sandbox middle", now=now, issuer=root, ca=True)
    signer = issue(f"041@Z11111111111111@{UNIONPAY_NAME}@00000001", now=now, issuer=middle)
    return Hierarchy(root, middle, signer)


def issue_merchant_cert(hierarchy: Hierarchy, mer_id: str, now: datetime) -> Issued:
    return issue(f"041@Z{mer_id}@{mer_id}@00000001", now=now, issuer=hierarchy.middle)
