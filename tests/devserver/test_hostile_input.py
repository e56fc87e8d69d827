"""JSON the executor must refuse, from every door, without ever answering 500.

Python's ``json`` reads ``NaN`` and ``Infinity``, turns ``1e999`` into an
infinity, decodes ``\\ud800`` into a lone surrogate and gives up on deep
nesting with a RecursionError. Stored, any of these broke every listing
that showed it. Each test sends one such document over real HTTP to a real
executor (and, for answers, from an app served by the official SDK), checks
the refusal, then checks that every listing still answers 200.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver import jsonio, wire
from devserver.store import Store
from devserver.testing import (
    ServiceProcess,
    start_app_and_executor,
    wait_for_run,
)

HERE = Path(__file__).parent
APP_FUNCTIONS = [
    f"hostile-{name}"
    for name in (
        "nan-step",
        "infinity-step",
        "surrogate-step",
        "deep-step",
        "nan-output",
        "fine",
    )
]
LISTINGS = (
    "/",
    "/events",
    "/apps",
    "/dashboard/api/events",
    "/dashboard/api/runs",
    "/dashboard/api/apps",
    "/v1/events",
    "/v1/apps",
    "/dev",
)


def _deep(depth: int) -> bytes:
    """An event whose whole document is ``depth`` containers deep."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return b'{"name": "t/deep", "data": {"a": ' + inner.encode() + b"}}"


# (body, words the refusal must contain)
HOSTILE_EVENTS = {
    "infinity": (b'{"name":"t/inf","data":{"a":Infinity}}', "Infinity"),
    "minus-infinity": (b'{"name":"t/inf","data":{"a":-Infinity}}', "-Infinity"),
    "nan": (b'{"name":"t/nan","data":{"a":NaN}}', "NaN"),
    "overflow": (b'{"name":"t/big","data":{"a":1e999}}', "1e999"),
    "surrogate-escape": (b'{"name":"t/s","data":{"a":"x\\ud800y"}}', "surrogate"),
    "surrogate-key": (b'{"name":"t/s","data":{"\\udfff":1}}', "surrogate"),
    "surrogate-bytes": (b'{"name":"t/s","data":{"a":"x\xed\xa0\x80y"}}', "UTF-8"),
    "not-utf8": (b'{"name":"t/s","data":{"a":"\xff"}}', "UTF-8"),
    "deep-3000": (_deep(3000), "nested deeper than 512"),
    "deep-513": (_deep(513), "nested deeper than 512"),
}


@dataclass
class Hostile:
    executor: ServiceProcess
    app: ServiceProcess

    @property
    def url(self) -> str:
        return self.executor.url


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("hostile")
    app, executor = start_app_and_executor(
        "hostile_app:app", cwd=HERE, root=root, functions=APP_FUNCTIONS
    )
    try:
        yield Hostile(executor, app)
    finally:
        executor.stop()
        app.stop()


def assert_listings_answer(url: str, *extra: str) -> None:
    for path in (*LISTINGS, *extra):
        response = httpx.get(url + path, timeout=10)
        assert response.status_code == 200, (path, response.text[:300])


def _post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        url, content=body, headers={"content-type": "application/json", **headers}
    )


@pytest.mark.parametrize("case", HOSTILE_EVENTS)
def test_event_api_refuses_hostile_json(hostile: Hostile, case: str) -> None:
    body, words = HOSTILE_EVENTS[case]
    response = _post(f"{hostile.url}/e/anykey", body)
    assert response.status_code == 400, response.text
    refusal = response.json()
    assert refusal["status"] == 400
    assert refusal["ids"] == []
    assert words in refusal["error"]
    assert_listings_answer(hostile.url)


