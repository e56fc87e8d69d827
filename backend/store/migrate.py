"""Schema migrations with Alembic, run on a live async connection."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.store.engine import shown_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Any fixed number: the advisory lock that serialises migrations.
MIGRATION_LOCK = 0x64696765

log = logging.getLogger("digest.backend.store")


class MigrationRequired(RuntimeError):
    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"the database is at revision {current or 'none'}, the code needs {head}: "
            "run `digest db upgrade` first"
        )


class DatabaseNewer(MigrationRequired):
    """The database was migrated by newer code: no upgrade can help."""

    def __init__(self, current: str, head: str) -> None:
        RuntimeError.__init__(
            self,
            f"the database is at revision {current}, which this code does not "
            f"know (its newest is {head}): it was migrated by newer code; "
            "deploy the code that has that revision",
        )


@dataclass(frozen=True)
class Migrated:
    """What an upgrade did: the revisions before and after, and those run."""

    database: str  # its URL, password hidden
    before: str | None
    after: str | None
    applied: tuple[str, ...]

    def __str__(self) -> str:
        if not self.applied:
            return (
                f"database {self.database} is already at revision {self.after}; "
                "nothing to apply"
            )
        return (
            f"migrated {self.database} from revision {self.before or 'none'} to "
            f"{self.after} (applied {', '.join(self.applied)})"
        )


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _refuse_unknown(current: str | None) -> None:
    if current is None:
        return
    script = ScriptDirectory.from_config(_config())
    if current not in {found.revision for found in script.walk_revisions()}:
        raise DatabaseNewer(current, head_revision())


async def upgrade(engine: AsyncEngine, revision: str = "head") -> Migrated:
    """Bring the database to `revision`, by default the latest."""

    def run(connection: Connection) -> tuple[str | None, str | None]:
        if connection.dialect.name == "postgresql":
            # Replicas starting together on a fresh database take turns; the
            # later ones then find it migrated. Released at commit.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
        before = _current_revision(connection)
        _refuse_unknown(before)
        command.upgrade(_config(connection), revision)
        return before, _current_revision(connection)

    async with engine.begin() as connection:
        before, after = await connection.run_sync(run)
    return Migrated(
        database=shown_url(engine.url),
        before=before,
        after=after,
        applied=_between(before, after),
    )


def _between(before: str | None, after: str | None) -> tuple[str, ...]:
    """The revisions after `before` up to and including `after`, oldest first."""
    if after is None or before == after:
        return ()
    script = ScriptDirectory.from_config(_config())
    newest_first = script.iterate_revisions(after, before or "base")
    return tuple(reversed([found.revision for found in newest_first]))


async def ensure_schema(engine: AsyncEngine, *, migrate: bool) -> None:
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_revision)
    head = head_revision()
    if current == head:
        return
    _refuse_unknown(current)
    if not migrate:
        raise MigrationRequired(current, head)
    migrated = await upgrade(engine)
    # Another replica may have migrated it in the meantime: then nothing ran.
    if migrated.applied:
        log.info("%s", migrated)
