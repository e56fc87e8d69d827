"""What an open tunnel wrote, kept where a killed tunnel's leftovers can be
found and put right.

A tunnel holds a lock on `tunnel-<SETTING>.lock` under DIGEST_HOME for as
long as its process lives (digest.tunnel_up.hold_setting), and beside it
keeps `tunnel-<SETTING>.json`: the dotenv file it wrote, the URL it wrote
there and the setting's value before. A clean close puts that value back
and drops the record. A record with nobody holding the lock is a tunnel
that was killed (SIGKILL, a crash, a power cut): the setting it wrote is
*stale*, an address that leads nowhere, and putting `before` back is what
the close would have done.

Looking never writes while a live tunnel holds the lock: the lock is only
tried, without waiting (`LOCK_NB`), and a refusal means "alive".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tunnel.envfile import read_url, remove_url, write_url


@dataclass(frozen=True)
class TunnelRecord:
    setting: str
    # The dotenv file written (absolute), the URL written there, and the
    # setting's value before (None: it was not in the file).
    env_file: str
    url: str
    before: str | None
    pid: int

    @property
    def path(self) -> Path:
        return Path(self.env_file)

    def still_written(self) -> bool:
        """Whether the file still holds the tunnel's URL (the user may have
        changed it since, and then it is theirs)."""
        return read_url(self.path, self.setting) == self.url

    def put_back(self) -> str:
        """Put the setting back as the tunnel's close would have; say how."""
        if self.before is None:
            remove_url(self.path, self.setting)
            return f"removed it from {self.env_file} (it was not set before)"
        write_url(self.path, self.setting, self.before)
        return f"put back to {self.before} in {self.env_file}"


def lock_path(home: Path, setting: str) -> Path:
    return home / f"tunnel-{setting}.lock"


def record_path(home: Path, setting: str) -> Path:
    return home / f"tunnel-{setting}.json"


def write_record(home: Path, record: TunnelRecord) -> None:
    """Keep `record` (the caller holds the setting's lock)."""
    path = record_path(home, record.setting)
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(asdict(record)))
    os.replace(partial, path)


def read_record(home: Path, setting: str) -> TunnelRecord | None:
    """The record of the tunnel that wrote `setting` last, if one is kept;
    an unreadable one counts as none (it cannot say what to put back)."""
    try:
        fields = json.loads(record_path(home, setting).read_text())
        return TunnelRecord(**fields)
    except (OSError, ValueError, TypeError):
        return None


def drop_record(home: Path, setting: str) -> None:
    record_path(home, setting).unlink(missing_ok=True)


@contextlib.contextmanager
def unheld(home: Path, setting: str) -> Iterator[bool]:
    """Whether no process holds `setting`'s lock; while the block runs, this
    process holds it (so no tunnel opens meanwhile). Never waits: a lock
    held elsewhere is a live tunnel, and then the answer is False."""
    path = lock_path(home, setting)
    if not path.exists():
        yield True
        return
    # Opened to append, so that a dead holder's PID stays in the file.
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def stale_record(home: Path, setting: str) -> TunnelRecord | None:
    """The record of a tunnel that is gone while its URL is still written
    for `setting`; None when there is none, or its tunnel is alive. Changes
    nothing."""
    record = read_record(home, setting)
    if record is None:
        return None
    with unheld(home, setting) as free:
        if free and record.still_written():
            return record
    return None


def put_back_stale(home: Path, setting: str, *, locked: bool = False) -> str | None:
    """If a gone tunnel's URL is still written for `setting`, put the value
    before it back and drop the record; the line that says so, else None.

    `locked`: the caller holds the setting's lock already (a tunnel about
    to open); otherwise the lock is tried, and a live tunnel left alone.
    """
    record = read_record(home, setting)
    if record is None:
        return None
    if locked:
        return _put_back(home, record)
    with unheld(home, setting) as free:
        return _put_back(home, record) if free else None


def _put_back(home: Path, record: TunnelRecord) -> str | None:
    said = None
    if record.still_written():
        how = record.put_back()
        said = (
            f"{record.setting} pointed at a tunnel that is gone ({record.url}); {how}"
        )
    drop_record(home, record.setting)
    return said
