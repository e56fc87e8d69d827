"""The lan tunnel for real, with loopback addresses standing in for the
local network: the URL is written, the app re-synced through the tunnel,
and after the address changes the executor calls the new address only."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import CORPUS, Stack, start_stack
from tests.tunnel_helpers import FIRST, ROOT, SECOND, DigestProcess, Witness
from tunnel.lan import LanTunnel


def test_lan_relay_forwards_to_the_loopback_service(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens yet: the relay still opens, and says so per connection.
    tunnel = LanTunnel(FIRST)
    assert tunnel.open(port) == f"http://{FIRST}:{port}"
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{FIRST}:{port}/", timeout=5)
    finally:
        tunnel.close()
    assert tunnel.open(port) == f"http://{FIRST}:{port}"  # reopens after close
    tunnel.close()


def tunnel_process(folder: Path, address: str, port: int) -> DigestProcess:
    """`digest tunnel up --target backend --provider lan` in `folder`."""
    return DigestProcess(
        folder,
        [
            *("tunnel", "up", "-v", "--target", "backend"),
            *("--provider", "lan", "--port", str(port)),
        ],
        {"TUNNEL_LAN_ADDRESS": address},
        f"tunnel-{address}",
    )


@pytest.fixture
def lan_stack(tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(tmp_path / "stack", retry_interval=0.5)
    yield running
    running.backend.stop()
    running.executor.stop()


def synced_urls(running: Stack) -> set[str]:
    functions = httpx.get(running.executor.url + "/dev", timeout=10).json()["functions"]
    return {f["url"].split("?")[0] for f in functions}


def test_url_change_resyncs_and_the_old_address_gets_no_call(
    lan_stack: Stack, tmp_path: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(ROOT / ".env.dev", folder / ".env.dev")
    port = int(lan_stack.backend.url.rsplit(":", 1)[1])
    text = (CORPUS / "pep-0020.rst").read_text()

    first = tunnel_process(folder, FIRST, port)
    try:
        said = first.wait_for("re-synced")
        assert f"wrote PUBLIC_URL=http://{FIRST}:{port}" in said
        assert "changed" not in said
        assert synced_urls(lan_stack) == {f"http://{FIRST}:{port}/api/inngest"}
        job = lan_stack.wait(lan_stack.submit(text))
        assert job["status"] == "succeeded", job
        assert "relaying a connection" in first.text()
    finally:
        first.stop()

    # The old address stays observed: any call to it is counted.
    witness = Witness(FIRST, port)
    second = tunnel_process(folder, SECOND, port)
    try:
        said = second.wait_for("re-synced")
        assert (
            f"the URL changed: it was http://{FIRST}:{port}, "
            f"it is now http://{SECOND}:{port}"
        ) in said
        assert synced_urls(lan_stack) == {f"http://{SECOND}:{port}/api/inngest"}
        env_file = (folder / ".env.dev.local").read_text()
        assert f"PUBLIC_URL=http://{SECOND}:{port}" in env_file
        assert FIRST not in env_file
        relayed_before = second.text().count("relaying a connection")
        job = lan_stack.wait(lan_stack.submit(text))
        assert job["status"] == "succeeded", job
        assert second.text().count("relaying a connection") > relayed_before
    finally:
        second.stop()
        witness.close()
    assert witness.connections == 0
    assert "moved from" in lan_stack.executor.log_tail(200)
