"""`digest doctor` against a running local stack and against broken
profiles: every check passes on the first, each failing check shows its fix
on the others, and nothing is changed."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest import stack
from digest.doctor import Check, Doctor, diagnose
from digest.profile import Service as ServiceName
from digest.settings import Settings
from digest.stack import Service
from tests.conftest import Stack
from tests.prod_functions import migrated_sqlite, new_prod_key, start_prod_functions

ROOT = Path(__file__).resolve().parent.parent


def local(running: Stack, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "app_env": "dev",
        "inngest_dev": "1",
        "inngest_base_url": running.executor.url,
        "inngest_event_key": "any-dev-key",
        "database_url": f"sqlite+aiosqlite:///{running.home / 'digest.db'}",
        "public_url": running.backend.url,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_a_backend_serving_no_functions_leaves_sync_to_the_functions_service(
    digest_stack: Stack,
) -> None:
    """Two services: the executor calls the functions service, so the API's
    own URL being unsynced is right, not a failure."""
    checks = by_name(diagnose(local(digest_stack, serve_functions=False)))
    for name in ("sync", "serve endpoint"):
        assert checks[name].status == "skip", checks[name]
        assert "--service functions" in checks[name].detail
    assert all(check.status != "fail" for check in checks.values()), checks


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_all_checks_pass_on_a_running_stack(digest_stack: Stack) -> None:
    events_before = digest_stack.executor_get("/v1/events")
    checks = diagnose(local(digest_stack))
    assert [(c.name, c.status) for c in checks] == [
        ("profile", "ok"),
        ("database", "ok"),
        ("executor", "ok"),
        ("sync", "ok"),
        ("serve endpoint", "ok"),
        ("event key", "ok"),
    ], checks
    assert f"{digest_stack.backend.url}/api/inngest" in by_name(checks)["sync"].detail
    # Counted as the executor counts them: each failure handler is a function.
    listed = httpx.get(digest_stack.executor.url + "/dev", timeout=10).json()
    slugs = [function["slug"] for function in listed["functions"]]
    handlers = sum(slug.endswith("-failure") for slug in slugs)
    assert handlers >= 1
    served = f"serves {len(slugs) - handlers} functions (+{handlers} failure handler"
    assert served in by_name(checks)["serve endpoint"].detail, checks
    # The event key check sent an empty batch: no event was recorded.
    events_after = digest_stack.executor_get("/v1/events")
    assert events_after == events_before


def test_each_broken_setting_fails_its_check_with_the_fix(
    digest_stack: Stack, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{stack.free_port()}"
    missing_db = tmp_path / "nowhere.db"
    cases: dict[str, tuple[dict[str, object], str, str]] = {
        "profile": (
            {"inngest_signing_key": "signkey-prod-" + "ab" * 32},
            "1 problem(s) in the dev profile",
            "INNGEST_SIGNING_KEY: (sha256:",
        ),
        "database": (
            {"database_url": f"sqlite+aiosqlite:///{missing_db}"},
            "no SQLite file",
            "digest db upgrade",
        ),
        "executor": ({"inngest_base_url": dead}, "does not answer", "digest dev"),
        "sync": ({"public_url": dead}, "not " + dead, "curl -X PUT " + dead),
        "serve endpoint": (
            {"public_url": dead, "inngest_base_url": dead},
            "does not answer",
            "digest serve",
        ),
    }
    for name, (overrides, detail, fix) in cases.items():
        check = by_name(diagnose(local(digest_stack, **overrides)))[name]
        assert check.status == "fail", (name, check)
        assert detail in check.detail, (name, check)
        assert check.fix is not None
        assert fix in check.fix, (name, check)
    # Looking changed nothing: the SQLite file was not created.
    assert not missing_db.exists()


def test_an_unmigrated_database_fails_without_being_migrated(
    digest_stack: Stack, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    check = by_name(
        diagnose(local(digest_stack, database_url=f"sqlite+aiosqlite:///{empty}"))
    )["database"]
    assert check.status == "fail"
    assert "revision none" in check.detail
    assert check.fix == "run `digest db upgrade`"
    assert empty.stat().st_size == 0


def test_doctor_command_json_and_exit_code(digest_stack: Stack, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    settings = local(digest_stack)
    env = {
        **clean,
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "dev",
        "INNGEST_DEV": "1",
        "INNGEST_BASE_URL": digest_stack.executor.url,
        "DATABASE_URL": settings.database_url,
        "PUBLIC_URL": digest_stack.backend.url,
    }

    def doctor(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "digest.cli", "doctor", *args],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    passed = doctor("--json")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert json.loads(passed.stdout)["ok"] is True
    failed = doctor("--json", INNGEST_BASE_URL=f"http://127.0.0.1:{stack.free_port()}")
    assert failed.returncode == 1
    document = json.loads(failed.stdout)
    assert {c["name"] for c in document["checks"] if c["status"] == "fail"} >= {
        "executor",
        "sync",
    }
    plain = doctor(PUBLIC_URL="http://127.0.0.1:9")
    assert plain.returncode == 1
    assert "fail sync" in " ".join(plain.stdout.split())
    assert "fix: sync it: curl -X PUT http://127.0.0.1:9/api/inngest" in plain.stdout


@pytest.mark.parametrize("answer", [401, 403])
def test_cloud_refusals_are_named_inngest_cloud_mocked(answer: int) -> None:
    """Inngest Cloud's APIs, stood in for: a refused signing key and event key."""
    seen: list[str] = []

    def inngest_cloud(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.copy_with(query=None)))
        return httpx.Response(answer, json={"error": "unauthorized"})

    settings = Settings(
        app_env="prod",
        inngest_event_key="prod-event-key",
        inngest_signing_key="signkey-prod-" + "ab" * 32,
        database_url="sqlite+aiosqlite:///:memory:",
        allow_sqlite_in_prod=True,
        public_url="https://127.0.0.1:9",
        auth_jwt_secret="x" * 40,
    )
    checks = by_name(diagnose(settings, transport=httpx.MockTransport(inngest_cloud)))
    assert checks["executor"].status == "fail"
    assert "Inngest Cloud refused signing key sha256:" in checks["executor"].detail
    assert checks["sync"].status == "skip"
    assert checks["event key"].status == "fail"
    assert "https://api.inngest.com/v1/events" in seen
    assert any(url.startswith("https://inn.gs/e/") for url in seen)


