"""`digest config show`: the effective settings, where each came from.

A value's source is the first that has it, in the order the settings are
read: the process environment, `.env.{APP_ENV}.local`, `.env.{APP_ENV}`,
else the default in `digest/settings.py`. Secrets are shown as
fingerprints, URLs with their credentials masked (`without_password`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import ArgumentError

from backend.store.engine import shown_url
from digest.profile import Service, fingerprint, problems
from digest.settings import Settings, env_files
from digest.urls import without_password


@dataclass(frozen=True)
class ShownSetting:
    name: str
    value: str
    source: str


def effective_settings(
    settings: Settings, folder: Path | None = None
) -> list[ShownSetting]:
    """Every setting with its shown value and source, in declaration order."""
    folder = folder or Path.cwd()
    environ = {key.upper(): key for key in os.environ}
    files = [
        (name, _read_dotenv(folder / name))
        for name in reversed(env_files(settings.app_env))
    ]
    shown = []
    for field in Settings.model_fields:
        name = field.upper()
        source = "default"
        if name in environ:
            source = "env"
        elif name != "APP_ENV":
            # APP_ENV is read from the process environment only (it picks
            # the files), so a line in them is not where its value came from.
            source = next((file for file, values in files if name in values), source)
        shown.append(ShownSetting(name, _shown(name, getattr(settings, field)), source))
    return shown


def env_files_read(app_env: str, folder: Path | None = None) -> list[Path]:
    """The profile's dotenv files that exist in `folder` (the working
    folder, where the settings look for them), lowest precedence first."""
    folder = folder or Path.cwd()
    return [folder / name for name in env_files(app_env) if (folder / name).is_file()]


def env_files_line(app_env: str, folder: Path | None = None) -> str:
    """Which dotenv files the settings came from, as one line; run outside
    the project folder, none is found and only the environment counts."""
    folder = folder or Path.cwd()
    found = env_files_read(app_env, folder)
    if found:
        return f"read {', '.join(path.name for path in found)} in {folder}"
    wanted = " or ".join(env_files(app_env))
    return (
        f"no {wanted} in {folder}: settings come from the environment and "
        "defaults only (run from the project folder to read them)"
    )


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {key.upper(): value or "" for key, value in dotenv_values(path).items()}


def _shown(name: str, value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return fingerprint(value.get_secret_value(), signing_key="SIGNING" in name)
    if isinstance(value, list):
        # CORS_ORIGINS: an origin with a user part is a profile problem,
        # and shown masked like any URL.
        return ",".join(without_password(str(item)) for item in value) or "(none)"
    if name == "DATABASE_URL":
        return _without_password(str(value))
    # Any other URL setting (LLM_BASE_URL, INNGEST_BASE_URL, AUTH_JWKS_URL…)
    # may carry a password in its user part too.
    return without_password(str(value))


def _without_password(url: str) -> str:
    # Hidden as SQLAlchemy reads the URL (the password the driver would
    # send), then as every other URL setting is (a password SQLAlchemy
    # splits differently, a secret in another query parameter); a URL
    # SQLAlchemy cannot parse is masked that second way only.
    with contextlib.suppress(ArgumentError, ValueError):
        url = shown_url(url)
    return without_password(url)


def show(
    settings: Settings,
    console: Console,
    *,
    as_json: bool = False,
    service: Service = "api",
) -> int:
    """Print the settings and the profile's problems for `service`; 0 if it
    has none."""
    shown = effective_settings(settings)
    found = problems(settings, service)
    if as_json:
        import json

        document = {
            "profile": settings.app_env,
            "env_files": [str(path) for path in env_files_read(settings.app_env)],
            "settings": [asdict(item) for item in shown],
            "problems": [str(problem) for problem in found],
        }
        console.print_json(json.dumps(document))
        return 1 if found else 0
    table = Table(title=f"profile {settings.app_env}", title_justify="left")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    table.add_column("source")
    for item in shown:
        table.add_row(item.name, item.value, item.source)
    console.print(table)
    files = env_files_line(settings.app_env)
    style = "" if env_files_read(settings.app_env) else "[yellow]warning[/yellow] "
    console.print(f"{style}{files}", highlight=False)
    for problem in found:
        console.print(f"[red]problem[/red] {problem}", highlight=False)
    if not found:
        console.print("[green]the profile has no problem[/green]")
    return 1 if found else 0
