"""The whole stack in the prod profile: the embedded executor in cloud mode
with real signing keys, the backend with APP_ENV=prod and its secrets from
the environment (SQLite through ALLOW_SQLITE_IN_PROD, on one host).

A job succeeds; forged, stale and unsigned calls to /api/inngest are
refused; rotating to a new key with the old one as fallback (executor first,
then backend, each restarted) lets a run in flight finish.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr

from backend.store import create_engine, upgrade
from devserver.signing import sign_request
from devserver.testing import wait_for_functions
from digest import stack
from digest.doctor import diagnose
from digest.settings import Settings
from tests.conftest import CORPUS, TERMINAL, Stack

EVENT_KEY = "prod-event-" + secrets.token_hex(8)
JWT_SECRET = secrets.token_hex(32)
FUNCTION = "digest-generate-summary"
# The first two attempts of `combine` fail, 2 s apart: a run stays in
# flight long enough to rotate the keys under it.
FAULTS = "combine=2"
RETRY = ["--retry-interval", "2"]


def new_key() -> str:
    return "signkey-prod-" + secrets.token_hex(32)


@dataclass
class ProdStack:
    home: Path
    executor_port: int = field(default_factory=stack.free_port)
    backend_port: int = field(default_factory=stack.free_port)
    executor: stack.Service | None = None
    backend: stack.Service | None = None

    @property
    def backend_url(self) -> str:
        return f"http://{stack.LOOPBACK}:{self.backend_port}"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.home / 'digest.db'}"

    def start_executor(self, key: str, fallback: str | None = None) -> None:
        args = ["--signing-key", key, "--event-key", EVENT_KEY, *RETRY]
        if fallback:
            args += ["--signing-key-fallback", fallback]
        self.executor = stack.start_executor(
            self.home / "executor",
            port=self.executor_port,
            sdk_urls=[f"{self.backend_url}/api/inngest"],
            extra_args=args,
        )

    def backend_env(self, key: str, fallback: str | None) -> dict[str, str]:
        return {
            "APP_ENV": "prod",
            "INNGEST_DEV": "",
            "INNGEST_SIGNING_KEY": key,
            "INNGEST_SIGNING_KEY_FALLBACK": fallback or "",
            "INNGEST_EVENT_KEY": EVENT_KEY,
            "AUTH_JWT_SECRET": JWT_SECRET,
            "ALLOW_SQLITE_IN_PROD": "true",
            "PUBLIC_URL": "https://digest.example.test",
            "CORS_ORIGINS": "https://app.example.test",
            # Where the executor calls: the SDK registers this origin.
            "INNGEST_SERVE_ORIGIN": self.backend_url,
            "DIGEST_FAULTS": FAULTS,
        }

    def start_backend(self, key: str, fallback: str | None = None) -> None:
        assert self.executor is not None
        self.backend = stack.start_backend(
            executor_url=self.executor.url,
            database_url=self.database_url,
            log_path=self.home / "backend.log",
            port=self.backend_port,
            env=self.backend_env(key, fallback),
        )
        wait_for_functions(self.executor.url, [FUNCTION], timeout=60)

    def stop(self) -> None:
        for service in (self.backend, self.executor):
            if service is not None:
                service.stop()

    def client(self) -> Stack:
        """The test suite's job helpers, with a prod token (JWT_SECRET)."""
        assert self.executor is not None
        assert self.backend is not None
        now = int(time.time())
        token = jwt.encode(
            {"sub": "prod-user", "iat": now, "exp": now + 3600},
            JWT_SECRET,
            algorithm="HS256",
        )
        return Stack(self.executor, self.backend, self.home, _token=token)

    def submit(self) -> str:
        return self.client().submit((CORPUS / "pep-0020.rst").read_text())

    def job(self, job_id: str) -> dict[str, Any]:
        return self.client().job(job_id)

    def wait(self, job_id: str) -> dict[str, Any]:
        return self.client().wait(job_id, timeout=120)


