"""A PostgreSQL server of the test's own, which the test may stop and start.

The shared server on 127.0.0.1:5432 must never go down under other tests,
so fault tests build a private cluster with `initdb` in a temporary folder
and run it with `pg_ctl` on a free loopback port, with trust auth and no
Unix socket outside that folder.

PostgreSQL refuses to run as root (initdb and postgres both exit with
"cannot be run as root"). When the tests run as root, every server command
runs through `runuser` as an unprivileged account: DIGEST_PG_OS_USER if set,
else `postgres` (the packages create it), else `nobody`. The cluster's
folder is made with `tempfile.mkdtemp` directly under the system temporary
folder and handed to that account, because pytest's own temporary folders
are private to root and the account could not enter them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from digest.stack import LOOPBACK, free_port

DATABASE = "digest"


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's
    versioned folders, newest first."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda folder: int(Path(folder).parent.name.split(".")[0]),
        reverse=True,
    )
    for folder in versions:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _os_user() -> str | None:
    """The account to run PostgreSQL as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("DIGEST_PG_OS_USER"), "postgres", "nobody"):
        if not name:
            continue
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    return None


@dataclass
class PgInstance:
    """A private cluster: `start()`, `stop()`, `url` for the backend."""

    bin_dir: Path
    folder: Path
    port: int
    os_user: str | None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database the backend uses."""
        return f"postgresql+asyncpg://postgres@{LOOPBACK}:{self.port}/{DATABASE}"

    @property
    def dsn(self) -> str:
        """The same database as a plain DSN, for asyncpg in the test."""
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/{DATABASE}"

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / tool), *args]
        if self.os_user is None:
            return command
        return ["runuser", "-u", self.os_user, "--", *command]

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            self._command(tool, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.folder,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout}{done.stderr}\n--- server log ---\n{self.log_tail()}"
            )
        return done.stdout

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def init(self) -> None:
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--no-instructions",
        )
        settings = {
            "port": str(self.port),
            "listen_addresses": f"'{LOOPBACK}'",
            # Sockets in the cluster's own folder, not in /var/run, which
            # the shared server uses.
            "unix_socket_directories": f"'{self.folder}'",
            "max_connections": "100",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_path),
            "--wait",
            "--timeout",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends sessions and shuts down cleanly,
        `immediate` kills it as a crash would (recovery on next start)."""
        self._run(
            "pg_ctl",
            "--pgdata",
            str(self.data_dir),
            "--mode",
            mode,
            "--wait",
            "--timeout",
            "60",
            "stop",
        )

    def running(self) -> bool:
        done = subprocess.run(
            self._command("pg_ctl", "--pgdata", str(self.data_dir), "status"),
            capture_output=True,
            timeout=30,
            check=False,
        )
        return done.returncode == 0

    def psql(self, sql: str, *, database: str = DATABASE) -> str:
        """Run `sql` with psql; return its unaligned, tuples-only output."""
        return self._run(
            "psql",
            "--no-psqlrc",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--username",
            "postgres",
            "--dbname",
            database,
            "--tuples-only",
            "--no-align",
            "--set",
            "ON_ERROR_STOP=1",
            "--command",
            sql,
        ).strip()


@contextlib.contextmanager
def pg_instance() -> Iterator[PgInstance]:
    """A started private cluster with an empty database `digest`; stopped
    and removed on the way out."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("no initdb/pg_ctl found (install PostgreSQL's server package)")
    os_user = _os_user()
    if os.geteuid() == 0 and os_user is None:
        pytest.skip("running as root with no unprivileged account to run PostgreSQL")
    if os_user is not None and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser to drop privileges")

    folder = Path(tempfile.mkdtemp(prefix="digest-pg-"))
    if os_user is not None:
        account = pwd.getpwnam(os_user)
        os.chown(folder, account.pw_uid, account.pw_gid)
    instance = PgInstance(bin_dir, folder, free_port(), os_user)
    try:
        instance.init()
        instance.start()
        instance.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        yield instance
    finally:
        if instance.running():
            instance.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