@pytest.mark.parametrize("case", HOSTILE_EVENTS)
def test_dashboard_json_send_refuses_hostile_json(hostile: Hostile, case: str) -> None:
    body, words = HOSTILE_EVENTS[case]
    response = _post(f"{hostile.url}/dashboard/api/events", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_json"
    assert words in error["message"]
    assert_listings_answer(hostile.url)


# A form field is text, so bytes that are not UTF-8 cannot be sent in one.
FORM_CASES = [c for c in HOSTILE_EVENTS if "UTF-8" not in HOSTILE_EVENTS[c][1]]


@pytest.mark.parametrize("case", FORM_CASES)
def test_dashboard_form_send_refuses_hostile_data(hostile: Hostile, case: str) -> None:
    body, words = HOSTILE_EVENTS[case]
    text = body.decode()
    data = text[text.index('"data":') + len('"data":') : -1]
    response = httpx.post(
        f"{hostile.url}/dashboard/api/events", data={"name": "t/form", "data": data}
    )
    assert response.status_code == 400, response.text[:300]
    assert "text/html" in response.headers["content-type"]
    assert words in response.text
    assert_listings_answer(hostile.url)


def test_data_given_as_json_text_is_read_strictly(hostile: Hostile) -> None:
    body = json.dumps({"name": "t/text", "data": '{"a": NaN}'}).encode()
    response = _post(f"{hostile.url}/dashboard/api/events", body)
    assert response.status_code == 400
    assert "NaN" in response.json()["error"]["message"]


@pytest.mark.parametrize("case", HOSTILE_EVENTS)
def test_registration_refuses_hostile_json(hostile: Hostile, case: str) -> None:
    body, words = HOSTILE_EVENTS[case]
    response = _post(f"{hostile.url}/fn/register", body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]
    assert_listings_answer(hostile.url)


def test_registration_with_nan_in_a_function_config_is_refused(
    hostile: Hostile,
) -> None:
    payload = (
        b'{"appname": "hostile-sync", "url": "http://127.0.0.1:9/api/inngest",'
        b' "functions": [{"id": "f", "name": "f", "triggers": [{"event": "x"}],'
        b' "steps": {"step": {"id": "step", "name": "step", "runtime":'
        b' {"type": "http", "url": "http://127.0.0.1:9/"}}}, "x": NaN}]}'
    )
    response = _post(f"{hostile.url}/fn/register", payload)
    assert response.status_code == 400
    assert "NaN" in response.json()["error"]
    assert_listings_answer(hostile.url)


def test_deepest_allowed_event_is_stored_and_shown(hostile: Hostile) -> None:
    response = _post(f"{hostile.url}/e/anykey", _deep(512))
    assert response.status_code == 200, response.text
    event_id = response.json()["ids"][0]
    assert_listings_answer(
        hostile.url,
        f"/events/{event_id}",
        f"/dashboard/api/events/{event_id}",
        f"/v1/events/{event_id}",
    )


@pytest.mark.parametrize(
    "query", ["q=%00", "name=%00", "q=a%00b", "name=t%00", "function=%00"]
)
def test_nul_in_a_dashboard_filter_is_refused(hostile: Hostile, query: str) -> None:
    page = "/" if query.startswith("function") else "/events"
    api = "/dashboard/api/runs" if page == "/" else "/dashboard/api/events"
    response = httpx.get(f"{hostile.url}{api}?{query}")
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]["message"]
    assert httpx.get(f"{hostile.url}{page}?{query}").status_code == 400


@pytest.mark.parametrize("field", ["q", "name", "function"])
def test_a_search_longer_than_sqlite_takes_is_refused(
    hostile: Hostile, field: str
) -> None:
    # SQLite refuses a LIKE pattern over 50,000 bytes with an error of its own.
    query = f"{field}={'a' * 50_001}"
    page = "/" if field == "function" else "/events"
    api = "/dashboard/api/runs" if page == "/" else "/dashboard/api/events"
    response = httpx.get(f"{hostile.url}{api}?{query}")
    assert response.status_code == 400
    assert "at most 1000" in response.json()["error"]["message"]
    assert httpx.get(f"{hostile.url}{page}?{query}").status_code == 400
    assert httpx.get(f"{hostile.url}{api}?{field}={'a' * 1000}").status_code == 200


