"""`digest db upgrade` and `digest serve` when the database is down, absent
or unmigrated: one line that says what and where, an exit code, and no
traceback; and the start-up log of a dev backend that migrated."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from ulid import ULID

from backend.store.migrate import head_revision
from digest import stack
from digest.settings import Settings
from tests import pg

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "hunter2-not-shown"
PROD = {
    "APP_ENV": "prod",
    "INNGEST_BASE_URL": "http://127.0.0.1:9",
    "INNGEST_EVENT_KEY": "test-event-key",
    "INNGEST_SIGNING_KEY": "signkey-prod-" + "ab" * 32,
    "AUTH_JWT_SECRET": "a-secret-of-this-test-only-" + "x" * 20,
    "PUBLIC_URL": "https://digest.example.com",
}


def digest(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`digest ARGS` as a person runs it, in `cwd` (no dotenv file there),
    with only `env` for Digest's settings."""
    settings = {name.upper() for name in Settings.model_fields}
    clean = {k: v for k, v in os.environ.items() if k.upper() not in settings}
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def refused_url() -> str:
    """A PostgreSQL URL on a loopback port where nothing listens."""
    return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{stack.free_port()}/digest"


def assert_one_line(done: subprocess.CompletedProcess[str], *says: str) -> str:
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert PASSWORD not in output, output
    lines = [line for line in output.splitlines() if all(s in line for s in says)]
    assert len(lines) == 1, output
    return lines[0]


def test_db_upgrade_on_a_refused_port_is_one_line(tmp_path: Path) -> None:
    done = digest(["db", "upgrade"], {"DATABASE_URL": refused_url()}, tmp_path)
    assert done.returncode == 1, done.stderr
    line = assert_one_line(done, "database unreachable at", "postgres:***@127.0.0.1")
    assert "ConnectionRefusedError" in line
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_password_in_the_query_string_is_hidden_too(tmp_path: Path) -> None:
    url = (
        f"postgresql+asyncpg://postgres@127.0.0.1:{stack.free_port()}/digest"
        f"?password={PASSWORD}"
    )
    done = digest(["db", "upgrade"], {"DATABASE_URL": url}, tmp_path)
    assert done.returncode == 1
    assert "password=***" in assert_one_line(done, "database unreachable at")
    shown = digest(["config", "show", "--json"], {"DATABASE_URL": url}, tmp_path)
    assert "password=***" in shown.stdout, shown.stdout
    assert PASSWORD not in shown.stdout + shown.stderr


def test_db_upgrade_on_a_database_that_does_not_exist_is_one_line(
    tmp_path: Path,
) -> None:
    pg.require_server()
    absent = "digest_absent_" + str(ULID()).lower()
    url = make_url(pg.ADMIN_URL).set(database=absent)
    database_url = url.render_as_string(hide_password=False)
    done = digest(["db", "upgrade"], {"DATABASE_URL": database_url}, tmp_path)
    assert done.returncode == 1, done.stderr
    line = assert_one_line(done, "database unreachable at")
    assert f'database "{url.database}" does not exist' in line
    assert "DATABASE_URL" in line


def test_db_upgrade_with_a_url_that_is_not_a_database_is_one_line(
    tmp_path: Path,
) -> None:
    for bad in ["not a url", f"mysql://root:{PASSWORD}@127.0.0.1/digest"]:
        done = digest(["db", "upgrade"], {"DATABASE_URL": bad}, tmp_path)
        assert done.returncode == 2, done.stderr
        assert_one_line(done, "DATABASE_URL", "sqlite+aiosqlite:///")


def test_db_upgrade_says_which_revisions_it_applied(
    database_url: str, tmp_path: Path
) -> None:
    head = head_revision()
    first = digest(["db", "upgrade"], {"DATABASE_URL": database_url}, tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"from revision none to {head} (applied 0001, 0002, " in first.stdout
    assert first.stdout.rstrip().endswith(f", {head})"), first.stdout
    again = digest(["db", "upgrade"], {"DATABASE_URL": database_url}, tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"is already at revision {head}; nothing to apply" in again.stdout
    assert "migrated" not in again.stdout


def test_serve_with_the_database_down_says_so_in_one_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": refused_url(), "INNGEST_DEV": "1"}
    done = digest(["serve", "--port", str(stack.free_port())], env, tmp_path)
    assert done.returncode != 0, done.stderr
    line = assert_one_line(done, "refusing to start: database unreachable at")
    assert "ERROR" in line
    assert "postgres:***@127.0.0.1" in line
    assert "check that the server is running" in line


def test_prod_serve_on_an_unmigrated_database_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    env = {
        **PROD,
        "DATABASE_URL": f"sqlite+aiosqlite:///{empty}",
        "ALLOW_SQLITE_IN_PROD": "true",
    }
    done = digest(["serve", "--port", str(stack.free_port())], env, tmp_path)
    assert done.returncode == 3, done.stderr
    assert_one_line(
        done,
        f"refusing to start: the database is at revision none, the code needs "
        f"{head_revision()}: run `digest db upgrade` first",
    )


def test_database_migrated_by_newer_code_is_one_line_everywhere(
    tmp_path: Path,
) -> None:
    store = tmp_path / "newer.db"
    url = f"sqlite+aiosqlite:///{store}"
    assert digest(["db", "upgrade"], {"DATABASE_URL": url}, tmp_path).returncode == 0
    with sqlite3.connect(store) as db:
        db.execute("UPDATE alembic_version SET version_num = '0999'")
    says = "the database is at revision 0999, which this code does not know"
    upgrade = digest(["db", "upgrade"], {"DATABASE_URL": url}, tmp_path)
    assert upgrade.returncode == 1, upgrade.stderr
    assert "deploy the code that has that revision" in assert_one_line(upgrade, says)
    for env in (
        {"DATABASE_URL": url, "INNGEST_DEV": "1"},
        {**PROD, "DATABASE_URL": url, "ALLOW_SQLITE_IN_PROD": "true"},
    ):
        done = digest(["serve", "--port", str(stack.free_port())], env, tmp_path)
        assert done.returncode == 3, done.stderr
        assert "run `digest db upgrade`" not in assert_one_line(done, says)
    with sqlite3.connect(store) as db:
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == "0999"


def test_dev_serve_logs_the_migration_it_ran(database_url: str, tmp_path: Path) -> None:
    backend = stack.start_backend(
        executor_url=f"http://{stack.LOOPBACK}:{stack.free_port()}",
        database_url=database_url,
        log_path=tmp_path / "backend.log",
    )
    backend.stop()
    log = (tmp_path / "backend.log").read_text()
    shown = make_url(database_url).render_as_string(hide_password=True)
    assert f"migrated {shown} from revision none to {head_revision()}" in log, log
    # Alembic's plugin announcements are not start-up news.
    assert "alembic.runtime.plugins" not in log, log
