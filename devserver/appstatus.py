"""What the executor knows about each synced app beyond its functions.

The SDK and framework it reported at its last sync, and whether its URL
answered the last call: an app that refuses connections or answers 404 (a
tunnel gone) is shown as unreachable, and its runs stay queued until it
answers again instead of failing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from devserver.clock import iso_ms, now_ms
from devserver.store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS app_health (
    app_id TEXT PRIMARY KEY,
    sdk TEXT NOT NULL,
    framework TEXT NOT NULL,
    reachable INTEGER NOT NULL,
    problem TEXT,
    changed_at INTEGER NOT NULL
);
"""


def record_sync(store: Store, app_id: str, payload: dict[str, Any]) -> None:
    """An app registered: note its SDK, and that it is reachable.

    Needs the table an ``AppHealth`` created at start-up; safe inside a
    transaction (creating the table is not).
    """
    store.db.execute(
        "INSERT OR REPLACE INTO app_health VALUES (?, ?, ?, 1, NULL, ?)",
        (
            app_id,
            str(payload.get("sdk") or ""),
            str(payload.get("framework") or ""),
            now_ms(),
        ),
    )


class AppHealth:
    def __init__(self, store: Store) -> None:
        self._db: sqlite3.Connection = store.db
        self._db.executescript(_SCHEMA)

    def record_call(self, fn_id: str, problem: str | None) -> None:
        """The outcome of a call to one of the app's functions.

        ``problem`` is None when an SDK answered (whatever it said). Writes
        only when the state changes, so calls cost one read.
        """
        reachable = int(problem is None)
        self._db.execute(
            "UPDATE app_health SET reachable = ?, problem = ?, changed_at = ? "
            "WHERE app_id = (SELECT app_id FROM functions WHERE fn_id = ?) "
            "AND (reachable != ? OR problem IS NOT ?)",
            (reachable, problem, now_ms(), fn_id, reachable, problem),
        )

    def list_apps(self) -> list[dict[str, Any]]:
        """Synced apps as ``GET /v1/apps`` shows them, by app id."""
        # apps.py records syncs through this module: import it late.
        from devserver.apps import stable_uuid

        rows = self._db.execute(
            "SELECT a.app_id, a.url, a.synced_at, h.sdk, h.framework, "
            "h.reachable, h.problem FROM apps a "
            "LEFT JOIN app_health h ON h.app_id = a.app_id ORDER BY a.app_id"
        ).fetchall()
        out = []
        for row in rows:
            functions = [
                json.loads(f["config"])
                for f in self._db.execute(
                    "SELECT config FROM functions WHERE app_id = ? AND archived = 0 "
                    "ORDER BY fn_id",
                    (row["app_id"],),
                )
            ]
            sdk = row["sdk"] or ""
            language, _, version = sdk.partition(":")
            out.append(
                {
                    "id": stable_uuid(f"app:{row['app_id']}"),
                    "name": row["app_id"],
                    "url": row["url"],
                    "sdk": sdk,
                    "sdk_language": language,
                    "sdk_version": version.removeprefix("v"),
                    "framework": row["framework"] or "",
                    "last_synced_at": iso_ms(row["synced_at"]),
                    "reachable": row["reachable"] != 0,
                    "error": row["problem"],
                    "functions": [_function_json(f) for f in functions],
                }
            )
        return out


def _function_json(config: dict[str, Any]) -> dict[str, Any]:
    from devserver.apps import stable_uuid

    return {
        "id": stable_uuid(f"function:{config['id']}"),
        "slug": config["id"],
        "name": config.get("name", config["id"]),
        "triggers": config.get("triggers", []),
        "url": config["steps"]["step"]["runtime"]["url"],
        # Everything the SDK registered (cancel, timeouts, flow control...).
        "config": config,
    }
