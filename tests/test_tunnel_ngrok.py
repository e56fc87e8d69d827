"""The ngrok provider up to ngrok's service, which these machines cannot
reach: each test's name says whether the agent really runs (pointed at a
loopback port instead of ngrok) or ngrok's cloud is stood in for."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from digest.settings import Settings
from digest.tunnel_up import open_and_record
from tunnel import TunnelError, make_tunnel
from tunnel.ngrok_agent import NgrokTunnel


class FakeListener:
    def __init__(self, url: str) -> None:
        self._url = url

    def url(self) -> str:
        return self._url


class FakeForward:
    """Stands in for `ngrok.forward`: records what the agent was asked."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, addr: str, **options: Any) -> FakeListener:
        self.calls.append((addr, options))
        return FakeListener(self.url)


def test_missing_authtoken_is_refused_without_ngrok_cloud() -> None:
    tunnel = make_tunnel("ngrok", Settings(app_env="dev"))
    with pytest.raises(TunnelError, match="NGROK_AUTHTOKEN is not set"):
        tunnel.open(8288)


def test_a_failed_connection_is_one_clear_error_without_ngrok_cloud() -> None:
    # The real agent, pointed at a loopback port where nothing listens.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    tunnel = NgrokTunnel("token-123", server_addr=f"127.0.0.1:{port}")
    with pytest.raises(TunnelError) as failed:
        tunnel.open(8288)
    message = str(failed.value)
    assert "failed to connect session" in message
    assert "NGROK_AUTHTOKEN" in message
    assert "token-123" not in message


def test_a_domain_with_a_scheme_is_refused_without_ngrok_cloud() -> None:
    tunnel = NgrokTunnel("token", "https://digest.ngrok.app")
    with pytest.raises(TunnelError, match="bare domain"):
        tunnel.open(8288)


def test_reserved_domain_and_url_handling_ngrok_cloud_mocked() -> None:
    forward = FakeForward("https://digest-dev.ngrok.app/")
    tunnel = NgrokTunnel("token", "digest-dev.ngrok.app", forward=forward)
    assert tunnel.open(8000) == "https://digest-dev.ngrok.app"
    assert tunnel.open(8000) == "https://digest-dev.ngrok.app"  # idempotent
    assert forward.calls == [
        ("127.0.0.1:8000", {"authtoken": "token", "domain": "digest-dev.ngrok.app"})
    ]
    tunnel.close()


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("http://plain.ngrok.app", "not an https URL"),
        ("https://other.ngrok.app", "not the reserved NGROK_DOMAIN"),
    ],
)
def test_unexpected_urls_are_refused_ngrok_cloud_mocked(given: str, says: str) -> None:
    tunnel = NgrokTunnel("token", "digest-dev.ngrok.app", forward=FakeForward(given))
    with pytest.raises(TunnelError, match=says):
        tunnel.open(8000)


def test_url_is_written_and_a_change_announced_ngrok_cloud_mocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env.dev.local").write_text("NGROK_AUTHTOKEN=kept\n")
    settings = Settings(app_env="dev", ngrok_authtoken="token")
    said: list[str] = []
    urls = iter(["https://a1.ngrok-free.app", "https://b2.ngrok-free.app"])

    def open_once() -> None:
        monkeypatch.setattr(
            "tunnel.factory.NgrokTunnel",
            lambda token, domain: NgrokTunnel(
                token, domain, forward=FakeForward(next(urls))
            ),
        )
        opened = open_and_record(settings, "ngrok", 8288, "executor", said.append)
        assert opened.setting == "INNGEST_BASE_URL"
        # As a process ending would: the next tunnel may write the setting.
        assert opened.hold is not None
        opened.hold.close()

    open_once()
    assert not any("changed" in line for line in said)
    open_once()
    assert said[-1] == (
        "the URL changed: it was https://a1.ngrok-free.app, "
        "it is now https://b2.ngrok-free.app"
    )
    text = (tmp_path / ".env.dev.local").read_text()
    assert "NGROK_AUTHTOKEN=kept" in text
    assert "INNGEST_BASE_URL=https://b2.ngrok-free.app" in text
    assert "a1" not in text
