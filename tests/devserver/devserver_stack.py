"""The executor + test app pair that the devserver tests run against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devserver.testing import (
    ServiceProcess,
    start_app_and_executor,
    start_executor,
    wait_for_functions,
)

HERE = Path(__file__).parent
APP_ID = "devserver-tests"
FUNCTIONS = [f"{APP_ID}-{name}" for name in ("multi", "parallel", "flaky", "slow")]


@dataclass
class Stack:
    """A running executor, the test app it serves and the app's marker dir."""

    executor: ServiceProcess
    app: ServiceProcess
    markers: Path
    data_dir: Path

    @property
    def url(self) -> str:
        return self.executor.url

    def runs_of(self, key: str, step: str) -> int:
        """How many times the step body ran for the event with ``data.key``."""
        path = self.markers / f"{key}.{step}"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def restart_executor(self) -> None:
        """Start the executor again on the same port and data dir."""
        self.executor = start_executor(
            self.data_dir, [self.app.extras["serve_url"]], port=self.executor.port
        )
        wait_for_functions(self.url, FUNCTIONS)


def start_stack(root: Path) -> Stack:
    markers = root / "markers"
    markers.mkdir(parents=True)
    app, executor = start_app_and_executor(
        "sdk_app:app",
        cwd=HERE,
        root=root,
        functions=FUNCTIONS,
        env={"MARKER_DIR": str(markers)},
    )
    return Stack(executor, app, markers, root / "executor")


def stop_stack(stack: Stack) -> None:
    stack.executor.stop()
    stack.app.stop()
