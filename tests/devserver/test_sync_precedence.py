"""Which URL the executor calls an app at, when the app's address changes.

Two cases from `digest dev` with a tunnel, played with the lan tunnel's
relay on loopback addresses standing in for the local network:

* the executor restarts with `-u` at a new address (127.0.0.3) while a run
  is in flight: the run must not call the URL stored before (127.0.0.2),
  where something may still answer, as an expired tunnel URL does;
* the app is re-synced through a tunnel (127.0.0.2) by someone else than
  the executor's poll: the poll of the local `-u` URL must not move it back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devserver_stack import FUNCTIONS, HERE

from devserver.testing import (
    ServiceProcess,
    free_port,
    get_json,
    run_steps,
    send_event,
    start_app,
    start_executor,
    wait_for_functions,
    wait_for_run,
    wait_until,
)
from digest.stack import sync_app
from tests.tunnel_helpers import FIRST, SECOND, Witness
from tunnel.lan import Relay

NewKey = Callable[[], str]
POLL_S = 0.2


class CountingRelay(Relay):
    """The lan tunnel's relay, counting the connections it relays."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port, "127.0.0.1", port)
        self.connections = 0

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        await super()._relay(reader, writer)


class Setup:
    """The test app on 127.0.0.1, an executor that will serve it, and
    whatever relays and witnesses a test opens (closed at the end)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.markers = root / "markers"
        self.markers.mkdir()
        self.data_dir = root / "executor"
        self.executor_port = free_port()
        self.executor: ServiceProcess | None = None
        self.relays: list[Relay] = []
        self.witnesses: list[Witness] = []
        self.app = start_app(
            "sdk_app:app",
            cwd=HERE,
            log_dir=root,
            env={
                "EXECUTOR_URL": f"http://127.0.0.1:{self.executor_port}",
                "MARKER_DIR": str(self.markers),
            },
        )

    @property
    def port(self) -> int:
        return self.app.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.executor_port}"

    def serve_url(self, host: str) -> str:
        return f"http://{host}:{self.port}/api/inngest"

    def relay(self, host: str) -> CountingRelay:
        """Open the app to `host` on the same port, as `tunnel up` does."""
        relay = CountingRelay(host, self.port)
        relay.start()
        self.relays.append(relay)
        return relay

    def witness(self, host: str) -> Witness:
        witness = Witness(host, self.port)
        self.witnesses.append(witness)
        return witness

    def start_executor(self, sdk_url: str, *extra_args: str) -> None:
        self.executor = start_executor(
            self.data_dir,
            [sdk_url],
            port=self.executor_port,
            extra_args=extra_args,
        )
        wait_for_functions(self.url, FUNCTIONS)

    def app_urls(self) -> set[str]:
        """Every URL the executor would call the test app at."""
        (app,) = get_json(f"{self.url}/v1/apps")
        return {app["url"], *(f["url"].split("?")[0] for f in app["functions"])}

    def close(self) -> None:
        if self.executor is not None:
            self.executor.stop()
        for relay in self.relays:
            relay.stop()
        for witness in self.witnesses:
            witness.close()
        self.app.stop()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    opened = Setup(tmp_path)
    yield opened
    opened.close()


def test_restart_at_a_new_address_never_calls_the_old_one(
    setup: Setup, key: NewKey
) -> None:
    first = setup.relay(FIRST)
    setup.start_executor(setup.serve_url(FIRST))
    assert setup.app_urls() == {setup.serve_url(FIRST)}

    k = key()
    event_id = send_event(setup.url, "test/slow", {"key": k, "pause": 1.5})
    wait_until(lambda: (setup.markers / f"{k}.b").exists(), 20, "step b to start")
    assert setup.executor is not None
    setup.executor.kill()

    # The tunnel comes back at a new address; the old one still accepts
    # connections (and drops them), as an expired tunnel URL would.
    first.stop()
    witness = setup.witness(FIRST)
    setup.relay(SECOND)
    setup.start_executor(setup.serve_url(SECOND))

    run = wait_for_run(setup.url, event_id, timeout=60)
    assert (run["status"], run["output"]) == ("Completed", ["a", "b", "c"])
    assert witness.connections == 0
    assert setup.app_urls() == {setup.serve_url(SECOND)}
    # Step b, cut short by the kill, was called again without spending an
    # attempt; nothing failed.
    steps = run_steps(setup.url, run["run_id"])
    assert [(s["name"], s["attempts"], s["error"]) for s in steps] == [
        ("a", 1, None),
        ("b", 1, None),
        ("c", 1, None),
    ]


def test_startup_wait_is_bounded_when_the_app_never_syncs(
    setup: Setup, key: NewKey
) -> None:
    setup.start_executor(setup.serve_url("127.0.0.1"))
    assert setup.executor is not None
    setup.executor.stop()
    # Nothing listens on the -u URL given now: after the wait, calls go to
    # the URL the app registered before.
    dead = f"http://127.0.0.1:{free_port()}/api/inngest"
    setup.executor = start_executor(
        setup.data_dir,
        [dead],
        port=setup.executor_port,
        extra_args=["--startup-sync-wait", "1"],
    )
    k = key()
    run = wait_for_run(setup.url, send_event(setup.url, "test/count", {"key": k}))
    assert (run["status"], run["output"]) == ("Completed", 1)
    log = setup.executor.log()
    assert f"calls to apps wait until {dead} has synced" in log
    assert f"stopped waiting after 1 s: {dead} has not synced" in log


def test_a_sync_through_a_tunnel_is_not_undone_by_the_poll(
    setup: Setup, key: NewKey
) -> None:
    local = setup.serve_url("127.0.0.1")
    setup.start_executor(local, "--poll-interval", str(POLL_S))
    assert setup.app_urls() == {local}

    tunnel = setup.relay(FIRST)
    sync_app(f"http://{FIRST}:{setup.port}", timeout=20)
    assert setup.app_urls() == {setup.serve_url(FIRST)}

    # Many poll intervals: each poll of the local URL would move it back.
    deadline = time.monotonic() + 15 * POLL_S
    while time.monotonic() < deadline:
        assert setup.app_urls() == {setup.serve_url(FIRST)}
        time.sleep(POLL_S / 2)

    before = tunnel.connections
    k = key()
    run = wait_for_run(setup.url, send_event(setup.url, "test/count", {"key": k}))
    assert (run["status"], run["output"]) == ("Completed", 1)
    assert tunnel.connections > before
    executor = setup.executor
    assert executor is not None
    log = executor.log()
    assert (
        f"was registered from {setup.serve_url(FIRST)} by a sync this executor "
        "did not make" in log
    )
    assert log.count("is no longer re-synced") == 1

    # Syncing the local URL again by hand brings the polling back.
    sync_app(f"http://127.0.0.1:{setup.port}", timeout=20)
    resumed = f"is registered from {local} again"
    wait_until(lambda: resumed in executor.log(), 20, "the polling to resume")
    assert setup.app_urls() == {local}
