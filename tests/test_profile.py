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
from digest.profile import (
    SERVICES,
    Service,
    UnsafeSettings,
    executor_name,
    fingerprint,
    problems,
)
from digest.settings import DEV_JWT_SECRET, Settings, load_settings
from digest.signature_age import MAX_AGE_S
from digest.urls import without_password
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


def named(settings: Settings, service: Service = "api") -> list[str]:
    return [problem.setting for problem in problems(settings, service)]


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
        ({"auth_jwt_secret": "s3cret-13byte"}, "AUTH_JWT_SECRET", "13 bytes"),
        ({"public_url": "HTTP://api.example.com"}, "PUBLIC_URL", "not https"),
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


def test_an_https_scheme_in_capitals_is_https() -> None:
    assert named(prod(public_url="HTTPS://api.example.com")) == []


def test_a_password_in_the_llm_url_is_refused_and_never_shown() -> None:
    found = problems(
        Settings(
            app_env="dev",
            summarizer="llm",
            llm_model="m",
            llm_base_url="http://user:URLPASSWORD99@127.0.0.1:9/v1",
        )
    )
    assert [p.setting for p in found] == ["LLM_BASE_URL"]
    assert "LLM_API_KEY" in str(found[0])
    assert "URLPASSWORD99" not in str(found[0])
    not_http = problems(
        Settings(
            app_env="dev",
            summarizer="llm",
            llm_model="m",
            llm_base_url="ftp://user:URLPASSWORD99@host/v1",
        )
    )
    assert "URLPASSWORD99" not in str(not_http[0])


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("?api_key=QUERYKEY77", "api_key=***"),
        ("?key=QUERYKEY77", "key=***"),
        ("?token=QUERYKEY77", "token=***"),
        ("?api-version=2024-06-01&X-Api-Key=QUERYKEY77", "X-Api-Key=***"),
        ("?apikey=QUERYKEY77&access_token=QUERYKEY78", "apikey=***, access_token=***"),
    ],
)
def test_a_key_in_the_llm_url_query_is_refused_and_never_shown(
    query: str, shown: str
) -> None:
    settings = Settings(
        app_env="dev",
        summarizer="llm",
        llm_model="m",
        llm_base_url=f"https://api.example.com/v1{query}",
    )
    found = problems(settings)
    assert [str(p) for p in found] == [
        f"LLM_BASE_URL: carries a key in its query ({shown}); put the key in "
        "LLM_API_KEY and remove it from the URL"
    ]
    assert "QUERYKEY7" not in repr(found)
    # With a user part too, each is its own line, and neither shows a secret.
    both = problems(
        Settings(
            app_env="dev",
            summarizer="llm",
            llm_model="m",
            llm_base_url=f"https://sk-USERKEY1@api.example.com/v1{query}",
        )
    )
    assert [p.setting for p in both] == ["LLM_BASE_URL", "LLM_BASE_URL"]
    assert "carries a key in its query" in both[1].fix
    assert "USERKEY1" not in repr(both)
    assert "QUERYKEY7" not in repr(both)


@pytest.mark.parametrize(
    "query", ["?api-version=2024-06-01", "?api_key=", "?model=m&user=bob", ""]
)
def test_an_llm_url_query_without_a_key_is_accepted(query: str) -> None:
    settings = Settings(
        app_env="dev",
        summarizer="llm",
        llm_model="m",
        llm_base_url=f"https://api.example.com/v1{query}",
    )
    assert named(settings) == []


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
    relaxed = Settings(
        app_env="dev", cors_origins=["*"], database_url="sqlite+aiosqlite://"
    )
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
        "LLM_BASE_URL=http://user:URLPASSWORD99@127.0.0.1:9/v1\n"
        "AUTH_JWKS_URL=https://user:JWKSPASSWORD@id.example.com/jwks\n"
    )
    monkeypatch.setenv("CHUNK_CHARS", "4000")
    shown = {s.name: s for s in effective_settings(load_settings(), project)}
    assert shown["CHUNK_CHARS"].source == "env"
    assert shown["CHUNK_CHARS"].value == "4000"
    assert shown["INNGEST_EVENT_KEY"].source == ".env.dev.local"
    assert shown["INNGEST_EVENT_KEY"].value == fingerprint("local-event-secret")
    assert shown["DATABASE_URL"].value == "postgresql+asyncpg://digest:***@db/digest"
    assert shown["LLM_BASE_URL"].value == "http://user:***@127.0.0.1:9/v1"
    assert shown["AUTH_JWKS_URL"].value == "https://user:***@id.example.com/jwks"
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


