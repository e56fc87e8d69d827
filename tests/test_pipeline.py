"""The whole pipeline: real documents through backend, executor and steps."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import CORPUS, Stack, normalised


def _steps_of(stack: Stack, job_id: str) -> list[dict[str, object]]:
    runs = [r for r in stack.runs_of(job_id) if r["status"] == "Completed"]
    assert len(runs) == 1, runs
    steps: list[dict[str, object]] = stack.executor_get(
        f"/v1/runs/{runs[0]['run_id']}/steps"
    )
    return steps


@pytest.mark.parametrize("name", ["pep-0008.rst", "pep-0572.rst", "pep-0020.rst"])
def test_real_document_is_summarised_from_its_own_sentences(
    digest_stack: Stack, name: str
) -> None:
    text = (CORPUS / name).read_text(encoding="utf-8")
    job_id = digest_stack.submit(text, title=name, max_sentences=4)
    job = digest_stack.wait(job_id)

    assert job["status"] == "succeeded", job
    assert job["title"] == name
    assert 1 <= len(job["sentences"]) <= 4
    source = normalised(text)
    for sentence in job["sentences"]:
        assert normalised(sentence) in source, sentence
    assert job["summary"] == " ".join(job["sentences"])
    assert job["progress"]["done"] == job["progress"]["total"]
    assert job["progress"]["step"] == "save"
    assert job["error"] is None


def test_chunks_are_separate_steps_in_the_run(digest_stack: Stack) -> None:
    text = (CORPUS / "pep-0008.rst").read_text(encoding="utf-8")
    job = digest_stack.wait(digest_stack.submit(text))
    chunk_count = job["progress"]["total"] - 4
    assert chunk_count >= 3

    names = [str(step["name"]) for step in _steps_of(digest_stack, job["id"])]
    chunk_steps = [n for n in names if n.startswith("summarize-chunk-")]
    assert sorted(chunk_steps) == sorted(
        f"summarize-chunk-{i}" for i in range(chunk_count)
    )
    for fixed in ("load", "split", "combine", "save"):
        assert names.count(fixed) == 1, names
    assert names.index("split") < min(names.index(n) for n in chunk_steps)


def test_each_step_runs_once_and_logs_one_line(digest_stack: Stack) -> None:
    text = (CORPUS / "pep-0257.rst").read_text(encoding="utf-8")
    job = digest_stack.wait(digest_stack.submit(text))
    log = Path(digest_stack.backend.log_path).read_text()
    done = Counter(re.findall(rf"job {job['id']} step (\S+) done in", log))
    assert set(done.values()) == {1}
    assert len(done) == job["progress"]["total"]


def test_document_without_prose_fails_with_a_reason(digest_stack: Stack) -> None:
    code_only = "Heading\n=======\n\n::\n\n    x = 1\n    y = 2\n"
    job = digest_stack.wait(digest_stack.submit(code_only, format="rst"))
    assert job["status"] == "failed"
    assert "no prose to summarise" in job["error"]
    assert job["summary"] is None


def test_answer_comes_before_the_work(digest_stack: Stack) -> None:
    text = (CORPUS / "pep-0492.rst").read_text(encoding="utf-8")
    with digest_stack.api as http:
        answer = http.post("/api/summaries", json={"text": text})
        assert answer.status_code == 202
        body = answer.json()
        assert body["status"] == "queued"
        assert set(body["links"]) == {"self", "events"}
        assert answer.headers["location"] == f"/api/summaries/{body['id']}"
    assert digest_stack.wait(body["id"])["status"] == "succeeded"


def test_ready_when_database_and_executor_answer(digest_stack: Stack) -> None:
    answer = httpx.get(f"{digest_stack.backend.url}/readyz", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok", "executor": "ok"}


def test_large_document_does_not_hold_up_a_small_one(digest_stack: Stack) -> None:
    corpus = "\n\n".join(p.read_text(encoding="utf-8") for p in CORPUS.glob("*.rst"))
    large = (corpus * (2_000_000 // len(corpus) + 1))[:1_990_000]
    large = large[: large.rfind("\n\n")]
    large_id = digest_stack.submit(large, title="large")
    # Once the large document is being split (seconds of CPU work in a
    # worker process), a small job goes through from start to end.
    deadline = time.monotonic() + 60
    while digest_stack.job(large_id)["progress"]["done"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    small = digest_stack.wait(
        digest_stack.submit((CORPUS / "pep-0020.rst").read_text(encoding="utf-8"))
    )
    assert small["status"] == "succeeded"
    assert digest_stack.job(large_id)["status"] == "running"

    large_job = digest_stack.wait(large_id, timeout=240)
    assert large_job["status"] == "succeeded", large_job
    assert large_job["progress"]["total"] > 100


def _read_events(
    url: str, headers: dict[str, str]
) -> list[tuple[str, int, dict[str, object]]]:
    """(event, id, data) for every event until the server ends the stream."""
    events = []
    kind, ident = "message", -1
    with httpx.stream("GET", url, timeout=60, headers=headers) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                ident = int(line.split(":", 1)[1])
            elif line.startswith("data:"):
                events.append((kind, ident, json.loads(line.split(":", 1)[1])))
    return events


def test_events_stream_follows_the_job_to_its_end(digest_stack: Stack) -> None:
    text = (CORPUS / "pep-0492.rst").read_text(encoding="utf-8")
    job_id = digest_stack.submit(text)
    events = _read_events(
        f"{digest_stack.backend.url}/api/summaries/{job_id}/events", digest_stack.auth
    )

    kinds = [kind for kind, _, _ in events]
    assert kinds[0] == "status"
    assert kinds[-1] == "completed"
    assert set(kinds) <= {"status", "progress", "completed"}
    ids = [ident for _, ident, _ in events]
    assert ids == sorted(ids)
    final = events[-1][2]
    assert final["status"] == "succeeded"
    assert final["sentences"]


def test_events_of_a_finished_job_are_its_state_then_the_end(
    digest_stack: Stack,
) -> None:
    job = digest_stack.wait(digest_stack.submit("A finished job has one more event."))
    url = f"{digest_stack.backend.url}/api/summaries/{job['id']}/events"
    events = _read_events(url, digest_stack.auth)
    assert [kind for kind, _, _ in events] == ["status", "completed"]


def test_events_of_an_unknown_job_is_a_404(digest_stack: Stack) -> None:
    url = f"{digest_stack.backend.url}/api/summaries/01JZZZZZZZZZZZZZZZZZZZZZZZ/events"
    answer = httpx.get(url, timeout=10, headers=digest_stack.auth)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_job_store_is_sqlite_in_wal_mode(digest_stack: Stack) -> None:
    with sqlite3.connect(digest_stack.home / "digest.db") as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("select name from sqlite_master")}
    assert {
        "jobs",
        "job_steps",
        "job_chunks",
        "job_events",
        "alembic_version",
    } <= tables


def test_an_event_for_no_job_fails_its_run_at_once(digest_stack: Stack) -> None:
    """A summary/requested event whose job does not exist (sent by hand, or
    its job deleted by retention) spends no retries looking for it."""
    job_id = "01KZZZZZZZZZZZZZZZZZZZZZZZ"
    sent = httpx.post(
        f"{digest_stack.executor.url}/e/any-dev-key",
        json={"name": "summary/requested", "id": job_id, "data": {"job_id": job_id}},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 30
    while not [r for r in digest_stack.runs_of(job_id) if r["status"] == "Failed"]:
        assert time.monotonic() < deadline, digest_stack.runs_of(job_id)
        time.sleep(0.2)
    [run] = digest_stack.runs_of(job_id)
    # Non-retriable: the first attempt's error is the run's, not a retry's.
    assert run["output"]["code"] == "non_retriable_error", run
    assert run["output"]["message"].startswith(f"there is no job {job_id}")
    assert "could not be marked failed" not in digest_stack.backend.log_tail(200)
