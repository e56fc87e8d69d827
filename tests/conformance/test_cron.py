"""Cron triggers against a live executor with an accelerated cron clock.

The executor runs with ``--cron-tick 1``: one cron minute lasts one real
second, so ``* * * * *`` fires every second. The fire times across a
daylight-saving change are tested on ``devserver.cron`` with a fake clock
(tests/devserver/test_flow_units.py), as the issue allows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from devserver.clock import iso_ms, now_ms
from devserver.testing import event_runs, get_json, wait_until
from tests.conformance.conftest import Executor, serve_app

TIMER = "inngest/scheduled.timer"


def _completed_timer_runs(url: str, since: str = "") -> list[dict[str, Any]]:
    """Completed cron runs whose event was received at ``since`` or later."""
    events = get_json(f"{url}/v1/events?name={TIMER}&limit=1000")
    return [
        run
        for event in events
        if event["received_at"] >= since
        for run in event_runs(url, event["internal_id"])
        if run["status"] == "Completed"
    ]


def test_cron_fires_the_timer_event_and_again_after_a_restart(
    own_executor: Callable[..., Executor], tmp_path: Path
) -> None:
    executor = own_executor("--cron-tick", "1")
    app = serve_app("cron", executor, tmp_path)
    try:
        runs = wait_until(
            lambda: _completed_timer_runs(executor.url) or None, 20, "a run"
        )
        output = runs[0]["output"]
        assert output["name"] == TIMER
        assert output["data"]["cron"] == "TZ=Europe/Paris * * * * *"
        assert output["id"] == output["data"]["scheduledAt"]
        assert output["data"]["scheduledAt"].endswith(":00Z")
        assert output["data"]["fireAt"] >= output["data"]["scheduledAt"]

        assert executor.process is not None
        executor.process.stop()
        restarted = iso_ms(now_ms())
        executor.restart("--cron-tick", "1")
        # No re-sync: the schedule comes back from the stored registration.
        wait_until(
            lambda: _completed_timer_runs(executor.url, since=restarted) or None,
            20,
            "a cron run after the restart",
        )
    finally:
        app.process.stop()
