"""Event batching: a full batch starts at once, a partial one after its timeout."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devserver.testing import event_runs, wait_for_run
from tests.conformance.conftest import App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("batch", executor, tmp_path_factory.mktemp("batch"))
    yield served
    served.process.stop()


def test_full_batch_runs_once_with_all_events(app: App, key: Callable[[], str]) -> None:
    group = key()
    ids = [app.send("batch/item", {"group": group, "n": n}) for n in range(3)]
    run = wait_for_run(app.executor.url, ids[0])
    assert run["status"] == "Completed"
    assert run["output"] == {"first": 0, "all": [0, 1, 2]}
    for event_id in ids[1:]:
        assert all(
            r["run_id"] == run["run_id"] for r in event_runs(app.executor.url, event_id)
        )


def test_partial_batch_runs_after_timeout_per_key(
    app: App, key: Callable[[], str]
) -> None:
    one, other = key(), key()
    first = app.send("batch/item", {"group": one, "n": 1})
    second = app.send("batch/item", {"group": other, "n": 2})
    third = app.send("batch/item", {"group": one, "n": 3})
    # Nothing starts before the 2 s timeout: neither group is full.
    assert event_runs(app.executor.url, first) == []
    run = wait_for_run(app.executor.url, first, timeout=10)
    assert run["output"] == {"first": 1, "all": [1, 3]}
    assert wait_for_run(app.executor.url, second, timeout=10)["output"] == {
        "first": 2,
        "all": [2],
    }
    assert event_runs(app.executor.url, third) == []