@pytest.fixture
def prod_stack(tmp_path: Path) -> Iterator[ProdStack]:
    running = ProdStack(tmp_path)

    async def migrate() -> None:
        # Prod never migrates on start: the release step does it first.
        engine = create_engine(running.database_url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    yield running
    running.stop()


def call_serve_endpoint(url: str, signature: str | None) -> httpx.Response:
    body = json.dumps({"event": {"name": "summary/requested", "data": {}}}).encode()
    headers = {"content-type": "application/json", "x-inngest-server-kind": "cloud"}
    if signature is not None:
        headers["x-inngest-signature"] = signature
    return httpx.post(
        f"{url}/api/inngest",
        params={"fnId": FUNCTION, "stepId": "step"},
        content=body,
        headers=headers,
        timeout=30,
    )


def forged_calls(key: str) -> dict[str, str | None]:
    body = json.dumps({"event": {"name": "summary/requested", "data": {}}}).encode()
    now = int(time.time())
    return {
        "unsigned": None,
        "forged": f"t={now}&s={secrets.token_hex(32)}",
        "another key": sign_request(body, new_key(), t=now),
        "stale": sign_request(body, key, t=now - 3600),
    }


def test_prod_profile_end_to_end_with_rotation(prod_stack: ProdStack) -> None:
    old, new = new_key(), new_key()
    prod_stack.start_executor(old)
    prod_stack.start_backend(old)
    assert prod_stack.executor is not None
    health = httpx.get(prod_stack.executor.url + "/health", timeout=10)
    assert health.headers["x-inngest-server-kind"] == "cloud"

    # The job succeeds with signed calls both ways.
    first = prod_stack.wait(prod_stack.submit())
    assert first["status"] == "succeeded", first

    # Calls that do not prove the key, or prove it too late, are refused
    # before any step runs.
    statuses = {
        why: call_serve_endpoint(prod_stack.backend_url, signature).status_code
        for why, signature in forged_calls(old).items()
    }
    assert statuses == {
        "unsigned": 401,
        "forged": 401,
        "another key": 401,
        "stale": 401,
    }

    # doctor, in the same prod profile, finds nothing wrong.
    settings = Settings(
        app_env="prod",
        inngest_base_url=prod_stack.executor.url,
        inngest_signing_key=old,
        inngest_event_key=EVENT_KEY,
        auth_jwt_secret=JWT_SECRET,
        database_url=prod_stack.database_url,
        allow_sqlite_in_prod=True,
        public_url="https://digest.example.test",
        inngest_serve_origin=prod_stack.backend_url,
    )
    checks = diagnose(settings)
    assert [c.status for c in checks] == ["ok"] * 6, checks
    wrong = diagnose(
        settings.model_copy(
            update={
                "inngest_signing_key": SecretStr(new),
                "inngest_event_key": SecretStr("nope"),
            }
        )
    )
    failed = {c.name for c in wrong if c.status == "fail"}
    assert failed == {"executor", "serve endpoint", "event key"}, wrong

    # Rotation with a run in flight: its `combine` step is failing and will
    # be retried under the new keys.
    in_flight = prod_stack.submit()
    deadline = time.monotonic() + 60
    while prod_stack.job(in_flight)["progress"]["done"] < 2:
        assert time.monotonic() < deadline, prod_stack.job(in_flight)
        time.sleep(0.1)
    assert prod_stack.job(in_flight)["status"] not in TERMINAL
    assert prod_stack.backend is not None
    prod_stack.executor.stop()
    prod_stack.start_executor(new, fallback=old)
    prod_stack.backend.stop()
    prod_stack.start_backend(new, fallback=old)
    finished = prod_stack.wait(in_flight)
    assert finished["status"] == "succeeded", finished
    assert prod_stack.wait(prod_stack.submit())["status"] == "succeeded"

    # After the rotation the retired key's signatures still pass as the
    # fallback, and a key that was never ours does not.
    body = json.dumps({"event": {"name": "summary/requested", "data": {}}}).encode()
    refused = call_serve_endpoint(prod_stack.backend_url, sign_request(body, new_key()))
    assert refused.status_code == 401

    # No secret reached a log or /readyz.
    ready = httpx.get(prod_stack.backend_url + "/readyz", timeout=10)
    texts = [ready.text, prod_stack.backend.log_tail(10_000)]
    texts.append(prod_stack.executor.log_tail(10_000))
    for text in texts:
        for secret in (old[13:], new[13:], EVENT_KEY, JWT_SECRET):
            assert secret not in text
    assert ready.json()["profile"] == "prod"
