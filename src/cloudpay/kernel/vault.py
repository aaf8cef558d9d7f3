"""The personal-data vault: how a context stores an ID, phone or card number (PIPL).

A context declares each personal column once as a `PersonalField` (its cipher context
`table.column`, how to normalise the value, how to mask it). `PersonalDataVault.seal` turns a
plain value into what is stored — an AES-256-GCM (or SM4-GCM) token, a blind index for equality
lookup, and the masked form every response shows — so reading a row for display never needs
the key. Plain values exist only in the request that brings them and in `open`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cloudpay.kernel.crypto import (
    KEY_BYTES,
    BlindIndex,
    FieldCipher,
    FieldKey,
    InvalidKey,
)
from cloudpay.kernel.masking import Secret

_ALGORITHM_BY_KEY_BYTES = {size: algorithm for algorithm, size in KEY_BYTES.items()}


@dataclass(frozen=True)
class PersonalField:
    """One personal column: `context` is `table.column`, binding its tokens and indexes."""

    context: str
    normalize: Callable[[str], str]
    mask: Callable[[str | None], str]

    @property
    def context_bytes(self) -> bytes:
        return self.context.encode("ascii")


@dataclass(frozen=True)
class SealedValue:
    """What a row keeps of a personal value: never the value itself."""

    token: str = field(repr=False)
    blind_index: str
    masked: str


class PersonalDataVault:
    """Encrypts, indexes and masks personal fields with the platform's field keys."""

    def __init__(self, cipher: FieldCipher, blind_index: BlindIndex) -> None:
        self._cipher = cipher
        self._blind_index = blind_index

    def __repr__(self) -> str:
        return f"PersonalDataVault({self._cipher!r}, {self._blind_index!r})"

    @classmethod
    def from_hex(cls, field_key_hex: str, blind_index_key_hex: str) -> PersonalDataVault:
        """Keys as configured: 64 hex chars → AES-256-GCM, 32 hex chars → SM4-GCM.

        The key id is derived from the key, so tokens of a later key never claim this one's id.
        """
        try:
            field_key, index_key = bytes.fromhex(field_key_hex), bytes.fromhex(blind_index_key_hex)
        except ValueError as error:
            raise InvalidKey("field and blind index keys must be hex") from error
        algorithm = _ALGORITHM_BY_KEY_BYTES.get(len(field_key))
        if algorithm is None:
            raise InvalidKey("a field key is 32 bytes (AES-256-GCM) or 16 bytes (SM4-GCM)")
        key_id = "k" + hashlib.sha256(b"cloudpay field key id\x00" + field_key).hexdigest()[:12]
        cipher = FieldCipher({key_id: FieldKey(algorithm, Secret(field_key))}, active_key_id=key_id)
        return cls(cipher, BlindIndex(index_key))

    def seal(self, personal_field: PersonalField, value: str) -> SealedValue:
        """Token, blind index and mask of the normalised `value`."""
        normalized = personal_field.normalize(value)
        return SealedValue(
            token=self._cipher.encrypt(normalized, context=personal_field.context_bytes),
            blind_index=self.index(personal_field, normalized),
            masked=personal_field.mask(normalized),
        )

    def index(self, personal_field: PersonalField, value: str) -> str:
        """The blind index to look `value` up by (the same normalisation as `seal`)."""
        return self._blind_index.compute(
            value, context=personal_field.context_bytes, normalize=personal_field.normalize
        )

    def open(self, personal_field: PersonalField, token: str) -> Secret[str]:
        """The plain value, wrapped so that printing or logging it shows only a mask."""
        return Secret(self._cipher.decrypt(token, context=personal_field.context_bytes))