def test_nul_in_a_rest_filter_matches_nothing(hostile: Hostile) -> None:
    assert _post(f"{hostile.url}/e/k", b'{"name": "t/listed"}').status_code == 200
    response = httpx.get(f"{hostile.url}/v1/events?name=%00")
    assert response.status_code == 200
    assert response.json()["data"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/api/runs/01J00000000000000000000000/cancel",
        "/dashboard/api/runs/01J00000000000000000000000/rerun",
        "/dashboard/api/apps/%00/sync",
        "/dashboard/api/apps/x%ED%A0%80/sync",
    ],
)
def test_other_dashboard_actions_never_fail(hostile: Hostile, path: str) -> None:
    for body, _ in HOSTILE_EVENTS.values():
        response = _post(hostile.url + path, body)
        assert response.status_code == 404, response.text
    assert_listings_answer(hostile.url)


def _run_of(hostile: Hostile, event: str) -> dict[str, Any]:
    sent = _post(f"{hostile.url}/e/k", json.dumps({"name": event}).encode())
    assert sent.status_code == 200
    event_id = sent.json()["ids"][0]
    return wait_for_run(hostile.url, event_id, timeout=30)


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ("hostile/nan-step", "NaN"),
        ("hostile/infinity-step", "-Infinity"),
        ("hostile/surrogate-step", "surrogate"),
        ("hostile/deep-step", "nested deeper than 512"),
        ("hostile/output", "NaN"),
    ],
)
def test_hostile_sdk_answer_fails_the_attempt(
    hostile: Hostile, event: str, words: str
) -> None:
    run = _run_of(hostile, event)
    assert run["status"] == "Failed"
    assert run["last_error"]["name"] == "InvalidResponseError"
    assert words in run["last_error"]["message"]
    run_id = run["run_id"]
    assert_listings_answer(
        hostile.url,
        f"/runs/{run_id}",
        f"/dashboard/api/runs/{run_id}",
        f"/v1/runs/{run_id}",
        f"/v1/runs/{run_id}/steps",
        f"/v1/events/{run['event_id']}/runs",
    )
    # The worker lives on: the next run completes.
    assert _run_of(hostile, "hostile/fine")["output"] == "hello"


@pytest.mark.parametrize(
    "text",
    [
        b'"\\ud83d\\ude00"',
        b'"\\uD83D\\uDE00"',
        b'"\\\\\\ud83d\\ude00"',  # an escaped backslash, then a pair
        b'"\\\\ud800"',  # an escaped backslash, then plain text
        b"\xef\xbb\xbf[1e308]",  # a byte order mark, the largest double
        b'"[[[[{{{{"',
        b"[" * 512 + b"]" * 512,
    ],
)
def test_strict_reading_keeps_what_is_valid(text: bytes) -> None:
    assert jsonio.loads(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        b'"\\\\ud83d\\ude00"',  # an escaped backslash, then a lone low half
        b'"\\ude00\\ud83d"',  # the halves in the wrong order
        b"[1e309]",
        b"[" + b"1" * 400 + b".5]",
        "[1, NaN]",
        "x\ud800",
    ],
)
def test_strict_reading_refuses(text: bytes | str) -> None:
    with pytest.raises(jsonio.JSONInputError):
        jsonio.loads(text)


def test_the_store_refuses_what_it_could_not_read_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    try:
        for data in ({"a": float("nan")}, {"a": float("inf")}, {"a": "x\ud800"}):
            event = {"name": "t/bad", "data": data}
            with pytest.raises(jsonio.JSONInputError):
                store.add_event("01J00000000000000000000000", event, 0)
        assert store.list_events(10, None, None) == []
    finally:
        store.close()


@pytest.mark.parametrize(
    "wrapper",
    [
        # The inner body is JSON text with NaN in it.
        {
            "status": 206,
            "headers": {},
            "body": '[{"id": "s", "op": "StepRun", "data": NaN}]',
        },
        # The inner body is a value; the wrapper itself holds the NaN.
        {"status": 200, "headers": {}, "body": {"a": float("nan")}},
    ],
)
def test_streamed_answer_with_nan_fails_the_attempt(wrapper: dict[str, Any]) -> None:
    result = wire.interpret(201, {}, json.dumps(wrapper).encode())
    assert result.outcome == wire.Outcome.ERROR
    assert result.error is not None
    assert result.error["name"] == "InvalidResponseError"
    assert "NaN" in result.error["message"]
