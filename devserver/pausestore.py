"""Persistence of what runs wait for: event pauses and cancel listeners.

The tables live in the executor's SQLite file beside the core ones and are
written inside the same transactions, so a pause, the step it belongs to and
its timeout timer appear or disappear together, even across a SIGKILL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from devserver.store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pauses (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    event TEXT NOT NULL,
    expression TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
CREATE INDEX IF NOT EXISTS pauses_by_event ON pauses (event);
CREATE TABLE IF NOT EXISTS cancel_listeners (
    run_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event TEXT NOT NULL,
    expression TEXT,
    expires_at INTEGER,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX IF NOT EXISTS cancel_listeners_by_event ON cancel_listeners (event);
"""


@dataclass(frozen=True)
class Pause:
    run_id: str
    step_id: str
    event: str
    expression: str | None
    created_at: int
    expires_at: int


@dataclass(frozen=True)
class CancelListener:
    run_id: str
    position: int
    event: str
    expression: str | None
    expires_at: int | None


class PauseStore:
    def __init__(self, store: Store) -> None:
        self._db: sqlite3.Connection = store.db
        self._db.executescript(_SCHEMA)

    # waitForEvent pauses

    def add_pause(self, pause: Pause) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO pauses VALUES (?, ?, ?, ?, ?, ?)",
            (
                pause.run_id,
                pause.step_id,
                pause.event,
                pause.expression,
                pause.created_at,
                pause.expires_at,
            ),
        )

    def pauses_for(self, event_name: str) -> list[Pause]:
        """Pauses waiting for an event of this name, oldest first.

        Callers match an event when it arrives, against the pauses that
        exist at that moment; nothing replays older events, so a wait never
        sees an event received before it began (as on the official server).
        """
        rows = self._db.execute(
            "SELECT * FROM pauses WHERE event = ? ORDER BY created_at, run_id",
            (event_name,),
        )
        return [Pause(*row) for row in rows]

    def take_pause(self, run_id: str, step_id: str) -> bool:
        """Delete a pause; True for the one caller that actually removed it.

        Whoever gets True (the matching event or the timeout) resumes the
        run; the other does nothing, so a wait resolves exactly once.
        """
        cur = self._db.execute(
            "DELETE FROM pauses WHERE run_id = ? AND step_id = ?", (run_id, step_id)
        )
        return cur.rowcount == 1

    # cancel listeners

    def add_listener(self, listener: CancelListener) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO cancel_listeners VALUES (?, ?, ?, ?, ?)",
            (
                listener.run_id,
                listener.position,
                listener.event,
                listener.expression,
                listener.expires_at,
            ),
        )

    def listeners_for(self, event_name: str, now: int) -> list[CancelListener]:
        rows = self._db.execute(
            "SELECT * FROM cancel_listeners WHERE event = ? "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY run_id, position",
            (event_name, now),
        )
        return [CancelListener(*row) for row in rows]

    # clean-up and timers

    def forget_run(self, run_id: str) -> None:
        """An ended run waits for nothing and listens to nothing."""
        self._db.execute("DELETE FROM pauses WHERE run_id = ?", (run_id,))
        self._db.execute("DELETE FROM cancel_listeners WHERE run_id = ?", (run_id,))

    def delete_timer(self, run_id: str, step_id: str, kind: str) -> None:
        """Drop a queued timer item (a wait's or an invoke's timeout)."""
        self._db.execute(
            "DELETE FROM queue WHERE run_id = ? AND step_id = ? AND kind = ?",
            (run_id, step_id, kind),
        )

    def call_in_flight(self, run_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM queue WHERE run_id = ? AND kind = 'call' AND leased = 1",
            (run_id,),
        ).fetchone()
        return row is not None