@pytest.mark.parametrize(
    ("command", "cors_checked"),
    [(["serve"], True), (["functions", "serve"], False), (["dev"], True)],
)
def test_commands_refuse_a_bad_profile_before_starting(
    project: Path, command: list[str], cors_checked: bool
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
    # The functions service answers no browser: CORS is not its business.
    assert ("CORS_ORIGINS" in settings_named) is cors_checked
    assert "INNGEST_SIGNING_KEY" in settings_named
    assert ("APP_ENV" in settings_named) is (command == ["dev"])
    assert "Traceback" not in done.stderr


def test_each_service_is_checked_for_the_settings_it_uses() -> None:
    # What only the API uses: events, bearer tokens, browsers, links.
    api_only = prod(
        inngest_event_key=None,
        auth_jwt_secret=None,
        cors_origins=["*"],
        public_url="http://api.example.com",
    )
    assert named(api_only, "functions") == []
    assert named(api_only, "api") == [
        "INNGEST_EVENT_KEY",
        "CORS_ORIGINS",
        "PUBLIC_URL",
        "AUTH_JWT_SECRET",
    ]
    # The signing key checks the executor's calls: needed wherever the
    # functions are served, not by an API that only sends events.
    unsigned = prod(inngest_signing_key=None)
    assert named(unsigned, "functions") == ["INNGEST_SIGNING_KEY"]
    assert named(unsigned, "api") == ["INNGEST_SIGNING_KEY"]
    assert named(prod(inngest_signing_key=None, serve_functions=False)) == []
    # The LLM settings are the functions' too.
    llm = prod(summarizer="llm", serve_functions=False)
    assert named(llm) == []
    assert named(llm, "functions") == ["LLM_BASE_URL", "LLM_MODEL"]
    # `digest dev` runs a local, unsigned executor: never in prod.
    assert named(prod(), "dev") == ["APP_ENV"]
    assert named(Settings(app_env="dev"), "dev") == []


def test_blank_secrets_and_urls_count_as_unset(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("INNGEST_EVENT_KEY", "")
    monkeypatch.setenv("INNGEST_SIGNING_KEY", "  ")
    (project / ".env.prod.local").write_text(
        "INNGEST_SIGNING_KEY_FALLBACK=\nAUTH_JWT_SECRET=\nINNGEST_BASE_URL=\n"
    )
    settings = load_settings()
    assert settings.inngest_event_key is None
    assert settings.inngest_signing_key is None
    assert settings.inngest_signing_key_fallback is None
    assert settings.inngest_base_url is None
    assert {"INNGEST_EVENT_KEY", "INNGEST_SIGNING_KEY", "AUTH_JWT_SECRET"} <= set(
        named(settings)
    )


def test_prod_refuses_to_start_with_an_empty_event_key(project: Path) -> None:
    done = _digest(
        project,
        "serve",
        "--port",
        "9",
        env={
            "APP_ENV": "prod",
            "INNGEST_EVENT_KEY": "",
            "INNGEST_SIGNING_KEY": PROD_KEY,
            "AUTH_JWT_SECRET": "x" * 40,
        },
    )
    assert done.returncode == 2, done.stderr
    assert "  INNGEST_EVENT_KEY: prod sends events with it" in done.stderr


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"llm_base_url": "api.openai.com/v1"}, "not an http(s) URL with a host"),
        ({"llm_base_url": "https://"}, "not an http(s) URL with a host"),
        (
            {"llm_context_tokens": 4096, "llm_max_output_tokens": 3000},
            "set at most 2048",
        ),
    ],
)
def test_llm_settings_that_cannot_work_are_refused(
    overrides: dict[str, object], says: str
) -> None:
    values: dict[str, object] = {
        "app_env": "dev",
        "summarizer": "llm",
        "llm_base_url": "http://127.0.0.1:9/v1",
        "llm_model": "stand-in",
        **overrides,
    }
    found = problems(Settings(**values))  # type: ignore[arg-type]
    assert len(found) == 1, found
    assert says in str(found[0])
    # The extractive summariser reads none of them.
    values["summarizer"] = "extractive"
    assert problems(Settings(**values)) == []  # type: ignore[arg-type]


