"""The platform's signing keys: they sign merchant API responses and webhooks.

Configured by `CLOUDPAY_PLATFORM_PRIVATE_KEY_PATH`, a comma-separated list of PEM files
(RSA ≥ 2048). The first signs; the others are published as `standby` so merchants can verify
with them too. Rotation: add the new key second and wait until merchants have refreshed
their keys (`GET /v1/platform/keys`); move it first; drop the old key after the webhook retry
schedule (≈ 30 h) has passed. In `dev`/`test` with nothing configured, a key is generated
once into `CLOUDPAY_PLATFORM_KEYS_DIR` (`./var/platform_keys/`, mode 0600); any other
environment refuses to start without one (`Settings.check_safe_for_environment`).
"""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Request

from cloudpay.config import InsecureConfiguration, Settings, get_settings
from cloudpay.kernel.clock import Clock, SystemClock
from cloudpay.kernel.crypto import (
    MIN_RSA_KEY_BITS,
    generate_rsa_key_pair,
    rsa_public_key_serial_no,
    rsa_sign,
)
from cloudpay.kernel.masking import Secret
from cloudpay.sdk.protocol import (
    HEADER_NONCE,
    HEADER_SERIAL,
    HEADER_SIGNATURE,
    HEADER_SIGNATURE_TYPE,
    HEADER_TIMESTAMP,
    RSA_SCHEME,
    response_signing_message,
)
from cloudpay.web.response_signing import SignedResponse

DEV_KEY_FILE_NAME = "platform_private_key.pem"

KeyStatus = Literal["active", "standby"]


class PlatformKeyError(RuntimeError):
    """A configured platform key file is missing or is not an RSA private key."""


@dataclass(frozen=True)
class PlatformKey:
    serial_no: str
    public_key_pem: str
    private_key_pem: Secret[str] = field(repr=False)
    status: KeyStatus


@dataclass(frozen=True)
class PlatformKeyring:
    """The platform keys in order: `keys[0]` is the one that signs."""

    keys: tuple[PlatformKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise PlatformKeyError("a platform keyring needs at least one key")

    @property
    def active(self) -> PlatformKey:
        return self.keys[0]

    def public_keys(self) -> dict[str, str]:
        """Serial → PEM public key: what a merchant passes to the SDK."""
        return {key.serial_no: key.public_key_pem for key in self.keys}

    def sign(self, body: bytes, *, timestamp: int, nonce: str | None = None) -> dict[str, str]:
        """The `Cloudpay-*` headers that sign `body` at `timestamp` (Unix seconds)."""
        the_nonce = nonce or secrets.token_hex(16)
        message = response_signing_message(timestamp, the_nonce, body)
        return {
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_NONCE: the_nonce,
            HEADER_SIGNATURE: rsa_sign(self.active.private_key_pem, message),
            HEADER_SERIAL: self.active.serial_no,
            HEADER_SIGNATURE_TYPE: RSA_SCHEME,
        }

    def sign_now(self, body: bytes, clock: Clock) -> dict[str, str]:
        return self.sign(body, timestamp=clock.now_ns() // 1_000_000_000)


def load_platform_keyring(settings: Settings) -> PlatformKeyring:
    """The configured keys; in dev/test with none configured, the generated dev key."""
    return _load(tuple(settings.platform_private_key_paths), settings.platform_keys_dir,
                 settings.env)  # fmt: skip


@functools.lru_cache(maxsize=8)
def _load(paths: tuple[Path, ...], keys_dir: Path, env: str) -> PlatformKeyring:
    if not paths:
        if env not in ("dev", "test"):
            raise InsecureConfiguration(f"{env} requires CLOUDPAY_PLATFORM_PRIVATE_KEY_PATH")
        paths = (ensure_dev_key(keys_dir),)
    keys = [_read_key(path) for path in paths]
    return PlatformKeyring(
        tuple(
            PlatformKey(k.serial_no, k.public_key_pem, k.private_key_pem,
                        "active" if i == 0 else "standby")
            for i, k in enumerate(keys)
        )
    )  # fmt: skip


def _read_key(path: Path) -> PlatformKey:
    try:
        pem = path.read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise PlatformKeyError(f"platform key {path}: {error}") from error
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_KEY_BITS:
        raise PlatformKeyError(f"platform key {path}: not RSA ≥ {MIN_RSA_KEY_BITS} bits")
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return PlatformKey(
        rsa_public_key_serial_no(public_pem), public_pem, Secret(pem.decode("ascii")), "active"
    )


def ensure_dev_key(keys_dir: Path) -> Path:
    """The dev key file, generated (0600) if absent; safe when several processes race."""
    path = keys_dir / DEV_KEY_FILE_NAME
    if path.exists():
        return path
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = keys_dir / f".{DEV_KEY_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(generate_rsa_key_pair().private_key_pem.reveal())
    try:
        os.link(temporary, path)  # fails if another process got there first: keep theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path


def sign_webhook(
    body: bytes, *, keyring: PlatformKeyring | None = None, clock: Clock | None = None
) -> dict[str, str]:
    """Headers for a webhook POST of `body`: the same scheme as signed API responses."""
    the_keyring = keyring or load_platform_keyring(get_settings())
    return the_keyring.sign_now(body, clock or SystemClock())


# ---------------------------------------------------------------- GET /v1/platform/keys

router = APIRouter(prefix="/v1/platform", tags=["platform"])


@router.get("/keys", dependencies=[SignedResponse])
def list_platform_keys(request: Request) -> dict[str, Any]:
    """The platform public keys that sign responses and webhooks (public, no auth).

    `active` signs now; `standby` keys verify too (the next key before a rotation, the
    previous one after it). Merchants pin these; the serial in `Cloudpay-Serial` picks one.
    """
    keyring: PlatformKeyring = request.app.state.platform_keyring
    data = [
        {
            "object": "platform_key",
            "serial_no": key.serial_no,
            "algorithm": "RSA",
            "public_key": key.public_key_pem,
            "status": key.status,
        }
        for key in keyring.keys
    ]
    return {"object": "list", "url": request.url.path, "data": data, "has_more": False,
            "next_cursor": None}  # fmt: skip
