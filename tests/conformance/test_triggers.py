"""Trigger matching: CEL filters, wildcards and several triggers per function."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devserver.testing import event_runs, wait_for_run
from tests.conformance.conftest import App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("triggers", executor, tmp_path_factory.mktemp("triggers"))
    yield served
    served.process.stop()


def _slugs(app: App, event_id: str) -> list[str]:
    return sorted(r["function_slug"] for r in event_runs(app.executor.url, event_id))


def test_expression_filter_starts_only_matching_events(app: App) -> None:
    # Runs start while the event is accepted, so "no run" is final at once.
    false = app.send("triggers/filtered", {"n": 1})
    broken = app.send("triggers/filtered", {"n": "text"})
    missing = app.send("triggers/filtered", {})
    true = app.send("triggers/filtered", {"n": 2})
    run = wait_for_run(app.executor.url, true)
    assert run["status"] == "Completed"
    assert run["output"]["data"] == {"n": 2}
    for event_id in (false, broken, missing):
        assert event_runs(app.executor.url, event_id) == []


def test_wildcard_triggers(app: App) -> None:
    slash = app.send("triggers/wild/deep/name", {})
    dot = app.send("triggers.dot.created", {})
    neither = app.send("triggers/wildcard", {})
    assert wait_for_run(app.executor.url, slash)["output"]["name"] == (
        "triggers/wild/deep/name"
    )
    assert wait_for_run(app.executor.url, dot)["output"]["name"] == (
        "triggers.dot.created"
    )
    assert event_runs(app.executor.url, neither) == []


def test_several_triggers_start_one_run_per_matching_event(app: App) -> None:
    first = app.send("triggers/first", {})
    second = app.send("triggers/second", {"ok": True})
    filtered_out = app.send("triggers/second", {"ok": False})
    for event_id, name in ((first, "triggers/first"), (second, "triggers/second")):
        run = wait_for_run(app.executor.url, event_id)
        assert run["status"] == "Completed"
        assert run["output"]["name"] == name
        assert _slugs(app, event_id) == ["triggers-multi"]
    assert event_runs(app.executor.url, filtered_out) == []
