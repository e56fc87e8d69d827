"""SQLite persistence of events, apps, runs, steps and the queue.

One connection, used from the event loop thread only. Writes are short and
commit at once (WAL, synchronous=NORMAL), so a SIGKILL loses at most the
call in flight, never a memoised step: the executor writes a step's memo and
the queue item that follows it in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devserver import jsonio

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    internal_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, internal_id);
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    checksum TEXT NOT NULL,
    sync_id TEXT NOT NULL,
    synced_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS functions (
    fn_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    config TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS run_keys (
    fn_id TEXT NOT NULL,
    key TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (fn_id, key)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    fn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    events TEXT NOT NULL,
    memo TEXT NOT NULL,
    stack TEXT NOT NULL,
    pending TEXT NOT NULL,
    disable_immediate INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_event ON runs (event_id);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    op TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    output TEXT,
    error TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE TABLE IF NOT EXISTS queue (
    item_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    not_before INTEGER NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_due ON queue (leased, not_before);
CREATE INDEX IF NOT EXISTS queue_by_run ON queue (run_id, step_id);
"""


def _dump(value: Any) -> str:
    # Strict: NaN or a lone surrogate stored would break every later read
    # that shows it (SQLite's JSON functions, responses, pages).
    return jsonio.dumps(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass
class Run:
    """A function run and everything needed to make its next call."""

    run_id: str
    fn_id: str
    event_id: str
    event: dict[str, Any]
    events: list[dict[str, Any]]
    max_attempts: int
    created_at: int
    memo: dict[str, Any] = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    # step id -> {"group": answer id, "race": bool} for planned or sleeping
    # steps that have not settled yet.
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    disable_immediate: bool = False
    status: str = "Queued"
    output: Any = None
    last_error: dict[str, Any] | None = None
    started_at: int | None = None
    ended_at: int | None = None

    @property
    def ended(self) -> bool:
        # Skipped runs (dropped by a limit) are born ended: nothing may
        # call, resume or cancel them.
        return self.status in ("Completed", "Failed", "Cancelled", "Skipped")


@dataclass
class StepRecord:
    run_id: str
    step_id: str
    name: str
    op: str
    status: str
    seq: int = 0
    attempts: int = 0
    started_at: int | None = None
    ended_at: int | None = None
    output: Any = None
    error: Any = None


@dataclass(frozen=True)
class QueueItem:
    item_id: int
    run_id: str
    step_id: str
    kind: str  # "call" or "sleep"
    attempt: int
    not_before: int


@dataclass(frozen=True)
class StoredEvent:
    internal_id: str
    event: dict[str, Any]
    received_at: int


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for stores of other modules that add their own tables.

        They must write inside ``transaction()`` like everything here.
        """
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes atomically; nested uses join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    # events

    def add_event(self, internal_id: str, event: dict[str, Any], at: int) -> bool:
        """Store an event; False if this internal id is already known."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?)",
            (internal_id, event["name"], _dump(event), at),
        )
        return cur.rowcount == 1

    def get_event(self, internal_id: str) -> StoredEvent | None:
        row = self._db.execute(
            "SELECT * FROM events WHERE internal_id = ?", (internal_id,)
        ).fetchone()
        return None if row is None else self._event(row)

    def list_events(
        self, limit: int, cursor: str | None, name: str | None
    ) -> list[StoredEvent]:
        """Newest first; ``cursor`` is the last internal id of the prior page."""
        sql = "SELECT * FROM events WHERE 1=1"
        args: list[Any] = []
        if cursor:
            sql += " AND internal_id < ?"
            args.append(cursor)
        if name:
            sql += " AND name = ?"
            args.append(name)
        sql += " ORDER BY internal_id DESC LIMIT ?"
        args.append(limit)
        return [self._event(r) for r in self._db.execute(sql, args)]

    @staticmethod
    def _event(row: sqlite3.Row) -> StoredEvent:
        return StoredEvent(row["internal_id"], _load(row["body"]), row["received_at"])

    # apps and functions

    def app_checksum(self, app_id: str) -> str | None:
        row = self._db.execute(
            "SELECT checksum FROM apps WHERE app_id = ?", (app_id,)
        ).fetchone()
        return None if row is None else str(row["checksum"])

    def app_url(self, app_id: str) -> str | None:
        row = self._db.execute(
            "SELECT url FROM apps WHERE app_id = ?", (app_id,)
        ).fetchone()
        return None if row is None else str(row["url"])

    def save_app(
        self,
        app_id: str,
        url: str,
        checksum: str,
        sync_id: str,
        at: int,
        functions: list[dict[str, Any]],
    ) -> None:
        """Replace an app's function list; functions no longer listed archive."""
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO apps VALUES (?, ?, ?, ?, ?)",
                (app_id, url, checksum, sync_id, at),
            )
            self._db.execute(
                "UPDATE functions SET archived = 1 WHERE app_id = ?", (app_id,)
            )
            for fn in functions:
                self._db.execute(
                    "INSERT OR REPLACE INTO functions VALUES (?, ?, ?, 0)",
                    (fn["id"], app_id, _dump(fn)),
                )

    def active_functions(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT config FROM functions WHERE archived = 0")
        return [_load(r["config"]) for r in rows]

    def get_function(self, fn_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT config FROM functions WHERE fn_id = ?", (fn_id,)
        ).fetchone()
        return None if row is None else dict(_load(row["config"]))

    def claim_run_key(
        self, fn_id: str, key: str, run_id: str, at: int, window_ms: int
    ) -> bool:
        """Reserve (function, key) for a run; False if taken within the window."""
        row = self._db.execute(
            "SELECT created_at FROM run_keys WHERE fn_id = ? AND key = ?",
            (fn_id, key),
        ).fetchone()
        if row is not None and at - row["created_at"] < window_ms:
            return False
        self._db.execute(
            "INSERT OR REPLACE INTO run_keys VALUES (?, ?, ?, ?)",
            (fn_id, key, run_id, at),
        )
        return True

    # runs

    def save_run(self, run: Run) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO runs VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.run_id,
                run.fn_id,
                run.event_id,
                _dump(run.event),
                _dump(run.events),
                _dump(run.memo),
                _dump(run.stack),
                _dump(run.pending),
                int(run.disable_immediate),
                run.max_attempts,
                run.status,
                _dump(run.output),
                None if run.last_error is None else _dump(run.last_error),
                run.created_at,
                run.started_at,
                run.ended_at,
            ),
        )

    def get_run(self, run_id: str) -> Run | None:
        row = self._db.execute(
            "SELECT * FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else self._run(row)

    def runs_for_event(self, event_id: str) -> list[Run]:
        rows = self._db.execute(
            "SELECT * FROM runs WHERE event_id = ? ORDER BY run_id", (event_id,)
        )
        return [self._run(r) for r in rows]

    @staticmethod
    def _run(row: sqlite3.Row) -> Run:
        return Run(
            run_id=row["run_id"],
            fn_id=row["fn_id"],
            event_id=row["event_id"],
            event=_load(row["event"]),
            events=_load(row["events"]),
            max_attempts=row["max_attempts"],
            created_at=row["created_at"],
            memo=_load(row["memo"]),
            stack=_load(row["stack"]),
            pending=_load(row["pending"]),
            disable_immediate=bool(row["disable_immediate"]),
            status=row["status"],
            output=_load(row["output"]),
            last_error=_load(row["last_error"]),
            started_at=row["started_at"],
            ended_at=row["ended_at"],
        )

    # steps

    def get_step(self, run_id: str, step_id: str) -> StepRecord | None:
        row = self._db.execute(
            "SELECT * FROM steps WHERE run_id = ? AND step_id = ?", (run_id, step_id)
        ).fetchone()
        return None if row is None else self._step(row)

    def save_step(self, step: StepRecord) -> None:
        if not step.seq:
            row = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM steps WHERE run_id = ?",
                (step.run_id,),
            ).fetchone()
            step.seq = int(row["next"])
        self._db.execute(
            "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                step.run_id,
                step.step_id,
                step.seq,
                step.name,
                step.op,
                step.status,
                step.attempts,
                step.started_at,
                step.ended_at,
                _dump(step.output),
                None if step.error is None else _dump(step.error),
            ),
        )

    def list_steps(self, run_id: str) -> list[StepRecord]:
        rows = self._db.execute(
            "SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (run_id,)
        )
        return [self._step(r) for r in rows]

    @staticmethod
    def _step(row: sqlite3.Row) -> StepRecord:
        return StepRecord(
            run_id=row["run_id"],
            step_id=row["step_id"],
            seq=row["seq"],
            name=row["name"],
            op=row["op"],
            status=row["status"],
            attempts=row["attempts"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            output=_load(row["output"]),
            error=_load(row["error"]),
        )

    # queue

    def enqueue(
        self, run_id: str, step_id: str, kind: str, attempt: int, not_before: int
    ) -> None:
        self._db.execute(
            "INSERT INTO queue (run_id, step_id, kind, attempt, not_before) "
            "VALUES (?, ?, ?, ?, ?)",
            (run_id, step_id, kind, attempt, not_before),
        )

    def has_waiting_item(self, run_id: str, step_id: str) -> bool:
        """True if an unleased item for this run and step is queued."""
        row = self._db.execute(
            "SELECT 1 FROM queue WHERE run_id = ? AND step_id = ? AND leased = 0",
            (run_id, step_id),
        ).fetchone()
        return row is not None

    def lease_due(self, now: int, limit: int, skip_runs: set[str]) -> list[QueueItem]:
        """Mark up to ``limit`` due items as leased and return them."""
        rows = self._db.execute(
            "SELECT * FROM queue WHERE leased = 0 AND not_before <= ? "
            "ORDER BY not_before, item_id LIMIT ?",
            (now, limit + len(skip_runs)),
        ).fetchall()
        items = []
        for row in rows:
            item = QueueItem(
                row["item_id"],
                row["run_id"],
                row["step_id"],
                row["kind"],
                row["attempt"],
                row["not_before"],
            )
            if item.step_id == "step" and item.run_id in skip_runs:
                continue
            items.append(item)
            if len(items) == limit:
                break
        if items:
            marks = ",".join("?" * len(items))
            self._db.execute(
                f"UPDATE queue SET leased = 1 WHERE item_id IN ({marks})",
                [i.item_id for i in items],
            )
        return items

    def next_due(self) -> int | None:
        row = self._db.execute(
            "SELECT MIN(not_before) AS due FROM queue WHERE leased = 0"
        ).fetchone()
        return None if row["due"] is None else int(row["due"])

    def retry_item(self, item_id: int, attempt: int, not_before: int) -> None:
        self._db.execute(
            "UPDATE queue SET attempt = ?, not_before = ?, leased = 0 "
            "WHERE item_id = ?",
            (attempt, not_before, item_id),
        )

    def release(self, item_id: int) -> None:
        self._db.execute("UPDATE queue SET leased = 0 WHERE item_id = ?", (item_id,))

    def delete_item(self, item_id: int) -> None:
        self._db.execute("DELETE FROM queue WHERE item_id = ?", (item_id,))

    def delete_run_items(self, run_id: str) -> None:
        self._db.execute("DELETE FROM queue WHERE run_id = ?", (run_id,))

    def release_all(self) -> int:
        """At start-up, items leased by a previous process are due again."""
        return self._db.execute("UPDATE queue SET leased = 0 WHERE leased = 1").rowcount
