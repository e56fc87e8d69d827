"""Read-only store queries the dashboard needs beyond ``Store``'s own.

Lists read only the light columns of a run (never its memo, which may hold
megabytes) and lean on the ordering of ULIDs: an id that sorts later was
made later, so "since" is a primary-key range and "newest first" needs no
extra index.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ulid import ULID

from devserver.store import Store

INVOKED_EVENT = "inngest/function.invoked"
# The data of an event in a list is cut to this many characters.
_PREVIEW_CHARS = 400


@dataclass(frozen=True)
class RunRow:
    run_id: str
    fn_id: str
    event_id: str
    event_name: str
    status: str
    created_at: int
    started_at: int | None
    ended_at: int | None


@dataclass(frozen=True)
class EventRow:
    internal_id: str
    name: str
    received_at: int
    data_preview: str


@dataclass(frozen=True)
class PendingItem:
    """A queued call or timer of a run: a sleep, a retry or a timeout."""

    step_id: str
    kind: str
    attempt: int
    due_at: int


@dataclass(frozen=True)
class WaitingPause:
    step_id: str
    event: str
    expression: str | None
    expires_at: int


def ulid_floor(ms: int) -> str:
    """The smallest ULID made at ``ms``: every id made then or later sorts after."""
    return str(ULID.from_bytes(max(ms, 0).to_bytes(6, "big") + bytes(10)))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(text: str) -> str:
    """A LIKE pattern (``ESCAPE '\\'``) matching ``text`` anywhere."""
    return f"%{_escape_like(text)}%"


_RUN_COLUMNS = (
    "run_id, fn_id, event_id, status, created_at, started_at, ended_at, "
    "json_extract(event, '$.name') AS event_name"
)


def _run_row(row: sqlite3.Row) -> RunRow:
    return RunRow(
        run_id=row["run_id"],
        fn_id=row["fn_id"],
        event_id=row["event_id"],
        event_name=row["event_name"] or "",
        status=row["status"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
    )


class DashboardQueries:
    def __init__(self, store: Store) -> None:
        self._db = store.db

    def runs(
        self,
        *,
        fn_id: str | None,
        status: str | None,
        since_ms: int | None,
        limit: int,
    ) -> list[RunRow]:
        """Runs newest first, filtered by function, status and start time."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE 1=1"
        args: list[Any] = []
        if since_ms is not None:
            sql += " AND run_id >= ?"
            args.append(ulid_floor(since_ms))
        if fn_id:
            sql += " AND fn_id = ?"
            args.append(fn_id)
        if status:
            sql += " AND status = ?"
            args.append(status)
        sql += " ORDER BY run_id DESC LIMIT ?"
        args.append(limit)
        return [_run_row(r) for r in self._db.execute(sql, args)]

    def runs_of_events(self, event_ids: list[str]) -> dict[str, list[RunRow]]:
        """The runs each event started, oldest first, keyed by event id."""
        found: dict[str, list[RunRow]] = {e: [] for e in event_ids}
        if not event_ids:
            return found
        marks = ",".join("?" * len(event_ids))
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE event_id IN ({marks}) "
            "ORDER BY run_id",
            event_ids,
        )
        for row in rows:
            found[row["event_id"]].append(_run_row(row))
        return found

    def function_ids(self) -> list[str]:
        """Every function that is registered or has runs, for the run filter."""
        rows = self._db.execute(
            "SELECT fn_id FROM functions UNION SELECT DISTINCT fn_id FROM runs "
            "ORDER BY fn_id"
        )
        return [r["fn_id"] for r in rows]

    def events(
        self, *, name: str | None, text: str | None, limit: int
    ) -> list[EventRow]:
        """Events newest first whose name or whole JSON contains the texts.

        Payloads are stored as JSON with non-ASCII characters escaped, so a
        text is looked for both as typed and as JSON would escape it.
        """
        sql = (
            "SELECT internal_id, name, received_at, "
            "substr(json_extract(body, '$.data'), 1, ?) AS preview "
            "FROM events WHERE 1=1"
        )
        args: list[Any] = [_PREVIEW_CHARS + 1]
        if name:
            sql += " AND name LIKE ? ESCAPE '\\'"
            args.append(_like(name))
        if text:
            escaped = json.dumps(text)[1:-1]
            sql += " AND (body LIKE ? ESCAPE '\\' OR body LIKE ? ESCAPE '\\')"
            args += [_like(text), _like(escaped)]
        sql += " ORDER BY internal_id DESC LIMIT ?"
        args.append(limit)
        out = []
        for row in self._db.execute(sql, args):
            preview = row["preview"] or "{}"
            if len(preview) > _PREVIEW_CHARS:
                preview = preview[:_PREVIEW_CHARS] + "…"
            out.append(
                EventRow(row["internal_id"], row["name"], row["received_at"], preview)
            )
        return out

    def pending_items(self, run_id: str) -> dict[str, PendingItem]:
        """Queued calls and timers of a run, by step id (the latest per step)."""
        rows = self._db.execute(
            "SELECT step_id, kind, attempt, not_before FROM queue "
            "WHERE run_id = ? ORDER BY item_id",
            (run_id,),
        )
        return {
            r["step_id"]: PendingItem(
                r["step_id"], r["kind"], r["attempt"], r["not_before"]
            )
            for r in rows
        }

    def pauses(self, run_id: str) -> dict[str, WaitingPause]:
        """The run's open waits for events, by step id."""
        rows = self._db.execute(
            "SELECT step_id, event, expression, expires_at FROM pauses "
            "WHERE run_id = ?",
            (run_id,),
        )
        return {
            r["step_id"]: WaitingPause(
                r["step_id"], r["event"], r["expression"], r["expires_at"]
            )
            for r in rows
        }

    def invoked_runs(self, run_id: str) -> dict[str, RunRow]:
        """Runs this run started with ``step.invoke``, by the invoking step id."""
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS}, "
            "json_extract(event, '$.data._inngest.correlation_id') AS link "
            "FROM runs WHERE event_id IN (SELECT internal_id FROM events "
            "WHERE name = ? AND json_extract(body, "
            "'$.data._inngest.correlation_id') LIKE ? ESCAPE '\\')",
            (INVOKED_EVENT, _escape_like(run_id + ".") + "%"),
        )
        return {str(r["link"]).split(".", 1)[1]: _run_row(r) for r in rows}
