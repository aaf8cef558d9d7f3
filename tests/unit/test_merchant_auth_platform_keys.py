"""Platform signing keys: dev generation, rotation order, and refusal outside dev."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cloudpay.config import InsecureConfiguration, Settings
from cloudpay.kernel.crypto import generate_rsa_key_pair
from cloudpay.sdk.protocol import verify_platform_signature
from cloudpay.web.platform_keys import (
    PlatformKeyError,
    ensure_dev_key,
    load_platform_keyring,
    sign_webhook,
)

PRODUCTION = {
    "env": "production",
    "operator_token": "a-real-operator-token",
    "field_key_hex": "22" * 32,
    "blind_index_key_hex": "33" * 32,
}


def _key_file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(generate_rsa_key_pair().private_key_pem.reveal())
    return path


def test_dev_key_is_generated_once_with_owner_only_permissions(tmp_path: Path) -> None:
    """In dev the key is made on first use as a 0600 file, then reused."""
    path = ensure_dev_key(tmp_path / "keys")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    assert ensure_dev_key(tmp_path / "keys") == path
    assert path.read_text() == content
    assert list((tmp_path / "keys").iterdir()) == [path]


def test_test_environment_without_a_key_uses_the_generated_one(tmp_path: Path) -> None:
    """`test` settings with no key path load the generated key as the only, active key."""
    settings = Settings(env="test", platform_keys_dir=tmp_path)
    keyring = load_platform_keyring(settings)
    assert [key.status for key in keyring.keys] == ["active"]
    assert (tmp_path / "platform_private_key.pem").exists()


def test_configured_keys_sign_with_the_first_and_publish_all(tmp_path: Path) -> None:
    """With two key files the first signs; the second is published as standby."""
    first, second = _key_file(tmp_path, "a.pem"), _key_file(tmp_path, "b.pem")
    settings = Settings(**PRODUCTION, platform_private_key_path=f"{first}, {second}")  # type: ignore[arg-type]
    settings.check_safe_for_environment()
    keyring = load_platform_keyring(settings)
    assert [key.status for key in keyring.keys] == ["active", "standby"]
    headers = sign_webhook(b'{"id":"evt_1"}', keyring=keyring)
    assert headers["Cloudpay-Serial"] == keyring.keys[0].serial_no
    verify_platform_signature(headers, b'{"id":"evt_1"}', keyring.public_keys())


def test_production_refuses_to_start_without_a_platform_key() -> None:
    """Outside dev/test a missing `CLOUDPAY_PLATFORM_PRIVATE_KEY_PATH` is refused."""
    settings = Settings(**PRODUCTION)  # type: ignore[arg-type]
    with pytest.raises(InsecureConfiguration, match="PLATFORM_PRIVATE_KEY_PATH"):
        settings.check_safe_for_environment()
    with pytest.raises(InsecureConfiguration):
        load_platform_keyring(settings)


@pytest.mark.parametrize("content", ["", "not a key", None])
def test_unreadable_or_wrong_key_files_are_named(tmp_path: Path, content: str | None) -> None:
    """A missing, empty or non-RSA key file fails start-up with its path in the message."""
    path = tmp_path / "platform.pem"
    if content is not None:
        path.write_text(content)
    settings = Settings(**PRODUCTION, platform_private_key_path=str(path))  # type: ignore[arg-type]
    with pytest.raises(PlatformKeyError, match=r"platform\.pem"):
        load_platform_keyring(settings)
