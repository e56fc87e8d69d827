"""Event triggers and sequential `step.run`: outputs and memoisation."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devserver.testing import wait_for_run
from tests.conformance.conftest import App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("basic", executor, tmp_path_factory.mktemp("basic"))
    yield served
    served.process.stop()


def test_sequential_steps_run_once_each(app: App, key: Callable[[], str]) -> None:
    k = key()
    event_id = app.send("basic/steps", {"key": k})
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Completed"
    assert run["output"] == {"one": 1, "two": {"data": 2}}
    assert app.marks(k, "first") == ["ran"]
    assert app.marks(k, "second") == ["ran"]
