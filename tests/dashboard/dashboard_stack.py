"""The executor + dashboard test app pair, and helpers to read what it shows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devserver.testing import (
    ServiceProcess,
    send_event,
    start_app_and_executor,
    wait_until,
)

HERE = Path(__file__).parent
APP_ID = "dashboard-tests"
FUNCTIONS = [
    f"{APP_ID}-{name}"
    for name in ("paced", "broken", "sleepy", "patient", "many", "echo")
]
ARTIFACTS = HERE.parent / "artifacts"


@dataclass
class Stack:
    executor: ServiceProcess
    app: ServiceProcess

    @property
    def url(self) -> str:
        return self.executor.url

    def send(self, name: str, data: dict[str, Any]) -> str:
        return send_event(self.url, name, data)

    def api(self, path: str) -> Any:
        answer = httpx.get(f"{self.url}/dashboard/api{path}", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def run_of(self, event_id: str, timeout: float = 30) -> str:
        """The id of the (first) run an event started, once it exists."""

        def first_run() -> str | None:
            runs = self.api(f"/events/{event_id}")["runs"]
            return str(runs[0]["id"]) if runs else None

        return wait_until(first_run, timeout, f"a run of event {event_id}")

    def run_until(self, run_id: str, *statuses: str, timeout: float = 60) -> Any:
        """The run page's data once the run's status is one of ``statuses``."""
        return wait_until(
            lambda: (
                (found := self.api(f"/runs/{run_id}"))["run"]["status"] in statuses
                and found
            ),
            timeout,
            f"run {run_id} to be {' or '.join(statuses)}",
            interval=0.2,
        )


def start_stack(root: Path) -> Stack:
    app, executor = start_app_and_executor(
        "dashboard_app:app", cwd=HERE, root=root, functions=FUNCTIONS
    )
    return Stack(executor, app)


def stop_stack(stack: Stack) -> None:
    stack.executor.stop()
    stack.app.stop()
