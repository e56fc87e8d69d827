"""The job store's public module: what the API and the functions may use."""

from backend.store.changes import JobEvent
from backend.store.engine import (
    DatabaseUnreachable,
    UnsupportedDatabase,
    create_engine,
    is_sqlite,
    reach,
)
from backend.store.jobs import (
    TERMINAL_STATUSES,
    Job,
    JobNotFound,
    JobStatus,
    JobStore,
    Progress,
)
from backend.store.migrate import (
    DatabaseNewer,
    Migrated,
    MigrationRequired,
    ensure_schema,
    upgrade,
)

__all__ = [
    "TERMINAL_STATUSES",
    "DatabaseNewer",
    "DatabaseUnreachable",
    "Job",
    "JobEvent",
    "JobNotFound",
    "JobStatus",
    "JobStore",
    "Migrated",
    "MigrationRequired",
    "Progress",
    "UnsupportedDatabase",
    "create_engine",
    "ensure_schema",
    "is_sqlite",
    "open_store",
    "reach",
    "upgrade",
]


async def open_store(database_url: str, *, migrate: bool) -> JobStore:
    """A store on `database_url`, migrated first when `migrate` is true.

    Without `migrate`, a database that is not at the latest revision raises
    MigrationRequired with the command that fixes it; one that cannot be
    connected to raises DatabaseUnreachable.
    """
    engine = create_engine(database_url)
    try:
        await reach(engine)
        await ensure_schema(engine, migrate=migrate)
    except BaseException:
        await engine.dispose()
        raise
    return JobStore(engine)
