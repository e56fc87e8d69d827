"""The URL fetch policy on its own: every refusal happens before a socket opens.

The resolver is injected, so a host name can "resolve" to any address
without a DNS query, and the socket module is booby-trapped so that any
connection attempt fails the test. No packet leaves the machine.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence

import httpx
import pytest

from functions.sources.address_policy import IPAddress, refusal
from functions.sources.decode import NotText, decode_text
from functions.sources.fetch import FetchLimits, FetchRefused, fetch, parse_url


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the policy let a connection start")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def resolving_to(*addresses: str):  # type: ignore[no-untyped-def]
    asked: list[str] = []

    async def resolve(host: str, _port: int) -> Sequence[IPAddress]:
        asked.append(host)
        return [ipaddress.ip_address(a) for a in addresses]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


class NoTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a request went out to {request.url}")


REFUSED = [
    ("10.1.2.3", "private address (10/8)"),
    ("172.16.0.1", "private address (172.16/12)"),
    ("172.31.255.254", "private address (172.16/12)"),
    ("192.168.1.1", "private address (192.168/16)"),
    ("169.254.1.1", "link-local"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("fc00::1", "unique-local"),
    ("fdff:ffff::1", "unique-local"),
    ("fe80::1", "link-local"),
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("2002:a9fe:a9fe::1", "metadata"),
    ("64:ff9b::a00:1", "private"),
]


@pytest.mark.parametrize(("address", "rule"), REFUSED)
def test_policy_names_the_rule(address: str, rule: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None
    assert rule in why


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("address", "rule"), REFUSED)
async def test_name_resolving_to_a_refused_range_is_never_connected(
    address: str, rule: str
) -> None:
    resolver = resolving_to(address)
    with pytest.raises(FetchRefused, match=re.escape(rule)):
        await fetch(
            "https://docs.example.test/page", resolver=resolver, transport=NoTransport()
        )
    assert resolver.asked == ["docs.example.test"]


async def test_one_refused_address_among_public_ones_refuses() -> None:
    resolver = resolving_to("93.184.215.14", "10.0.0.7")
    with pytest.raises(FetchRefused, match="10/8"):
        await fetch(
            "http://mixed.example.test/", resolver=resolver, transport=NoTransport()
        )


async def test_literal_address_is_checked_without_resolving() -> None:
    resolver = resolving_to("93.184.215.14")
    with pytest.raises(FetchRefused, match="link-local"):
        await fetch("http://[fe80::1]/x", resolver=resolver, transport=NoTransport())
    assert resolver.asked == []


async def test_loopback_allowance_is_per_port() -> None:
    limits = FetchLimits(loopback_ports=frozenset({5000}))
    with pytest.raises(FetchRefused, match="loopback"):
        await fetch("http://127.0.0.1:5001/", limits, transport=NoTransport())


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.test/a", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://example.test/", "scheme 'gopher'"),
        ("javascript:alert(1)", "scheme"),
        ("//example.test/a", "scheme"),
        ("http://user:pw@example.test/", "password"),
        ("http:///nohost", "no host"),
    ],
)
def test_url_shapes_refused(url: str, says: str) -> None:
    with pytest.raises(FetchRefused, match=says):
        parse_url(url)


def test_decoding_rules() -> None:
    assert decode_text("naïve café".encode()) == "naïve café"
    assert decode_text("\ufeffwith bom".encode()) == "with bom"
    assert decode_text("utf sixteen".encode("utf-16")) == "utf sixteen"
    assert decode_text("caf\xe9 au lait".encode("latin-1")) == "café au lait"
    for binary in [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", bytes(range(256)) * 4]:
        with pytest.raises(NotText):
            decode_text(binary)
