"""Profile checks, `digest config show` and secrets kept out of sight."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from inngest._internal import transforms

from backend.app import create_app
from digest.config_show import effective_settings
from digest.profile import UnsafeSettings, fingerprint, problems
from digest.settings import DEV_JWT_SECRET, Settings, load_settings
from digest.signature_age import MAX_AGE_S
from functions.app import create_app as create_functions_app

ROOT = Path(__file__).resolve().parent.parent
PROD_KEY = "signkey-prod-" + "ab" * 32
SETTINGS_ENV = [name.upper() for name in Settings.model_fields]


def prod(**overrides: object) -> Settings:
    """A prod profile with nothing wrong, then `overrides`."""
    values: dict[str, object] = {
        "app_env": "prod",
        "inngest_event_key": "prod-event-key",
        "inngest_signing_key": PROD_KEY,
        "database_url": "postgresql+asyncpg://digest@db.internal/digest",
        "public_url": "https://api.example.com",
        "cors_origins": ["https://app.example.com"],
        "auth_jwt_secret": "x" * 40,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def named(settings: Settings) -> list[str]:
    return [problem.setting for problem in problems(settings)]


def test_a_good_prod_profile_has_no_problem() -> None:
    assert problems(prod()) == []
    assert problems(Settings(app_env="dev")) == []


@pytest.mark.parametrize(
    ("overrides", "setting", "says"),
    [
        ({"inngest_dev": "1"}, "INNGEST_DEV", "unset it"),
        ({"inngest_event_key": None}, "INNGEST_EVENT_KEY", "event key"),
        ({"inngest_signing_key": None}, "INNGEST_SIGNING_KEY", "signkey-prod-"),
        (
            {"inngest_signing_key": "signkey-test-" + "ab" * 32},
            "INNGEST_SIGNING_KEY",
            "signkey-test- key in the prod profile",
        ),
        ({"inngest_signing_key": "ab" * 32}, "INNGEST_SIGNING_KEY", "without"),
        (
            {"inngest_signing_key_fallback": PROD_KEY},
            "INNGEST_SIGNING_KEY_FALLBACK",
            "same key",
        ),
        ({"database_url": "sqlite+aiosqlite:///x.db"}, "DATABASE_URL", "PostgreSQL"),
        ({"cors_origins": ["*"]}, "CORS_ORIGINS", "list your client"),
        ({"public_url": "http://api.example.com"}, "PUBLIC_URL", "https://"),
        ({"auth_jwt_secret": None}, "AUTH_JWT_SECRET", "AUTH_JWKS_URL"),
        ({"auth_jwt_secret": DEV_JWT_SECRET}, "AUTH_JWT_SECRET", "dev secret"),
        (
            {"fetch_allow_loopback_for_tests": [8080]},
            "FETCH_ALLOW_LOOPBACK_FOR_TESTS",
            "unset it",
        ),
        ({"tunnel_provider": "ngrok"}, "TUNNEL_PROVIDER", "set none"),
    ],
)
def test_each_prod_problem_is_one_line_naming_the_setting(
    overrides: dict[str, object], setting: str, says: str
) -> None:
    found = problems(prod(**overrides))
    assert [p.setting for p in found] == [setting]
    line = str(found[0])
    assert line.startswith(f"{setting}: ")
    assert says in line
    assert "\n" not in line


def test_sqlite_in_prod_needs_the_explicit_override() -> None:
    sqlite = "sqlite+aiosqlite:///var/digest.db"
    assert named(prod(database_url=sqlite)) == ["DATABASE_URL"]
    assert named(prod(database_url=sqlite, allow_sqlite_in_prod=True)) == []


def test_llm_summariser_without_endpoint_or_model_is_refused_in_any_profile() -> None:
    llm = Settings(app_env="dev", summarizer="llm")
    assert named(llm) == ["LLM_BASE_URL", "LLM_MODEL"]
    ready = Settings(
        app_env="dev",
        summarizer="llm",
        llm_base_url="http://127.0.0.1:9/v1",
        llm_model="stand-in",
    )
    assert named(ready) == []
    assert named(prod(summarizer="llm", llm_model="m")) == ["LLM_BASE_URL"]


def test_dev_refuses_prod_keys_and_equal_fallback_only() -> None:
    test_key = "signkey-test-" + "cd" * 32
    assert named(Settings(app_env="dev", inngest_signing_key=test_key)) == []
    assert named(Settings(app_env="dev", inngest_signing_key="signkey-branch-00")) == []
    assert named(Settings(app_env="dev", inngest_signing_key=PROD_KEY)) == [
        "INNGEST_SIGNING_KEY"
    ]
    same = Settings(
        app_env="dev",
        inngest_signing_key=test_key,
        inngest_signing_key_fallback=test_key,
    )
    assert named(same) == ["INNGEST_SIGNING_KEY_FALLBACK"]
    # What prod alone forbids is fine in dev.
    relaxed = Settings(app_env="dev", cors_origins=["*"], database_url="sqlite://")
    assert named(relaxed) == []


def test_all_problems_are_reported_together_without_secrets() -> None:
    key = "signkey-test-" + secrets.token_hex(32)
    settings = prod(
        inngest_dev="1",
        inngest_signing_key=key,
        inngest_signing_key_fallback=key,
        cors_origins=["*"],
        public_url="http://x",
        database_url="sqlite+aiosqlite:///x.db",
    )
    with pytest.raises(UnsafeSettings) as refused:
        create_app(settings)
    lines = str(refused.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "INNGEST_DEV",
        "INNGEST_SIGNING_KEY",
        "INNGEST_SIGNING_KEY_FALLBACK",
        "INNGEST_SIGNING_KEY_FALLBACK",
        "DATABASE_URL",
        "CORS_ORIGINS",
        "PUBLIC_URL",
    ]
    assert key[len("signkey-test-") :] not in str(refused.value)
    assert fingerprint(key, signing_key=True) in str(refused.value)
    # The functions service refuses the same profile the same way.
    with pytest.raises(UnsafeSettings):
        create_functions_app(settings)


def test_signing_key_fingerprint_is_the_sdks_hash_prefix() -> None:
    assert fingerprint(PROD_KEY, signing_key=True) == (
        "sha256:" + transforms.hash_signing_key(PROD_KEY)[:8]
    )
    assert fingerprint("event") == "sha256:" + transforms.hash_event_key("event")[:8]


async def test_readyz_shows_fingerprints_not_secrets(tmp_path: Path) -> None:
    key = "signkey-test-" + secrets.token_hex(32)
    settings = Settings(
        app_env="dev",
        inngest_signing_key=key,
        inngest_event_key="an-event-key-secret",
        inngest_base_url="http://127.0.0.1:9",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http,
    ):
        answer = await http.get("/readyz")
    body = answer.json()
    assert body["keys"]["INNGEST_SIGNING_KEY"] == fingerprint(key, signing_key=True)
    assert body["keys"]["INNGEST_EVENT_KEY"] == fingerprint("an-event-key-secret")
    assert key[-64:] not in answer.text
    assert "an-event-key-secret" not in answer.text


async def test_stale_signatures_are_refused_in_prod_only() -> None:
    from devserver.signing import sign_request

    old = sign_request(b"", PROD_KEY, t=int(__import__("time").time()) - MAX_AGE_S - 60)
    for settings, expected in (
        (prod(allow_sqlite_in_prod=True), 401),
        (Settings(app_env="dev"), 200),
    ):
        app = create_app(settings)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            answer = await http.get(
                "/api/inngest", headers={"x-inngest-signature": old}
            )
        assert answer.status_code == expected, answer.text
        if expected == 401:
            assert answer.json()["error"]["code"] == "stale_signature"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the tracked profiles, and no setting in the env."""
    for name in (".env.dev", ".env.prod"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_config_show_names_each_source_and_masks_secrets(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env.dev.local").write_text(
        "INNGEST_EVENT_KEY=local-event-secret\n"
        "DATABASE_URL=postgresql+asyncpg://digest:pa55word@db/digest\n"
    )
    monkeypatch.setenv("CHUNK_CHARS", "4000")
    shown = {s.name: s for s in effective_settings(load_settings(), project)}
    assert shown["CHUNK_CHARS"].source == "env"
    assert shown["CHUNK_CHARS"].value == "4000"
    assert shown["INNGEST_EVENT_KEY"].source == ".env.dev.local"
    assert shown["INNGEST_EVENT_KEY"].value == fingerprint("local-event-secret")
    assert shown["DATABASE_URL"].value == "postgresql+asyncpg://digest:***@db/digest"
    assert shown["PUBLIC_URL"].source == ".env.dev"
    assert shown["MAX_TEXT_BYTES"].source == "default"
    assert shown["INNGEST_SIGNING_KEY"].value == "(unset)"


def _digest(
    project: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in SETTINGS_ENV}
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        cwd=project,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_config_show_command_json(project: Path) -> None:
    done = _digest(
        project,
        "config",
        "show",
        "--json",
        env={"APP_ENV": "prod", "INNGEST_SIGNING_KEY": PROD_KEY},
    )
    document = json.loads(done.stdout)
    assert done.returncode == 1  # the prod profile of a bare clone has problems
    rows = {row["name"]: row for row in document["settings"]}
    assert rows["INNGEST_SIGNING_KEY"]["source"] == "env"
    assert rows["APP_ENV"]["value"] == "prod"
    assert "ab" * 32 not in done.stdout
    assert any(p.startswith("INNGEST_EVENT_KEY:") for p in document["problems"])


@pytest.mark.parametrize("command", [["serve"], ["functions", "serve"], ["dev"]])
def test_commands_refuse_a_bad_profile_before_starting(
    project: Path, command: list[str]
) -> None:
    done = _digest(
        project,
        *command,
        "--port",
        "9",
        env={"APP_ENV": "prod", "INNGEST_DEV": "1", "CORS_ORIGINS": "*"},
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "the prod profile cannot start:"
    settings_named = [line.strip().split(":")[0] for line in lines[1:]]
    assert "INNGEST_DEV" in settings_named
    assert "CORS_ORIGINS" in settings_named
    assert "INNGEST_SIGNING_KEY" in settings_named
    assert "Traceback" not in done.stderr