def test_llm_output_of_half_the_context_is_accepted() -> None:
    settings = Settings(
        app_env="dev",
        summarizer="llm",
        llm_base_url="https://api.example.com/v1",
        llm_model="m",
        llm_context_tokens=4096,
        llm_max_output_tokens=2048,
    )
    assert problems(settings) == []


@pytest.mark.parametrize(
    "fallback",
    [
        "signkey-prod-" + "AB" * 32,  # upper-case hex: the same bytes
        "signkey-branch-" + "ab" * 32,  # another prefix: the same key
        "ab" * 32,
    ],
)
def test_a_fallback_that_is_the_same_key_written_otherwise_is_refused(
    fallback: str,
) -> None:
    found = problems(prod(inngest_signing_key_fallback=fallback))
    assert any(
        p.setting == "INNGEST_SIGNING_KEY_FALLBACK" and "same key" in p.fix
        for p in found
    ), found


@pytest.mark.parametrize("url", ["https://", "https:///api", "https://:443"])
def test_public_url_needs_a_host(url: str) -> None:
    found = problems(prod(public_url=url))
    assert [p.setting for p in found] == ["PUBLIC_URL"]
    assert "without a host" in found[0].fix
    assert named(Settings(app_env="dev", public_url="127.0.0.1:8000")) == ["PUBLIC_URL"]


def test_the_executor_is_named_by_its_url_unless_it_is_inngest_cloud() -> None:
    assert executor_name(prod()) == "Inngest Cloud"
    own = prod(inngest_base_url="https://inngest.internal:8288/")
    assert executor_name(own) == "https://inngest.internal:8288"
    assert executor_name(Settings(app_env="dev")) == "http://127.0.0.1:8288"


