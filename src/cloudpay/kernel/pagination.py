"""Cursor pagination, Stripe style: newest first, `limit` + `starting_after`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def page_envelope(items: Sequence[dict[str, Any]], *, limit: int, url: str) -> dict[str, Any]:
    """The list envelope; callers fetch `limit + 1` rows so `has_more` is exact."""
    has_more = len(items) > limit
    data = list(items[:limit])
    return {
        "object": "list",
        "url": url,
        "data": data,
        "has_more": has_more,
        "next_cursor": data[-1]["id"] if has_more and data else None,
    }
