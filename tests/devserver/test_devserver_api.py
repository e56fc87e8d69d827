"""The event API, registration and REST routes, checked over HTTP."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from devserver_stack import Stack

from devserver.testing import (
    get_json,
    registered_functions,
    wait_for_run,
    wait_until,
)

NewKey = Callable[[], str]


def _events_named(stack: Stack, name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = get_json(f"{stack.url}/v1/events?name={name}")
    return events


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"data": {}}', "name is required"),
        (b'{"name": "", "data": {}}', "name is required"),
        (b'{"name": 5}', "name is required"),
        (b'{"name": "test/bad", "data": [1, 2]}', "data must be a JSON object"),
        (b'{"name": "test/bad", "data": "text"}', "data must be a JSON object"),
        (b'{"name": "inngest/function.failed", "data": {}}', "reserved"),
        (b'{"name": "test/bad", "ts": 1.5}', "ts must be an integer"),
        (b'[{"name": "test/bad-batch"}, {"data": {}}]', "event 1"),
    ],
)
def test_bad_events_are_refused_and_not_stored(
    shared_stack: Stack, body: bytes, reason: str
) -> None:
    response = httpx.post(
        f"{shared_stack.url}/e/key",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    payload = response.json()
    assert payload["ids"] == []
    assert payload["status"] == 400
    assert reason in payload["error"]
    assert _events_named(shared_stack, "test/bad") == []
    assert _events_named(shared_stack, "test/bad-batch") == []


def test_events_get_ids_ts_and_id(shared_stack: Stack) -> None:
    before = int(time.time() * 1000)
    response = httpx.post(
        f"{shared_stack.url}/e/key",
        json=[
            {"name": "test/plain", "data": {"n": 1, "_inngest": {"x": 1}}},
            {"name": "test/plain", "id": "mine", "ts": 123},
        ],
    )
    assert response.status_code == 200
    assert response.headers["x-inngest-server-kind"] == "dev"
    ids = response.json()["ids"]
    assert response.json()["status"] == 200
    assert len(ids) == 2
    first = get_json(f"{shared_stack.url}/v1/events/{ids[0]}")
    assert first["internal_id"] == ids[0]
    assert first["id"] == ids[0]
    assert first["data"] == {"n": 1}
    assert first["ts"] >= before
    second = get_json(f"{shared_stack.url}/v1/events/{ids[1]}")
    assert (second["id"], second["ts"], second["data"]) == ("mine", 123, {})


def test_single_event_object_is_accepted(shared_stack: Stack) -> None:
    response = httpx.post(f"{shared_stack.url}/e/key", json={"name": "test/one"})
    assert response.status_code == 200
    (event_id,) = response.json()["ids"]
    assert get_json(f"{shared_stack.url}/v1/events/{event_id}")["name"] == "test/one"


def test_event_id_seed_makes_retried_sends_idempotent(
    shared_stack: Stack, key: NewKey
) -> None:
    seed = f"{int(time.time() * 1000)},{base64.b64encode(os.urandom(10)).decode()}"
    k = key()
    sent = [
        httpx.post(
            f"{shared_stack.url}/e/key",
            json=[{"name": "test/count", "data": {"key": k}}],
            headers={"x-inngest-event-id-seed": seed},
        ).json()["ids"]
        for _ in range(2)
    ]
    assert sent[0] == sent[1]
    run = wait_for_run(shared_stack.url, sent[0][0])
    assert run["status"] == "Completed"
    assert shared_stack.runs_of(k, "count") == 1


def test_rest_errors_and_health(shared_stack: Stack) -> None:
    url = shared_stack.url
    health = httpx.get(f"{url}/health")
    assert health.json() == {"status": 200, "message": "OK"}
    assert health.headers["x-inngest-server-kind"] == "dev"
    unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    for path in (
        f"/v1/runs/{unknown}",
        f"/v1/events/{unknown}",
        f"/v1/runs/{unknown}/steps",
    ):
        response = httpx.get(url + path)
        assert response.status_code == 404, path
        assert response.json()["status"] == 404
        assert "error" in response.json()
    assert httpx.delete(f"{url}/v1/runs/{unknown}").status_code == 404
    for path in ("/v1/runs/nope", "/v1/events/nope/runs", "/v1/events/nope"):
        assert httpx.get(url + path).status_code == 400, path
    listed = httpx.get(f"{url}/v1/events?limit=1").json()
    assert len(listed["data"]) == 1
    assert "fetched_at" in listed["metadata"]


def _fake_app(app_name: str, fn_names: list[str]) -> dict[str, Any]:
    url = "http://127.0.0.1:9/api/inngest"
    return {
        "appname": app_name,
        "url": url,
        "framework": "fast_api",
        "sdk": "py:v0.5.19",
        "v": "0.1",
        "functions": [
            {
                "id": f"{app_name}-{name}",
                "name": name,
                "triggers": [{"event": f"{app_name}/{name}"}],
                "steps": {
                    "step": {
                        "id": "step",
                        "name": "step",
                        "runtime": {
                            "type": "http",
                            "url": f"{url}?fnId={app_name}-{name}&stepId=step",
                        },
                    }
                },
            }
            for name in fn_names
        ],
    }


def test_register_reports_changes_and_replaces_functions(
    shared_stack: Stack, key: NewKey
) -> None:
    app_name = f"fake-{key()}"
    register = f"{shared_stack.url}/fn/register"
    first = httpx.post(register, json=_fake_app(app_name, ["one", "two"])).json()
    assert first["ok"] is True
    assert first["modified"] is True
    assert first["app_id"]
    assert first["sync_id"]
    again = httpx.post(register, json=_fake_app(app_name, ["one", "two"])).json()
    assert again["modified"] is False
    assert again["app_id"] == first["app_id"]
    assert {f"{app_name}-one", f"{app_name}-two"} <= set(
        registered_functions(shared_stack.url)
    )
    # appName (the spec's spelling) is accepted too.
    payload = _fake_app(app_name, ["one"])
    payload["appName"] = payload.pop("appname")
    assert httpx.post(register, json=payload).json()["modified"] is True
    functions = set(registered_functions(shared_stack.url))
    assert f"{app_name}-one" in functions
    assert f"{app_name}-two" not in functions
    # A removed function no longer gets runs.
    response = httpx.post(f"{shared_stack.url}/e/key", json={"name": f"{app_name}/two"})
    (event_id,) = response.json()["ids"]
    assert get_json(f"{shared_stack.url}/v1/events/{event_id}/runs") == []


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"url": "http://x", "functions": []}',
        b'{"appname": "x", "url": "http://x", "functions": [{"id": "f"}]}',
    ],
)
def test_register_refuses_malformed_payloads(
    shared_stack: Stack, payload: bytes
) -> None:
    response = httpx.post(f"{shared_stack.url}/fn/register", content=payload)
    assert response.status_code == 400
    assert response.json()["error"]


def _register_one(stack: Stack, app_name: str, runtime_url: str) -> str:
    payload = _fake_app(app_name, ["fn"])
    function = payload["functions"][0]
    function["steps"]["step"]["runtime"]["url"] = runtime_url
    function["steps"]["step"]["retries"] = {"attempts": 1}
    response = httpx.post(f"{stack.url}/fn/register", json=payload)
    assert response.json()["modified"] is True
    return f"{app_name}/fn"


@pytest.mark.parametrize(
    ("target", "error_name"),
    [
        ("/not-sdk?fnId=f&stepId=step", "NotAnSDKError"),
        ("/html?fnId=f&stepId=step", "NotAnSDKError"),
    ],
)
def test_answers_that_are_not_the_sdk_are_failed_attempts(
    shared_stack: Stack, key: NewKey, target: str, error_name: str
) -> None:
    runtime_url = shared_stack.app.url + target
    event_name = _register_one(shared_stack, f"broken-{key()}", runtime_url)
    response = httpx.post(f"{shared_stack.url}/e/key", json={"name": event_name})
    (event_id,) = response.json()["ids"]
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Failed"
    assert run["output"]["name"] == error_name
    # retries=1: the failure was retried once before the run failed.
    assert run["last_error"]["attempt"] == 1


FORGED = "2026-01-01 00:00:00,000 INFO digest.devserver: forged line"


def test_client_text_cannot_forge_executor_log_lines(
    shared_stack: Stack, key: NewKey
) -> None:
    # Inngest accepts any event name, control characters included, and so
    # does /e/{key}; what the executor logs of a name, a function id or an
    # app name holds its control characters as escapes, one record a line.
    app_name = f"forge-{key()}"
    payload = _fake_app(app_name, ["fn"])
    function = payload["functions"][0]
    function["id"] = f"{app_name}-fn\r{FORGED}"
    function["triggers"] = [{"event": f"{app_name}/*"}]
    response = httpx.post(f"{shared_stack.url}/fn/register", json=payload)
    assert response.status_code == 200, response.text
    name = f"{app_name}/x\n{FORGED}\x1b[2J"
    response = httpx.post(f"{shared_stack.url}/e/key", json={"name": name})
    assert response.status_code == 200, response.text
    (event_id,) = response.json()["ids"]
    (run,) = wait_until(
        lambda: get_json(f"{shared_stack.url}/v1/events/{event_id}/runs"),
        20,
        "the event's run",
    )
    # The app's URL answers nothing: the run would be retried for ever.
    httpx.delete(f"{shared_stack.url}/v1/runs/{run['run_id']}", timeout=10)
    started = f"started by event {event_id} ({app_name}/x\\n{FORGED}\\x1b[2J)"
    wait_until(lambda: started in shared_stack.executor.log(), 20, "the run's log line")
    log = shared_stack.executor.log()
    assert f"{app_name}-fn\\r{FORGED}" in log
    assert "\r" not in log
    for line in log.splitlines():
        assert not line.startswith(FORGED), line
        assert "\x1b" not in line, line