def test_an_answer_that_is_no_event_api_fails_the_event_key_check(
    digest_stack: Stack,
) -> None:
    # The backend at INNGEST_BASE_URL: it answers, but not as an event API.
    checks = by_name(
        diagnose(local(digest_stack, inngest_base_url=digest_stack.backend.url))
    )
    check = checks["event key"]
    assert check.status == "fail", check
    assert check.detail.startswith(
        f"no Inngest event API at {digest_stack.backend.url} (answered 4"
    ), check
    assert check.fix is not None
    assert "INNGEST_BASE_URL" in check.fix


def _cloud(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "app_env": "prod",
        "inngest_event_key": "prod-event-key",
        "inngest_signing_key": "signkey-prod-" + "ab" * 32,
        "database_url": "sqlite+aiosqlite:///:memory:",
        "allow_sqlite_in_prod": True,
        "public_url": "https://127.0.0.1:9",
        "auth_jwt_secret": "x" * 40,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, {"ids": [], "status": 200}, "ok"),
        (400, {"ids": [], "status": 400, "error": "no events"}, "ok"),
        (400, {"detail": "bad request"}, "fail"),
        (404, {"detail": "Not Found"}, "fail"),
        (500, {"error": "boom"}, "fail"),
        (502, None, "fail"),
    ],
)
def test_event_key_needs_an_event_apis_answer_inngest_cloud_mocked(
    status: int, body: object, verdict: str
) -> None:
    """Inngest Cloud's event API, stood in for: only a 2xx, or its own
    refusal of the empty batch, means the key was accepted."""

    def inngest_cloud(request: httpx.Request) -> httpx.Response:
        if request.url.host == "inn.gs":
            if body is None:
                return httpx.Response(status, text="<html>bad gateway</html>")
            return httpx.Response(status, json=body)
        return httpx.Response(200, json={"data": []})

    checks = by_name(diagnose(_cloud(), transport=httpx.MockTransport(inngest_cloud)))
    check = checks["event key"]
    assert check.status == verdict, check
    if verdict == "fail":
        assert (
            check.detail
            == f"no Inngest event API at https://inn.gs (answered {status})"
        )


def test_inngest_cloud_without_a_signing_key_is_not_said_to_answer_mocked() -> None:
    """Inngest Cloud stood in for: with no key, it is not asked, and the
    check says so instead of passing."""
    seen: list[str] = []

    def inngest_cloud(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"data": []})

    settings = _cloud(inngest_signing_key=None)
    check = by_name(diagnose(settings, transport=httpx.MockTransport(inngest_cloud)))[
        "executor"
    ]
    assert check.status == "fail", check
    assert "not asked" in check.detail
    assert check.fix is not None
    assert "INNGEST_SIGNING_KEY" in check.fix
    assert not any("api.inngest.com" in url for url in seen)


