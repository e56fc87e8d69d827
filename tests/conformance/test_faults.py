"""Bad input and faulty apps: refused with a clear reason, nothing else
changes, failed attempts are retried per policy and the executor keeps
serving everything else."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devserver.testing import event_runs, wait_for_run, wait_until
from tests.conformance.conftest import App, Executor, serve_app

FAKE_APP = "faults-fake"


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("faults", executor, tmp_path_factory.mktemp("faults"))
    yield served
    served.process.stop()


def _fake_function(app: App, mode: str, retries: int) -> dict[str, Any]:
    fn_id = f"{FAKE_APP}-{mode}"
    url = f"{app.process.url}/fake/{mode}?fnId={fn_id}&stepId=step"
    return {
        "id": fn_id,
        "name": mode,
        "triggers": [{"event": f"faults/{mode}"}],
        "steps": {
            "step": {
                "id": "step",
                "name": "step",
                "runtime": {"type": "http", "url": url},
                "retries": {"attempts": retries},
            }
        },
    }


def _register_fakes(app: App, executor_url: str, retries: dict[str, int]) -> None:
    payload = {
        "appname": FAKE_APP,
        "url": f"{app.process.url}/fake",
        "framework": "test",
        "sdk": "py:v0.0.0",
        "v": "0.1",
        "functions": [_fake_function(app, m, r) for m, r in retries.items()],
    }
    answer = httpx.post(f"{executor_url}/fn/register", json=payload, timeout=10)
    assert answer.status_code == 200, answer.text


def _calls(app: App, mode: str, run_id: str) -> int:
    found: dict[str, int] = httpx.get(f"{app.process.url}/fake/calls/{mode}").json()
    return found.get(run_id, 0)


def _still_healthy(app: App) -> None:
    assert httpx.get(f"{app.executor.url}/health").status_code == 200
    run = wait_for_run(app.executor.url, app.send("faults/healthy", {}))
    assert run["output"] == "still fine"


@pytest.mark.parametrize(
    ("mode", "error_name", "reason"),
    [
        ("html", "NotAnSDKError", "x-inngest-sdk"),
        ("badjson", "InvalidResponseError", "not JSON"),
        ("opcode", "InvalidResponseError", "Teleport"),
        ("5xx", "InvalidResponseError", "HTTP 502"),
    ],
)
def test_broken_answers_are_failed_attempts_retried_per_policy(
    app: App, mode: str, error_name: str, reason: str
) -> None:
    _register_fakes(app, app.executor.url, {mode: 2})
    run = wait_for_run(app.executor.url, app.send(f"faults/{mode}", {}))
    # Never a success: three attempts (retries=2), then the run fails with
    # the reason of the last one.
    assert run["status"] == "Failed", run
    assert run["output"]["name"] == error_name
    assert reason in run["output"]["message"]
    assert run["last_error"]["name"] == error_name
    assert _calls(app, mode, run["run_id"]) == 3
    _still_healthy(app)


def test_429_waits_as_asked_without_spending_an_attempt(app: App) -> None:
    _register_fakes(app, app.executor.url, {"ratelimited": 0})
    sent = time.monotonic()
    run = wait_for_run(app.executor.url, app.send("faults/ratelimited", {}))
    assert run["status"] == "Completed", run
    assert run["output"] == {"hits": 2}
    assert time.monotonic() - sent >= 1.0  # Retry-After: 1


def test_404_marks_the_app_unreachable_and_keeps_the_run_queued(app: App) -> None:
    _register_fakes(app, app.executor.url, {"gone": 0})
    event_id = app.send("faults/gone", {})

    def unreachable() -> dict[str, Any] | None:
        apps = httpx.get(f"{app.executor.url}/v1/apps").json()["data"]
        fake = next(a for a in apps if a["name"] == FAKE_APP)
        return fake if fake["reachable"] is False else None

    fake = wait_until(unreachable, 10, "the app to show as unreachable")
    assert "404" in fake["error"]
    (running,) = event_runs(app.executor.url, event_id)
    assert running["status"] in ("Queued", "Running")
    # retries=0, yet the run is not failed: it completes once the URL answers.
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Completed", run
    assert run["output"] == {"hits": 4}


def test_call_timeout_is_a_failed_attempt(
    app: App, own_executor: Callable[..., Executor]
) -> None:
    executor = own_executor("--call-timeout", "1")
    _register_fakes(app, executor.url, {"slow": 1})
    event_id = httpx.post(
        f"{executor.url}/e/key", json=[{"name": "faults/slow", "data": {}}]
    ).json()["ids"][0]
    time.sleep(0.5)
    started = time.monotonic()
    assert httpx.get(f"{executor.url}/health", timeout=2).status_code == 200
    assert time.monotonic() - started < 1
    run = wait_for_run(executor.url, event_id)
    assert run["status"] == "Failed", run
    assert run["output"]["name"] == "TimeoutError"
    assert "1 s" in run["output"]["message"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (json.dumps([{"data": {}}]).encode(), "name"),
        (json.dumps([{"name": "faults/bad", "data": [1, 2]}]).encode(), "data"),
        (json.dumps([{"name": "inngest/function.failed"}]).encode(), "reserved"),
        (
            json.dumps([{"name": "faults/bad", "data": {"x": "y" * 600_000}}]).encode(),
            "limit",
        ),
        (
            json.dumps([{"name": "faults/bad", "data": {}}, {"name": ""}]).encode(),
            "name",
        ),
    ],
    ids=["invalid-json", "no-name", "data-list", "reserved", "too-large", "mixed"],
)
def test_malformed_events_are_refused_and_nothing_is_stored(
    app: App, body: bytes, reason: str
) -> None:
    answer = httpx.post(f"{app.executor.url}/e/key", content=body)
    assert answer.status_code == 400
    assert reason in answer.json()["error"]
    stored = httpx.get(f"{app.executor.url}/v1/events", params={"name": "faults/bad"})
    assert stored.json()["data"] == []


def test_malformed_sync_is_refused_and_changes_nothing(app: App) -> None:
    def functions() -> list[str]:
        apps = httpx.get(f"{app.executor.url}/v1/apps").json()["data"]
        found = next(a for a in apps if a["name"] == "faults")
        return sorted(f["slug"] for f in found["functions"])

    before = functions()
    assert before == ["faults-healthy"]
    bad = {"appname": "faults", "url": app.serve_url, "functions": [{"id": "x"}]}
    answer = httpx.post(f"{app.executor.url}/fn/register", json=bad)
    assert answer.status_code == 400
    assert "runtime" in answer.json()["error"]
    assert functions() == before
    _still_healthy(app)


def test_unknown_ids_are_refused_clearly(app: App) -> None:
    unknown_run = httpx.get(f"{app.executor.url}/v1/runs/01J00000000000000000000000")
    assert unknown_run.status_code == 404
    assert "not found" in unknown_run.json()["error"]
    bad_id = httpx.get(f"{app.executor.url}/v1/events/not-an-id/runs")
    assert bad_id.status_code == 400
    assert "invalid" in bad_id.json()["error"]