async def test_a_prod_backend_logs_its_self_hosted_executor_by_url(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from backend.store import create_engine, upgrade

    database = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    engine = create_engine(database)
    await upgrade(engine)
    await engine.dispose()
    settings = prod(
        database_url=database,
        allow_sqlite_in_prod=True,
        inngest_base_url="http://127.0.0.1:9",
    )
    app = create_app(settings)
    with caplog.at_level("INFO", logger="digest.backend"):
        async with app.router.lifespan_context(app):
            pass
    ready = [r.getMessage() for r in caplog.records if "backend ready" in r.message]
    assert ready, caplog.text
    assert "executor http://127.0.0.1:9" in ready[0]
    assert "Inngest Cloud" not in ready[0]


async def test_a_stale_signature_is_said_to_be_old_not_from_now() -> None:
    from devserver.signing import sign_request

    signed = int(__import__("time").time()) - MAX_AGE_S - 700
    app = create_app(prod(allow_sqlite_in_prod=True))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        answer = await http.get(
            "/api/inngest",
            headers={"x-inngest-signature": sign_request(b"", PROD_KEY, t=signed)},
        )
    message = answer.json()["error"]["message"]
    assert " s ago " in message, message
    assert "from now" not in message


def test_config_show_names_app_env_a_default_and_the_files_it_read(
    project: Path,
) -> None:
    shown = {s.name: s for s in effective_settings(load_settings(), project)}
    # .env.dev says APP_ENV=dev too, but it is not where the value came from.
    assert shown["APP_ENV"].source == "default"
    done = _digest(project, "config", "show", env={})
    assert f"read .env.dev in {project}" in " ".join(done.stdout.split())
    document = json.loads(_digest(project, "config", "show", "--json", env={}).stdout)
    assert document["env_files"] == [str(project / ".env.dev")]


def test_config_show_and_doctor_warn_when_no_env_file_is_found(
    tmp_path: Path,
) -> None:
    done = _digest(tmp_path, "config", "show", env={})
    said = " ".join(done.stdout.split())
    assert "warning no .env.dev or .env.dev.local in" in said, said
    assert "settings come from the environment and defaults only" in said
    doctor = _digest(tmp_path, "doctor", "--json", env={})
    profile = json.loads(doctor.stdout)["checks"][0]
    assert profile["name"] == "profile"
    assert "no .env.dev or .env.dev.local in" in profile["detail"]


def test_config_show_checks_the_service_named(project: Path) -> None:
    # The README's functions service: a signing key, no event key, no
    # bearer-token secret.
    env = {"APP_ENV": "prod", "INNGEST_SIGNING_KEY": PROD_KEY}
    functions = _digest(
        project, "config", "show", "--json", "--service", "functions", env=env
    )
    assert functions.returncode == 0, functions.stdout
    assert json.loads(functions.stdout)["problems"] == []
    api = _digest(project, "config", "show", "--json", env=env)
    assert api.returncode == 1
    named_by_api = {p.split(":")[0] for p in json.loads(api.stdout)["problems"]}
    assert named_by_api == {"INNGEST_EVENT_KEY", "AUTH_JWT_SECRET"}


def test_the_executor_is_named_without_a_password() -> None:
    # Start-up logs ("backend ready … executor …") name it this way.
    settings = Settings(app_env="dev", inngest_base_url="http://u:SEKRET@127.0.0.1:1")
    assert executor_name(settings) == "http://u:***@127.0.0.1:1"


def test_a_lone_user_name_and_secret_query_parameters_are_masked(
    project: Path,
) -> None:
    # A user name with no password in an http(s) URL is a key sent as Basic
    # auth; beside a password, or as a database's role, it is a name.
    assert without_password("https://sk-abc123@host/v1") == "https://***@host/v1"
    assert without_password("https://sk-abc123:@host/v1") == "https://***:@host/v1"
    assert without_password("https://user:pw@host/v1") == "https://user:***@host/v1"
    assert without_password(" HTTPS://sk-abc123@host") == " HTTPS://***@host"
    assert without_password("postgresql://digest@db/digest") == (
        "postgresql://digest@db/digest"
    )
    assert without_password(
        "https://h/v1?api-version=2&api_key=K1&token=K2&X-Api-Key=K3&model=m"
    ) == ("https://h/v1?api-version=2&api_key=***&token=***&X-Api-Key=***&model=m")
    assert without_password("https://h/jwks?access_token=K1&apikey=K2&pwd=K3") == (
        "https://h/jwks?access_token=***&apikey=***&pwd=***"
    )
    # `digest config show`, whatever the setting.
    (project / ".env.dev.local").write_text(
        "LLM_BASE_URL=https://sk-LONEUSERKEY@127.0.0.1:9/v1\n"
        "AUTH_JWKS_URL=https://id.example.com/jwks?client_secret=QUERYSECRET1\n"
        "DATABASE_URL=postgresql://digest@db/digest?sslpassword=QUERYSECRET2"
        "&secret=QUERYSECRET3\n"
        "INNGEST_BASE_URL=http://EXECUTORKEY@127.0.0.1:9?signing_key=QUERYSECRET4\n"
    )
    settings = load_settings()
    shown = {s.name: s.value for s in effective_settings(settings, project)}
    assert shown["LLM_BASE_URL"] == "https://***@127.0.0.1:9/v1"
    assert shown["AUTH_JWKS_URL"] == "https://id.example.com/jwks?client_secret=***"
    assert shown["DATABASE_URL"].startswith("postgresql://digest@db/digest?")
    assert "sslpassword=***" in shown["DATABASE_URL"]
    assert "secret=***" in shown["DATABASE_URL"]
    assert shown["INNGEST_BASE_URL"] == "http://***@127.0.0.1:9?signing_key=***"
    for secret in ("LONEUSERKEY", "QUERYSECRET", "EXECUTORKEY"):
        assert secret not in repr(shown)
    # The start-up logs and doctor name the executor the same way.
    assert executor_name(settings) == "http://***@127.0.0.1:9?signing_key=***"


@pytest.mark.parametrize("secret", ["pa#ss", "pa?ss", "pa/ss", "p@ss", "12/34"])
def test_a_password_urllib_splits_wrongly_is_refused_and_masked(secret: str) -> None:
    url = f"https://user:{secret}@api.example.com/v1"
    found = problems(
        Settings(app_env="dev", summarizer="llm", llm_model="m", llm_base_url=url)
    )
    assert [p.setting for p in found] == ["LLM_BASE_URL"]
    assert "LLM_API_KEY" in found[0].fix
    assert secret not in str(found[0])
    assert without_password(url) == "https://user:***@api.example.com/v1"
    # Where a password is allowed, one that HTTP clients would split (all
    # but '@') is a problem too, and never shown either.
    executor = Settings(
        app_env="dev", inngest_base_url=f"http://u:{secret}@127.0.0.1:9"
    )
    assert executor_name(executor) == "http://u:***@127.0.0.1:9"
    found = problems(executor)
    assert secret not in str(found)
    if secret == "p@ss":
        assert found == []
    else:
        assert [p.setting for p in found] == ["INNGEST_BASE_URL"]
        assert "percent-encoded" in found[0].fix
    assert problems(Settings(app_env="dev", inngest_base_url=quote_url(executor))) == []


def quote_url(settings: Settings) -> str:
    """INNGEST_BASE_URL with its password percent-encoded."""
    from urllib.parse import quote

    assert settings.inngest_base_url is not None
    rest = settings.inngest_base_url.removeprefix("http://u:")
    password, _, host = rest.rpartition("@")
    return f"http://u:{quote(password, safe='')}@{host}"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("notaurl", "not a database URL"),
        ("postgresql://u@db:port/digest", "port is not a number"),
        ("mysql://root:DBSECRET@127.0.0.1/digest", "cannot use"),
        ("postgresql+psycopg://db/digest", "cannot use"),
        ("sqlite:///var/digest.db", "driver (pysqlite) cannot run"),
    ],
)
def test_a_database_url_the_store_cannot_use_is_a_problem(url: str, says: str) -> None:
    for settings in (Settings(app_env="dev", database_url=url), prod(database_url=url)):
        found = [p for p in problems(settings) if p.setting == "DATABASE_URL"]
        assert found, url
        assert says in found[0].fix
        assert "sqlite+aiosqlite:///" in found[0].fix
        assert "postgresql+asyncpg://" in found[0].fix
        assert "DBSECRET" not in str(found)
    with pytest.raises(UnsafeSettings, match="DATABASE_URL"):
        create_app(Settings(app_env="dev", database_url=url))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://digest@db/digest",
        "postgres://digest:pw@db:5432/digest",
        "postgresql+asyncpg://digest@db/digest?ssl=require",
        "postgresql:///digest",
    ],
)
def test_every_postgresql_spelling_the_store_reads_is_accepted(url: str) -> None:
    assert problems(prod(database_url=url)) == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x",
        "http://",
        "https:///v1",
        "127.0.0.1:8288",
        "http://h:port",
        "http://h:0",
    ],
)
def test_an_inngest_base_url_that_is_no_http_origin_is_a_problem(url: str) -> None:
    for service in SERVICES:
        settings = Settings(app_env="dev", inngest_base_url=url)
        found = [p for p in problems(settings, service) if p.setting != "APP_ENV"]
        assert [p.setting for p in found] == ["INNGEST_BASE_URL"], service
        assert "http://127.0.0.1:8288" in found[0].fix
        assert "Inngest Cloud" in found[0].fix
    assert named(prod(inngest_base_url=url)) == ["INNGEST_BASE_URL"]


