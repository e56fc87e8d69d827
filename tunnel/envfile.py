"""Where a tunnel's URL is written for the other side to read.

The dotenv file (`.env.dev.local`) is the place the settings are read from.
While a tunnel is open its URL is the setting's value; once it closes the
setting goes back to what it was, since a closed tunnel's address leads
nowhere. The URL a tunnel had last time is kept in the same file under
LAST_PREFIX + the setting's name (Digest reads no such setting), so the
next tunnel can say when its URL differs.
"""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values, set_key, unset_key

LAST_PREFIX = "DIGEST_TUNNEL_LAST_"


def read_url(path: Path, name: str) -> str | None:
    """The value of `name` in the dotenv file at `path`, if any."""
    if not path.is_file():
        return None
    return dotenv_values(path).get(name) or None


def write_url(path: Path, name: str, url: str) -> str | None:
    """Set `name=url` in the dotenv file, keeping its other lines; return the
    value it had before (None if it had none)."""
    previous = read_url(path, name)
    path.touch(exist_ok=True)
    set_key(path, name, url, quote_mode="never")
    return previous


def remove_url(path: Path, name: str) -> None:
    """Drop `name` from the dotenv file, if it is there."""
    if read_url(path, name) is not None:
        unset_key(path, name, quote_mode="never")
