"""Where a tunnel's URL is written for the other side to read.

The dotenv file (`.env.dev.local`) is both the place the settings are read
from and the memory of the last URL: the value found there before writing
is "last time", so no other state is kept.
"""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values, set_key


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