def test_config_show_and_serve_name_an_unusable_url(project: Path) -> None:
    env = {"DATABASE_URL": "notaurl", "INNGEST_BASE_URL": "ftp://x"}
    shown = _digest(project, "config", "show", "--json", env=env)
    assert shown.returncode == 1, shown.stdout
    found = [p.split(":")[0] for p in json.loads(shown.stdout)["problems"]]
    assert found == ["DATABASE_URL", "INNGEST_BASE_URL"]
    served = _digest(project, "serve", "--port", "9", env=env)
    assert served.returncode == 2, served.stderr
    lines = served.stderr.splitlines()
    assert lines[0] == "the dev profile cannot start:"
    assert [line.strip().split(":")[0] for line in lines[1:]] == found


def test_config_show_quotes_a_bad_public_url_masked(project: Path) -> None:
    done = _digest(project, "config", "show", env={"PUBLIC_URL": "htps://u:hunter2@x"})
    assert done.returncode == 1, done.stdout
    assert "hunter2" not in done.stdout + done.stderr
    assert "PUBLIC_URL: is 'htps://u:***@x', not an http(s) URL" in done.stdout


MALFORMED_URLS = {
    "LLM_BASE_URL": [
        "htps://sk-SECRETKEY123@api.example.com/v1",
        "ftp://sk-SECRETKEY123@api.example.com/v1",
        "https:/sk-SECRETKEY123@api.example.com/v1",
        "sk-SECRETKEY123@api.example.com/v1",
        "https://api.example.com/v1#sk-SECRETKEY123",
    ],
    "DATABASE_URL": [
        "postgresql//u:SECRETKEY123@x/db",
        "notaurl:SECRETKEY123@x",
        "postgresql:/sk-SECRETKEY123@x/db",
    ],
    "PUBLIC_URL": ["ftp://sk-SECRETKEY123@x", "https://x/#SECRETKEY123"],
    "INNGEST_BASE_URL": ["htp://sk-SECRETKEY123@x", "http://x:1#SECRETKEY123"],
    "CORS_ORIGINS": ["https://u:SECRETKEY123@x", "https://sk-SECRETKEY123@x"],
}


