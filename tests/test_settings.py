"""Profiles: which file wins, and what the Inngest client is given."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from digest.settings import load_settings
from functions.client import create_client

ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = [
    "APP_ENV",
    "INNGEST_DEV",
    "INNGEST_BASE_URL",
    "INNGEST_EVENT_KEY",
    "INNGEST_SIGNING_KEY",
    "DATABASE_URL",
    "PUBLIC_URL",
    "CORS_ORIGINS",
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the tracked profiles, with no setting in the env."""
    for name in (".env.dev", ".env.prod"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_dev_is_the_default_profile(project: Path) -> None:
    settings = load_settings()
    assert settings.app_env == "dev"
    assert settings.inngest_dev == "1"
    assert settings.executor_url == "http://127.0.0.1:8288"
    assert settings.database_url.startswith("sqlite+aiosqlite:")
    assert "http://localhost:3000" in settings.cors_origins


def test_app_env_picks_the_prod_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    settings = load_settings()
    assert settings.app_env == "prod"
    assert settings.inngest_dev is None
    assert settings.database_url.startswith("postgresql+asyncpg://")


def test_app_env_in_a_file_does_not_switch_the_profile(project: Path) -> None:
    # The process environment picks the profile and so the files; a file
    # cannot then name another profile whose files were not read.
    (project / ".env.dev.local").write_text("APP_ENV=prod\n")
    settings = load_settings()
    assert settings.app_env == "dev"
    assert settings.inngest_dev == "1"


def test_local_file_overrides_tracked_file_and_env_overrides_both(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env.dev.local").write_text(
        "INNGEST_EVENT_KEY=from-local-file\nPUBLIC_URL=http://127.0.0.1:9000\n"
    )
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:9100")
    settings = load_settings()
    assert settings.inngest_event_key is not None
    assert settings.inngest_event_key.get_secret_value() == "from-local-file"
    assert settings.public_url == "http://127.0.0.1:9100"


def test_secrets_are_masked_when_printed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INNGEST_SIGNING_KEY", "signkey-test-00ff")
    settings = load_settings()
    assert "00ff" not in repr(settings)
    assert "00ff" not in str(settings.model_dump())


def test_inngest_client_is_configured_from_settings(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INNGEST_BASE_URL", "http://127.0.0.1:18288")
    monkeypatch.setenv("INNGEST_EVENT_KEY", "key-from-settings")
    client = create_client(load_settings())
    assert client.app_id == "digest"
    assert not client.is_production
    assert client._api_origin == "http://127.0.0.1:18288"
    assert client._event_api_origin == "http://127.0.0.1:18288"
    assert client._event_key == "key-from-settings"
