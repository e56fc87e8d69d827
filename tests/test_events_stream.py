"""The job's event stream: one event per change, resumable, many readers;
and cancelling a running job."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import CORPUS, Stack
from tests.databases import ON_BOTH_DATABASES

pytestmark = ON_BOTH_DATABASES("digest_stack")

Event = tuple[str, int, dict[str, Any]]


def _parse(lines: list[str]) -> Event | None:
    kind, ident, data = "message", -1, None
    for line in lines:
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("id:"):
            ident = int(line.split(":", 1)[1])
        elif line.startswith("data:"):
            data = json.loads(line.split(":", 1)[1])
    return (kind, ident, data) if data is not None else None


def _stream(
    stack: Stack, job_id: str, *, last_id: int | None = None, stop_after: int = 0
) -> tuple[int, list[Event]]:
    """(status code, events) until the server ends the stream, or until
    `stop_after` events have come (then the client hangs up)."""
    headers = dict(stack.auth)
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    url = f"{stack.backend.url}/api/summaries/{job_id}/events"
    events: list[Event] = []
    with httpx.stream("GET", url, headers=headers, timeout=60) as answer:
        if answer.status_code != 200:
            return answer.status_code, []
        block: list[str] = []
        for line in answer.iter_lines():
            if line:
                block.append(line)
                continue
            event = _parse(block)
            block = []
            if event is not None:
                events.append(event)
                if stop_after and len(events) >= stop_after:
                    break
    return 200, events


def _document(copies: int = 1) -> str:
    return "\n\n".join([(CORPUS / "pep-0008.rst").read_text(encoding="utf-8")] * copies)


def test_every_change_is_one_event_in_order(digest_stack: Stack) -> None:
    job_id = digest_stack.submit(_document())
    digest_stack.wait(job_id)
    # Last-Event-ID 0 replays the job's whole history.
    _, events = _stream(digest_stack, job_id, last_id=0)
    kinds = [kind for kind, _, _ in events]
    total = events[-1][2]["progress"]["total"]
    assert kinds == ["status", "status"] + ["progress"] * total + ["completed"]
    assert [ident for _, ident, _ in events] == list(range(1, len(events) + 1))
    assert [data["status"] for _, _, data in events[:2]] == ["queued", "running"]
    progress = [data["progress"] for kind, _, data in events if kind == "progress"]
    assert [p["done"] for p in progress] == list(range(1, total + 1))
    assert progress[0]["step"] == "load"
    assert all(p["step"] for p in progress)
    assert events[-1][2]["sentences"]
    # A replay shows each change as it was: the summary only at the end.
    for _, _, data in events[:-1]:
        assert data["summary"] is None, data
        assert data["sentences"] is None, data
        assert data["summarizer"] is None, data


def test_reconnecting_client_misses_nothing(digest_stack: Stack) -> None:
    job_id = digest_stack.submit(_document(2))
    seen: list[Event] = []
    last: int | None = None
    # Hang up after every single event and come back with Last-Event-ID.
    for _ in range(500):
        status, events = _stream(digest_stack, job_id, last_id=last, stop_after=1)
        if status == 204:
            break
        assert status == 200
        seen += events
        last = events[-1][1]
    ids = [ident for _, ident, _ in seen]
    assert seen[-1][0] == "completed"
    assert seen[-1][2]["status"] == "succeeded"
    # The first connection got the state of the moment; from then on each
    # id is the one after the last, with no gap and no repeat.
    assert ids[1:] == list(range(ids[0] + 1, ids[0] + len(ids)))
    assert [kind for kind, _, _ in seen].count("completed") == 1


def test_reconnect_after_the_end_is_a_204(digest_stack: Stack) -> None:
    job = digest_stack.wait(digest_stack.submit("Short. Done soon."))
    _, events = _stream(digest_stack, job["id"])
    assert [kind for kind, _, _ in events] == ["status", "completed"]
    status, _ = _stream(digest_stack, job["id"], last_id=events[-1][1])
    assert status == 204


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 30, "0x10", "1 2"])
def test_last_event_id_that_is_not_a_number_is_a_400(
    digest_stack: Stack, value: str
) -> None:
    job_id = digest_stack.submit("Any job will do here.")
    answer = httpx.get(
        f"{digest_stack.backend.url}/api/summaries/{job_id}/events",
        headers={**digest_stack.auth, "Last-Event-ID": value},
        timeout=10,
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_header"
    assert "Last-Event-ID" in error["message"]


async def test_two_hundred_subscribers_all_see_completed(digest_stack: Stack) -> None:
    job_id = digest_stack.submit(_document(4))
    url = f"{digest_stack.backend.url}/api/summaries/{job_id}/events"
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)

    async def follow(http: httpx.AsyncClient) -> list[str]:
        kinds = []
        async with http.stream("GET", url, headers=digest_stack.auth) as answer:
            assert answer.status_code == 200
            async for line in answer.aiter_lines():
                if line.startswith("event:"):
                    kinds.append(line.split(":", 1)[1].strip())
        return kinds

    async with (
        asyncio.timeout(180),
        httpx.AsyncClient(limits=limits, timeout=120) as http,
    ):
        results = await asyncio.gather(*(follow(http) for _ in range(200)))
    assert len(results) == 200
    assert all(kinds[-1] == "completed" for kinds in results)
    assert all(kinds[0] == "status" for kinds in results)
    assert any("progress" in kinds for kinds in results)


def test_a_last_event_id_in_utf8_is_quoted_as_sent(digest_stack: Stack) -> None:
    job_id = digest_stack.submit("Any job will do here.")
    answer = httpx.get(
        f"{digest_stack.backend.url}/api/summaries/{job_id}/events",
        headers={**digest_stack.auth, "Last-Event-ID": "dernière-1".encode()},
        timeout=10,
    )
    assert answer.status_code == 400
    assert "'dernière-1'" in answer.json()["error"]["message"]


def test_cancelling_a_running_job(digest_stack: Stack) -> None:
    job_id = digest_stack.submit(_document(8), title="to cancel")
    deadline = time.monotonic() + 60
    while digest_stack.job(job_id)["progress"]["done"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with digest_stack.api as http:
        answer = http.post(f"/api/summaries/{job_id}/cancel")
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "cancelled"
    progress_at_cancel = answer.json()["progress"]

    _, events = _stream(digest_stack, job_id, last_id=0)
    assert events[-1][0] == "cancelled"
    assert events[-1][2]["status"] == "cancelled"

    # The run stops at a step boundary rather than running to the end.
    deadline = time.monotonic() + 60
    while True:
        runs = digest_stack.runs_of(job_id)
        if runs and runs[0]["status"] not in {"Running", "Queued", "Scheduled"}:
            break
        assert time.monotonic() < deadline, runs
        time.sleep(0.2)
    assert runs[0]["status"] in {"Cancelled", "Failed"}, runs
    job = digest_stack.job(job_id)
    assert job["status"] == "cancelled"
    assert job["summary"] is None
    # Steps that were in flight when the job was cancelled move nothing.
    assert job["progress"] == progress_at_cancel
    with digest_stack.api as http:
        again = http.post(f"/api/summaries/{job_id}/cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["error"]["message"]


def test_cancelling_a_finished_job_is_a_409(digest_stack: Stack) -> None:
    job = digest_stack.wait(digest_stack.submit("Finished before anyone cancels."))
    with digest_stack.api as http:
        answer = http.post(f"/api/summaries/{job['id']}/cancel")
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error == {
        "code": "conflict",
        "message": error["message"],
        "status": "succeeded",
    }
    assert "succeeded" in error["message"]
