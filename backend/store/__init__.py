"""The job store's public module: what the API and the functions may use."""

from backend.store.changes import JobEvent
from backend.store.engine import create_engine, is_sqlite
from backend.store.jobs import (
    TERMINAL_STATUSES,
    Job,
    JobNotFound,
    JobStatus,
    JobStore,
    Progress,
)
from backend.store.migrate import MigrationRequired, ensure_schema, upgrade

__all__ = [
    "TERMINAL_STATUSES",
    "Job",
    "JobEvent",
    "JobNotFound",
    "JobStatus",
    "JobStore",
    "MigrationRequired",
    "Progress",
    "create_engine",
    "ensure_schema",
    "is_sqlite",
    "open_store",
    "upgrade",
]


async def open_store(database_url: str, *, migrate: bool) -> JobStore:
    """A store on `database_url`, migrated first when `migrate` is true.

    Without `migrate`, a database that is not at the latest revision raises
    MigrationRequired with the command that fixes it.
    """
    engine = create_engine(database_url)
    await ensure_schema(engine, migrate=migrate)
    return JobStore(engine)
