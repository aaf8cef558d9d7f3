"""docs/errors.md lists exactly the error codes the source raises (it is generated)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "error_catalogue.py"


def test_the_error_catalogue_in_the_docs_is_current() -> None:
    """Regenerating the catalogue changes nothing; if this fails, run the script and commit."""
    spec = importlib.util.spec_from_file_location("error_catalogue", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    assert module.DOC.read_text(encoding="utf-8") == module.catalogue(), (
        "docs/errors.md is out of date: run `uv run python scripts/error_catalogue.py`"
    )