@pytest.fixture(scope="module")
def prod_functions(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Service, str]]:
    """The functions service in prod, started as the README sets it up,
    and its signing key."""
    key = new_prod_key()
    service = start_prod_functions(tmp_path_factory.mktemp("prod-fn"), key)
    yield service, key
    service.stop()


def test_a_signing_key_the_app_refuses_is_named_as_the_fix(
    prod_functions: tuple[Service, str],
) -> None:
    # It started in prod with no event key and no bearer-token secret: the
    # functions service uses neither.
    settings = _cloud(
        inngest_serve_origin=prod_functions[0].url,
        inngest_base_url=f"http://127.0.0.1:{stack.free_port()}",
        inngest_signing_key=new_prod_key(),
    )
    checks = by_name(diagnose(settings, service="functions"))
    check = checks["serve endpoint"]
    assert check.status == "fail", check
    assert "answered 401 to a call signed with signing key sha256:" in check.detail
    assert check.fix is not None
    assert "same INNGEST_SIGNING_KEY" in check.fix
    assert "PUBLIC_URL" not in check.fix
    assert checks["event key"].status == "skip"
    assert checks["profile"].status == "ok", checks["profile"]


def test_the_functions_service_is_checked_at_inngest_serve_origin(
    prod_functions: tuple[Service, str],
) -> None:
    """PUBLIC_URL is the API's: the functions service is reached at
    INNGEST_SERVE_ORIGIN, and the fix names the command that starts it."""
    service, key = prod_functions
    api = f"http://127.0.0.1:{stack.free_port()}"
    executor = f"http://127.0.0.1:{stack.free_port()}"
    settings = _cloud(
        public_url=api,
        inngest_serve_origin=service.url,
        inngest_base_url=executor,
        inngest_signing_key=key,
    )
    check = by_name(diagnose(settings, service="functions"))["serve endpoint"]
    assert check.status == "ok", check
    assert check.detail.startswith(f"{service.url}/api/inngest serves "), check

    gone = f"http://127.0.0.1:{stack.free_port()}"
    moved = settings.model_copy(update={"inngest_serve_origin": gone})
    check = by_name(diagnose(moved, service="functions"))["serve endpoint"]
    assert check.status == "fail", check
    assert check.detail.startswith(f"{gone}/api/inngest does not answer"), check
    assert check.fix is not None
    assert "`digest functions serve`" in check.fix
    assert "digest serve`" not in check.fix.replace("functions serve", "")
    assert api not in check.detail

    unset = settings.model_copy(update={"inngest_serve_origin": None})
    check = by_name(diagnose(unset, service="functions"))["serve endpoint"]
    assert check.status == "skip", check
    assert "INNGEST_SERVE_ORIGIN is unset" in check.detail


def test_prod_beside_an_unsigned_dev_executor_fails(
    digest_stack: Stack, prod_functions: tuple[Service, str]
) -> None:
    """The prod app refuses every unsigned call: no job would ever run."""
    service, key = prod_functions
    settings = _cloud(
        inngest_serve_origin=service.url,
        inngest_base_url=digest_stack.executor.url,
        inngest_signing_key=key,
    )
    check = by_name(diagnose(settings, service="functions"))["executor"]
    assert check.status == "fail", check
    assert "unsigned dev server" in check.detail
    assert check.fix is not None
    assert "INNGEST_BASE_URL" in check.fix


@pytest.mark.parametrize("service", ["api", "dev"])
def test_a_signing_key_beside_an_unsigned_dev_executor_is_not_used(
    digest_stack: Stack, service: ServiceName
) -> None:
    """`digest dev`'s executor runs unsigned on purpose, whatever key the
    profile has: neither it nor the dev-mode app is said to hold the key."""
    key = "signkey-test-" + "cd" * 32
    checks = by_name(
        diagnose(local(digest_stack, inngest_signing_key=key), service=service)
    )
    for name in ("executor", "serve endpoint"):
        check = checks[name]
        assert check.status == "ok", check
        assert "the executor is an unsigned dev server; the key is not used" in (
            check.detail
        ), check
        assert "accepts signing key" not in check.detail, check
    assert not [c for c in checks.values() if c.status == "fail"], checks


def test_doctor_json_with_an_unreadable_setting_is_json(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")},
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "dev",
        "RECONCILE_AFTER_SECONDS": "-5",
    }
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "doctor", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done
    document = json.loads(done.stdout)
    assert document["ok"] is False
    [check] = document["checks"]
    assert check["name"] == "settings"
    assert check["status"] == "fail"
    assert check["detail"].startswith("setting RECONCILE_AFTER_SECONDS is invalid:")
    assert "RECONCILE_AFTER_SECONDS" in check["fix"]
    assert "-5" not in done.stdout


