"""`digest doctor` against a running local stack and against broken
profiles: every check passes on the first, each failing check shows its fix
on the others, and nothing is changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from digest import stack
from digest.doctor import Check, diagnose
from digest.settings import Settings
from tests.conftest import Stack

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
