"""Architecture rules that import-linter cannot express, checked on the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src" / "cloudpay"
CONTEXTS = (
    "ledger", "merchants", "payments", "channels", "routing", "settlement", "console",
    "citizen", "marketing", "reconciliation",
)  # fmt: skip
# A channel's public face is the protocol every adapter implements, and the registry.
PUBLIC_SUBMODULES = {
    "cloudpay.channels.protocol",
    "cloudpay.channels.registry",
    "cloudpay.channels.bank",
    "cloudpay.channels.alipay",  # its package: the adapter and the trade bill's format facts
    "cloudpay.channels.unionpay",  # its package: the adapter and the ZM file's format facts
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def _is_module(context: str, name: str) -> bool:
    return (SOURCE / context / f"{name}.py").exists() or (SOURCE / context / name).is_dir()


def _reaches_into(module: str, own_context: str) -> bool:
    """`cloudpay.<other context>.<submodule>` that is not a public submodule."""
    parts = module.split(".")
    if len(parts) < 3 or parts[0] != "cloudpay" or parts[1] not in CONTEXTS:
        return False
    if parts[1] == own_context or ".".join(parts[:3]) in PUBLIC_SUBMODULES:
        return False
    return _is_module(parts[1], parts[2])


def test_the_rule_sees_a_reach_into_internals() -> None:
    """The checker itself: internals are caught, the package and names from it are not."""
    assert _reaches_into("cloudpay.ledger.repository", "payments")
    assert not _reaches_into("cloudpay.ledger.Transfer", "payments")
    assert not _reaches_into("cloudpay.channels.protocol", "payments")
    assert not _reaches_into("cloudpay.ledger.repository", "ledger")


def test_contexts_call_each_other_only_through_their_package() -> None:
    """A context never imports another context's internals, only its `__init__`."""
    offenders = []
    for context in CONTEXTS:
        for path in (SOURCE / context).rglob("*.py"):
            for module in _imports(path):
                if _reaches_into(module, context):
                    offenders.append(f"{path.relative_to(SOURCE)} imports {module}")
    assert offenders == []


def test_every_context_keeps_the_standard_file_names() -> None:
    """Only the agreed file names (plus named extras) sit at the top of a context."""
    for context in ("ledger", "merchants", "payments", "console"):
        names = {p.stem for p in (SOURCE / context).glob("*.py")}
        assert {"__init__", "service"} <= names, context
        assert "model" in names or "tables" in names, context


def test_every_source_module_is_short() -> None:
    """Modules stay under ~600 lines so a newcomer can read one in a sitting."""
    long_modules = [
        f"{path.relative_to(SOURCE)}: {n}"
        for path in SOURCE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 650
    ]
    assert long_modules == []