@pytest.mark.parametrize(
    ("name", "url"),
    [(name, url) for name, urls in MALFORMED_URLS.items() for url in urls],
)
def test_a_secret_in_a_malformed_url_is_masked_in_the_table_and_problems(
    project: Path, name: str, url: str
) -> None:
    (project / ".env.dev.local").write_text(
        f"{name}={url}\nSUMMARIZER=llm\nLLM_MODEL=m\n"
    )
    settings = load_settings()
    shown = {s.name: s.value for s in effective_settings(settings, project)}
    assert "SECRETKEY123" not in shown[name]
    assert "***" in shown[name]
    found = [p for p in problems(settings, "dev") if p.setting == name]
    assert "SECRETKEY123" not in str(found)
    if "#" not in url or name == "CORS_ORIGINS":
        # Each of them is unusable, and the problem quotes it masked.
        assert found, url
        assert "***" in str(found)


def test_masking_keeps_a_database_role_and_masks_every_other_lone_user() -> None:
    assert without_password("postgresql://digest@db/digest") == (
        "postgresql://digest@db/digest"
    )
    assert without_password("postgresql//u:pw@x/db") == "postgresql//u:***@x/db"
    assert without_password("notaurl:pw@x") == "notaurl:***@x"
    assert without_password("user:pa:ss@h") == "user:***@h"
    assert without_password("ftp://key@x") == "ftp://***@x"
    assert without_password("key@api.example.com/v1") == "***@api.example.com/v1"
    assert without_password("https:/key@h/v1") == "https:/***@h/v1"
    assert without_password("https://h/v1#key") == "https://h/v1#***"
    assert without_password("https://h/v1#") == "https://h/v1#"


def test_cors_origins_are_masked_and_must_be_bare_origins() -> None:
    origins = [
        "https://u:SECRETKEY123@app.example.com",
        "https://app.example.com/",
        "app.example.com",
        "https://app.example.com:99999",
    ]
    found = [p for p in problems(prod(cors_origins=origins)) if p.setting != "x"]
    assert [p.setting for p in found] == ["CORS_ORIGINS"] * 4
    assert "user name or password" in found[0].fix
    assert "'https://u:***@app.example.com'" in found[0].fix
    assert "SECRETKEY123" not in str(found)
    good = ["https://app.example.com", "http://127.0.0.1:5173", "http://[::1]:3000"]
    assert problems(prod(cors_origins=good)) == []
    assert named(Settings(app_env="dev", cors_origins=["*", *good])) == []


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("LLM_BASE_URL", "https://api.example.com:99999/v1"),
        ("INNGEST_BASE_URL", "http://127.0.0.1:70000"),
        ("PUBLIC_URL", "http://127.0.0.1:0"),
    ],
)
def test_a_port_out_of_range_is_named_as_such(name: str, url: str) -> None:
    settings = Settings(
        app_env="dev", summarizer="llm", llm_model="m", **{name.lower(): url}
    )
    found = [p for p in problems(settings) if p.setting == name]
    assert len(found) == 1
    assert "out of range (1-65535)" in found[0].fix
    assert "not an http(s) URL" not in found[0].fix
    # In prod, PUBLIC_URL says so too, beside "https".
    https = prod(public_url="https://api.example.com:99999")
    found = [p for p in problems(https) if p.setting == "PUBLIC_URL"]
    assert len(found) == 1
    assert "out of range (1-65535)" in found[0].fix


def test_a_dotenv_file_that_is_not_utf8_is_one_line_naming_it(project: Path) -> None:
    local = project / ".env.dev.local"
    local.write_bytes(b"CHUNK_CHARS=4000\nNGROK_AUTHTOKEN=\xff\xfeX\n")
    says = (
        ".env.dev.local is not UTF-8 text (byte 0xff at position 33); save it as UTF-8"
    )
    for command in (["config", "show"], ["serve", "--port", "9"]):
        done = _digest(project, *command, env={})
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == says, done.stderr
    as_json = _digest(project, "config", "show", "--json", env={})
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["checks"][0]["detail"] == says
