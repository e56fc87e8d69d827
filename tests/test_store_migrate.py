"""Migrations on SQLite and PostgreSQL: `digest db upgrade`, the refusal to
run on an unmigrated database, and the outbox migration's data step."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from backend.store import MigrationRequired, create_engine, open_store, upgrade
from backend.store.migrate import head_revision
from backend.store.models import JobRow, OutboxRow
from tests import pg

ROOT = Path(__file__).resolve().parent.parent


def _digest(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_an_unmigrated_database_is_refused_with_the_fix(
    database_url: str,
) -> None:
    with pytest.raises(MigrationRequired, match=r"run `digest db upgrade` first"):
        await open_store(database_url, migrate=False)


async def test_db_upgrade_brings_the_database_to_head(database_url: str) -> None:
    done = _digest(["db", "upgrade"], {"DATABASE_URL": database_url})
    assert done.returncode == 0, done.stderr
    assert f"to {head_revision()} (applied 0001" in done.stdout

    store = await open_store(database_url, migrate=False)
    try:
        assert (await store.get_job(await _job(store))).status == "queued"
    finally:
        await store.close()
    # Running it again is harmless.
    assert _digest(["db", "upgrade"], {"DATABASE_URL": database_url}).returncode == 0


async def _job(store) -> str:  # type: ignore[no-untyped-def]
    job = await store.create_job(
        owner="o", text="Some words.", source_format="text", max_sentences=1, title=None
    )
    return str(job.id)


async def test_queued_jobs_get_their_outbox_row_on_upgrade(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0002")
        now = datetime.now(UTC)
        common = {
            "owner": "o",
            "source_text": "x",
            "source_format": "text",
            "max_sentences": 1,
            "progress_total": 4,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        async with engine.begin() as connection:
            await connection.execute(
                insert(JobRow).values(**common),
                [
                    {"id": "A" * 26, "status": "queued", "event_sent_at": None},
                    {"id": "B" * 26, "status": "queued", "event_sent_at": now},
                    {"id": "C" * 26, "status": "succeeded", "event_sent_at": None},
                ],
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(OutboxRow.id, OutboxRow.name, OutboxRow.sent_at).order_by(
                        OutboxRow.id
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert [(row.id, row.name) for row in rows] == [
        ("A" * 26, "summary/requested"),
        ("B" * 26, "summary/requested"),
    ]
    assert rows[0].sent_at is None
    assert rows[1].sent_at is not None


def test_prod_backend_refuses_an_unmigrated_postgres(tmp_path: Path) -> None:
    name = pg.create_database()
    try:
        env = {
            "APP_ENV": "prod",
            "DATABASE_URL": pg.database_url_for(name),
            "INNGEST_BASE_URL": "http://127.0.0.1:9",
            "INNGEST_EVENT_KEY": "test-event-key",
            "INNGEST_SIGNING_KEY": "signkey-prod-" + "ab" * 32,
            "AUTH_JWT_SECRET": "a-secret-of-this-test-only-" + "x" * 20,
            "PUBLIC_URL": "https://digest.example.com",
            "DIGEST_HOME": str(tmp_path),
        }
        done = _digest(["serve", "--port", "9"], env)
    finally:
        pg.drop_database(name)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert (
        f"refusing to start: the database is at revision none, the code needs "
        f"{head_revision()}: run `digest db upgrade` first"
    ) in output, output


async def test_replicas_migrating_a_fresh_postgres_together_all_start() -> None:
    with pg.temporary_database() as url:
        engines = [create_engine(url) for _ in range(4)]
        try:
            await asyncio.gather(*(upgrade(engine) for engine in engines))
            store = await open_store(url, migrate=False)
            await store.close()
        finally:
            for engine in engines:
                await engine.dispose()
