"""Query parameters of the dashboard's lists, read the same way by pages and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from devserver.clock import parse_duration_ms

STATUSES = ("Queued", "Running", "Completed", "Failed", "Cancelled", "Skipped")
# The choices the run filter offers; the API takes any duration.
WITHIN_CHOICES = (
    ("", "any time"),
    ("15m", "last 15 minutes"),
    ("1h", "last hour"),
    ("24h", "last day"),
    ("7d", "last week"),
)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Far beyond any name or phrase someone searches for, and far below the
# 50,000-byte pattern SQLite's LIKE refuses.
MAX_TEXT = 1000


class ParamError(ValueError):
    """A query parameter the dashboard cannot use; the text says which and why."""


@dataclass(frozen=True)
class RunFilter:
    function: str
    status: str
    within: str
    within_ms: int | None
    limit: int


@dataclass(frozen=True)
class EventFilter:
    name: str
    text: str
    limit: int


def _single(params: QueryParams, name: str) -> str:
    """The one value of ``name`` ("" if absent); refused if given more than once.

    The filters take one value each (the page's controls offer one), so a
    repeated parameter is refused rather than silently read as its last.
    """
    values = params.getlist(name)
    if len(values) > 1:
        raise ParamError(
            given_twice(name, values, "as the list filters by one value at a time")
        )
    return values[0] if values else ""


def given_twice(name: str, values: Sequence[object], why: str) -> str:
    """The refusal of a field or parameter given more than once: how often,
    the first few values (a file shown as such), and why once is enough."""
    shown = ", ".join(
        repr(value[:40]) if isinstance(value, str) else "a file" for value in values[:5]
    )
    return f"{name} is given {len(values)} times ({shown}); give it once, {why}"


def _limit(params: QueryParams) -> int:
    raw = _single(params, "limit") or str(DEFAULT_LIMIT)
    try:
        limit = int(raw)
    except ValueError:
        raise ParamError(f"limit must be a whole number, not {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ParamError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _text(params: QueryParams, name: str) -> str:
    """A text parameter, refused if it holds NUL or is over MAX_TEXT long.

    SQLite's LIKE stops reading a pattern at NUL, so ``%00`` would match
    every row instead of the rows containing it.
    """
    value = _single(params, name).strip()
    if "\x00" in value:
        raise ParamError(f"{name} must not contain NUL characters")
    if len(value) > MAX_TEXT:
        raise ParamError(
            f"{name} is {len(value)} characters long; search with at most {MAX_TEXT}"
        )
    return value


def run_filter(params: QueryParams) -> RunFilter:
    status = _single(params, "status")
    if status and status not in STATUSES:
        raise ParamError(f"status must be one of {', '.join(STATUSES)}")
    within = _single(params, "within").strip()
    within_ms = None
    if within:
        try:
            within_ms = parse_duration_ms(within)
        except ValueError:
            raise ParamError(
                f"within must be a duration such as 15m, 1h or 7d, not {within!r}"
            ) from None
    return RunFilter(
        function=_text(params, "function"),
        status=status,
        within=within,
        within_ms=within_ms,
        limit=_limit(params),
    )


def event_filter(params: QueryParams) -> EventFilter:
    return EventFilter(
        name=_text(params, "name"),
        text=_text(params, "q"),
        limit=_limit(params),
    )
