"""Flow-control tables, kept in the executor's SQLite file.

They use the main store's connection, so a flow decision and the run it
creates commit in one transaction (the executor's). Batches and debounces
share one table of pending groups: a batch appends events, a debounce
replaces its single event.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from devserver.store import QueueItem

# Queue rows read per round trip while looking for runnable items.
_PAGE = 128

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_throttle (
    fn_id TEXT NOT NULL,
    key TEXT NOT NULL,
    tat INTEGER NOT NULL,
    PRIMARY KEY (fn_id, key)
);
CREATE TABLE IF NOT EXISTS flow_rate (
    fn_id TEXT NOT NULL,
    key TEXT NOT NULL,
    started_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_rate_by_key ON flow_rate (fn_id, key, started_at);
CREATE TABLE IF NOT EXISTS flow_pending (
    kind TEXT NOT NULL,
    fn_id TEXT NOT NULL,
    key TEXT NOT NULL,
    events TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    fire_at INTEGER NOT NULL,
    PRIMARY KEY (kind, fn_id, key)
);
CREATE INDEX IF NOT EXISTS flow_pending_due ON flow_pending (fire_at);
CREATE TABLE IF NOT EXISTS flow_singleton (
    fn_id TEXT NOT NULL,
    key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (fn_id, key)
);
"""


@dataclass(frozen=True)
class Buffered:
    """One event waiting in a batch or debounce: its internal id and body."""

    internal_id: str
    event: dict[str, Any]


@dataclass(frozen=True)
class Pending:
    """A batch or debounce group that has not started its run yet."""

    kind: str  # "batch" or "debounce"
    fn_id: str
    key: str
    events: list[Buffered]
    first_at: int
    fire_at: int


class FlowState:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._db.executescript(_SCHEMA)

    # throttle

    def throttle_tat(self, fn_id: str, key: str) -> int | None:
        row = self._db.execute(
            "SELECT tat FROM flow_throttle WHERE fn_id = ? AND key = ?", (fn_id, key)
        ).fetchone()
        return None if row is None else int(row[0])

    def set_throttle_tat(self, fn_id: str, key: str, tat: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO flow_throttle VALUES (?, ?, ?)", (fn_id, key, tat)
        )

    # rate limit

    def rate_starts(self, fn_id: str, key: str, since: int) -> list[int]:
        """Recorded starts after ``since``; older ones are forgotten."""
        self._db.execute(
            "DELETE FROM flow_rate WHERE fn_id = ? AND key = ? AND started_at <= ?",
            (fn_id, key, since),
        )
        rows = self._db.execute(
            "SELECT started_at FROM flow_rate WHERE fn_id = ? AND key = ?",
            (fn_id, key),
        )
        return [int(r[0]) for r in rows]

    def record_rate_start(self, fn_id: str, key: str, at: int) -> None:
        self._db.execute("INSERT INTO flow_rate VALUES (?, ?, ?)", (fn_id, key, at))

    # singleton

    def singleton_run(self, fn_id: str, key: str) -> str | None:
        row = self._db.execute(
            "SELECT run_id FROM flow_singleton WHERE fn_id = ? AND key = ?",
            (fn_id, key),
        ).fetchone()
        return None if row is None else str(row[0])

    def set_singleton_run(self, fn_id: str, key: str, run_id: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO flow_singleton VALUES (?, ?, ?)",
            (fn_id, key, run_id),
        )

    # batches and debounces

    def get_pending(self, kind: str, fn_id: str, key: str) -> Pending | None:
        row = self._db.execute(
            "SELECT * FROM flow_pending WHERE kind = ? AND fn_id = ? AND key = ?",
            (kind, fn_id, key),
        ).fetchone()
        return None if row is None else _pending(row)

    def save_pending(self, pending: Pending) -> None:
        events = [[b.internal_id, b.event] for b in pending.events]
        self._db.execute(
            "INSERT OR REPLACE INTO flow_pending VALUES (?, ?, ?, ?, ?, ?)",
            (
                pending.kind,
                pending.fn_id,
                pending.key,
                json.dumps(events, separators=(",", ":")),
                pending.first_at,
                pending.fire_at,
            ),
        )

    def delete_pending(self, pending: Pending) -> None:
        self._db.execute(
            "DELETE FROM flow_pending WHERE kind = ? AND fn_id = ? AND key = ?",
            (pending.kind, pending.fn_id, pending.key),
        )

    def due_pending(self, now: int) -> list[Pending]:
        rows = self._db.execute(
            "SELECT * FROM flow_pending WHERE fire_at <= ? ORDER BY fire_at", (now,)
        )
        return [_pending(r) for r in rows]

    def next_pending_at(self) -> int | None:
        row = self._db.execute("SELECT MIN(fire_at) FROM flow_pending").fetchone()
        return None if row[0] is None else int(row[0])

    # the queue, read in order for the concurrency gate

    def due_items(self, now: int) -> Generator[QueueItem, None, None]:
        """Unleased due queue items, oldest (or most prioritised) first."""
        cursor = self._db.execute(
            "SELECT item_id, run_id, step_id, kind, attempt, not_before FROM queue "
            "WHERE leased = 0 AND not_before <= ? ORDER BY not_before, item_id",
            (now,),
        )
        try:
            while rows := cursor.fetchmany(_PAGE):
                for row in rows:
                    yield QueueItem(*row)
        finally:
            # Close the read before the caller leases what it picked.
            cursor.close()

    def mark_leased(self, item_ids: list[int]) -> None:
        if item_ids:
            marks = ",".join("?" * len(item_ids))
            self._db.execute(
                f"UPDATE queue SET leased = 1 WHERE item_id IN ({marks})", item_ids
            )


def _pending(row: sqlite3.Row) -> Pending:
    return Pending(
        kind=row["kind"],
        fn_id=row["fn_id"],
        key=row["key"],
        events=[Buffered(i, e) for i, e in json.loads(row["events"])],
        first_at=row["first_at"],
        fire_at=row["fire_at"],
    )
