"""Debounce under a continuous stream: the timeout forces a run, last event wins.

The issue's scenario: an event every 900 ms for 15 s against a debounce
with a 10 s timeout (and a 5 s period, far longer than the gaps even on a
busy machine, so only the timeout can end the first debounce). Exactly one
run starts by about 10 s, with the newest event at that time; the rest of
the stream makes one more run, with the last event, a period after the
stream ends.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devserver.testing import event_runs, wait_until
from tests.conformance.conftest import App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app(
        "flow_debounce", executor, tmp_path_factory.mktemp("flow_debounce")
    )
    yield served
    served.process.stop()


def _runs(app: App, ids: list[str]) -> list[dict[str, Any]]:
    return [r for event_id in ids for r in event_runs(app.executor.url, event_id)]


def test_stream_of_events_yields_one_run_at_timeout_with_newest_event(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    ids: list[str] = []
    sent_at: list[float] = []
    runs_at_11s: list[dict[str, Any]] | None = None
    start = time.monotonic()
    for seq in range(17):  # at 0, 0.9, ... 14.4 s
        time.sleep(max(0.0, start + seq * 0.9 - time.monotonic()))
        sent_at.append(time.monotonic() - start)
        ids.append(app.send("flow_debounce/tick", {"key": k, "seq": seq}))
        if runs_at_11s is None and time.monotonic() - start >= 11:
            runs_at_11s = _runs(app, ids)
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at)]
    assert max(gaps) < 5, f"the sender stalled longer than the period: {gaps}"
    # By about 10 s (looked at 11 s in) exactly one run has started ...
    assert runs_at_11s is not None
    assert len(runs_at_11s) == 1
    # ... with the newest event at 10 s: sent before then, the next after.
    seq = ids.index(runs_at_11s[0]["event_id"])
    assert sent_at[seq] <= 10.3, sent_at
    assert sent_at[seq + 1] >= 9.9, sent_at

    def both_completed() -> list[dict[str, Any]] | None:
        runs = _runs(app, ids)
        done = len(runs) == 2 and all(r["status"] == "Completed" for r in runs)
        return runs if done else None

    # The rest of the stream makes one more run, with the last event.
    runs = wait_until(both_completed, 20, "the second debounced run")
    outputs = sorted((r["output"] for r in runs), key=lambda o: int(o["seq"]))
    assert outputs == [{"seq": seq, "events": 1}, {"seq": 16, "events": 1}]
