"""The partner-bank channel: e-accounts (Class II/III), limits, transfers, statements.

`protocol.py` (the `BankChannel` interface and its types), `client.py` (the HTTP adapter),
`transformers.py` (the bank's JSON dialect), `wire.py` (signatures both ways), `limits.py`
(the PBoC caps as a pure function), `statement.py` (the daily statement file) and a loopback
sandbox (`sandbox/`)."""

from cloudpay.channels.bank.client import PartnerBankClient, PartnerBankConfig
from cloudpay.channels.bank.protocol import BankChannel, BankError, BankErrorKind, BankLimits

__all__ = [
    "BankChannel",
    "BankError",
    "BankErrorKind",
    "BankLimits",
    "PartnerBankClient",
    "PartnerBankConfig",
]
