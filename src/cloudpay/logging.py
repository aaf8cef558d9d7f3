"""Structured JSON logs (structlog), with secrets kept out by a redacting processor."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

_SENSITIVE_KEY = re.compile(
    r"(secret|password|token|private|authorization|signature|key_hex|id_number|phone|card)",
    re.IGNORECASE,
)
REDACTED = "**redacted**"


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Last line of defence: a value logged under a sensitive name never reaches the sink."""
    for key in list(event):
        if key != "event" and _SENSITIVE_KEY.search(key):
            event[key] = REDACTED
    return event


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    logging.basicConfig(format="%(message)s", level=level.upper())
    for noisy in ("alembic", "httpx", "httpcore"):  # their INFO lines are noise to users
        logging.getLogger(noisy).setLevel(logging.WARNING)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
