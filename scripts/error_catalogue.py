"""Write docs/errors.md: every error code the API and console can answer, from the source.

Reads each `CloudPayError` subclass (its HTTP status and default code) and every call that
raises one with a literal `code="…"`, noting where and with what message. The test
`tests/unit/test_error_catalogue.py` fails when the document is out of date, so the list in
the docs is always the list in the code. Run: `uv run python scripts/error_catalogue.py`.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cloudpay
from cloudpay.kernel.errors import CloudPayError

SOURCE = Path(cloudpay.__file__).parent
DOC = SOURCE.parents[1] / "docs" / "errors.md"
SKIPPED = ("channels",)  # channel codes (ORDERPAID, ACQ.…) are the providers', not ours


@dataclass(frozen=True)
class Entry:
    code: str
    status: int
    context: str
    message: str


def _error_classes() -> dict[str, type[CloudPayError]]:
    for module in pkgutil.walk_packages([str(SOURCE)], prefix="cloudpay."):
        skipped = ("cloudpay.demo", "cloudpay.bench", "cloudpay.cli", "cloudpay.migrations")
        if not module.name.startswith(skipped) and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: dict[str, type[CloudPayError]] = {}
    pending: list[type[CloudPayError]] = [CloudPayError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _status(cls: type[CloudPayError]) -> int:
    return cls("probe").http_status


def _message(call: ast.Call) -> str:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    if call.args and isinstance(call.args[0], ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "…" for part in call.args[0].values
        )
    return ""


def _entries(classes: dict[str, type[CloudPayError]]) -> Iterator[Entry]:
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if relative.parts[0] in SKIPPED:
            continue
        context = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name in classes:
                cls = classes[node.name]
                yield Entry(
                    cls.default_code, _status(cls), context, (ast.get_docstring(node) or "")
                )
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            code = next((k.value for k in node.keywords if k.arg == "code"), None)
            if name in classes and isinstance(code, ast.Constant) and isinstance(code.value, str):
                yield Entry(code.value, _status(classes[name]), context, _message(node))


def catalogue() -> str:
    best: dict[str, Entry] = {}
    contexts: dict[str, set[str]] = {}
    for entry in _entries(_error_classes()):
        contexts.setdefault(entry.code, set()).add(entry.context)
        if entry.code not in best or (entry.message and not best[entry.code].message):
            best[entry.code] = entry
    lines = [
        "# Error codes",
        "",
        'Every error answers `{"error": {"type", "code", "message", "param", "request_id"}}`',
        "with the HTTP status below; `param` names the request field at fault. Generated from the",
        "source by `scripts/error_catalogue.py` (a test keeps it current); the message is one",
        "example of what the API says (… marks a value filled in).",
        "",
        "| code | HTTP | where | example message |",
        "|---|---|---|---|",
    ]
    for code in sorted(best):
        entry = best[code]
        message = " ".join(entry.message.split()).replace("|", "\\|")
        where = ", ".join(sorted(contexts[code]))
        lines.append(f"| `{code}` | {entry.status} | {where} | {message} |")
    return "\n".join([*lines, *_FIXED]) + "\n"


# Codes made outside a `CloudPayError` call: the HTTP layer's and the ledger's result codes.
_FIXED = (
    "",
    "## From the HTTP layer (`web/errors.py`)",
    "",
    "| code | HTTP | meaning |",
    "|---|---|---|",
    "| `parameter_invalid` | 400 | a field has the wrong type, range or shape; `param` names it |",
    "| `parameter_missing` | 400 | a required field is absent |",
    "| `body_not_json`, `body_missing`, `body_invalid` | 400 | the body is not a JSON object |",
    "| `http_error` | 404/405/413 | no such route, method not allowed, body too large |",
    "| `database_busy` | 503 | the database stayed locked through every retry; retry shortly |",
    "| `internal_error` | 500 | a bug on our side (never bad input); the request id finds it |",
    "",
    "## Ledger result codes",
    "",
    "Transfers and accounts refused by the ledger answer with TigerBeetle's result codes "
    "(`exceeds_credits`, `exists_with_different_amount`, `pending_transfer_expired`, …), listed "
    "in order of precedence in `src/cloudpay/ledger/model.py` (`TRANSFER_RESULT_CODES`, "
    "`ACCOUNT_RESULT_CODES`).",
)


if __name__ == "__main__":
    DOC.write_text(catalogue(), encoding="utf-8")
    print(f"wrote {DOC}")