def test_a_database_newer_than_the_code_says_the_code_is_older(
    digest_stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "newer.db"
    url = migrated_sqlite(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
    check = by_name(diagnose(local(digest_stack, database_url=url)))["database"]
    assert check.status == "fail", check
    assert "f00dfeedbeef" in check.detail
    assert check.fix is not None
    assert "the code is older than the database" in check.fix
    assert "revision f00dfeedbeef" in check.fix
    assert "run `digest db upgrade`" not in check.fix


def test_doctor_reads_a_wal_mode_sqlite_file_without_making_wal_files(
    digest_stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "wal.db"
    url = migrated_sqlite(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Closed by its last connection: everything is in the file itself.
    assert not Path(f"{path}-wal").exists()
    check = by_name(diagnose(local(digest_stack, database_url=url)))["database"]
    assert check.status == "ok", check
    assert not Path(f"{path}-wal").exists()
    assert not Path(f"{path}-shm").exists()


def test_a_password_in_inngest_base_url_is_never_shown(
    digest_stack: Stack, tmp_path: Path
) -> None:
    with_password = digest_stack.executor.url.replace("http://", "http://u:SEKRET@")
    settings = local(digest_stack, inngest_base_url=with_password)
    checks = diagnose(settings)
    assert by_name(checks)["executor"].status == "ok", checks
    assert "SEKRET" not in repr(checks)
    assert "u:***@" in by_name(checks)["executor"].detail
    down = local(
        digest_stack,
        inngest_base_url=f"http://u:SEKRET@127.0.0.1:{stack.free_port()}",
    )
    assert "SEKRET" not in repr(diagnose(down))


def test_a_password_in_public_url_is_never_shown(
    digest_stack: Stack, tmp_path: Path
) -> None:
    with_password = digest_stack.backend.url.replace("http://", "http://admin:PUBPASS@")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "doctor", "--json"],
        cwd=tmp_path,
        env={
            **clean,
            "PYTHONPATH": str(ROOT),
            "APP_ENV": "dev",
            "INNGEST_DEV": "1",
            "INNGEST_BASE_URL": digest_stack.executor.url,
            "DATABASE_URL": local(digest_stack).database_url,
            "PUBLIC_URL": with_password,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert "PUBPASS" not in done.stdout + done.stderr
    # The executor calls the URL without the password: the sync check says
    # where PUBLIC_URL points instead, masked, in its detail and its fix.
    assert checks["sync"]["status"] == "fail", checks
    assert "admin:***@" in checks["sync"]["detail"]
    assert "curl -X PUT http://admin:***@" in checks["sync"]["fix"]
    # A serve endpoint reached at a URL with a password (the executor's, or
    # PUBLIC_URL's) is named without it.
    with httpx.Client(timeout=10) as http:
        doctor = Doctor(local(digest_stack, public_url=with_password), http)
        served = doctor.serve_endpoint(f"{with_password}/api/inngest")
    assert served.status == "ok", served
    assert "PUBPASS" not in repr(served)
    assert served.detail.startswith("http://admin:***@")


@pytest.mark.parametrize(
    "database_url",
    ["sqlite:///x.db", "notaurl", "mysql://root:DBSECRET@127.0.0.1/digest"],
)
def test_checks_that_need_a_setting_the_profile_refuses_say_fix_it_first(
    database_url: str,
) -> None:
    """With an INNGEST_BASE_URL or DATABASE_URL the profile names a problem
    with, the checks that use it give no advice about anything else."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(503)

    settings = Settings(
        app_env="dev",
        inngest_base_url="ftp://x",
        inngest_event_key="any-dev-key",
        database_url=database_url,
    )
    checks = by_name(diagnose(settings, transport=httpx.MockTransport(answer)))
    assert checks["profile"].status == "fail"
    assert "INNGEST_BASE_URL" in (checks["profile"].fix or "")
    assert "DATABASE_URL" in (checks["profile"].fix or "")
    for name, setting in (
        ("database", "DATABASE_URL"),
        ("executor", "INNGEST_BASE_URL"),
        ("sync", "INNGEST_BASE_URL"),
        ("event key", "INNGEST_BASE_URL"),
    ):
        assert checks[name].status == "fail", checks[name]
        assert checks[name].fix == f"fix {setting} first (see the profile check)"
    shown = json.dumps([check.__dict__ for check in checks.values()])
    for wrong in ("digest dev", "db upgrade", "unreachable", "DBSECRET"):
        assert wrong not in shown, wrong
    assert not any(url.startswith("ftp:") for url in asked)
