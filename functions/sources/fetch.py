"""Fetching a URL on a user's behalf without letting it reach our network.

Every hop is checked the same way: http or https only; the host name is
resolved once, every address it resolves to must pass the address policy,
and the connection goes to that vetted address (the Host header and TLS
server name keep the original name), so a second lookup cannot swap in
another address. Redirects are followed here, one checked hop at a time.
The body is read in pieces and abandoned past its cap; connect and read
timeouts and a deadline for the whole fetch bound the time.

FetchRefused is a policy refusal or a permanent answer: retrying cannot
help. FetchFailed may work on a later attempt (timeouts, 5xx, refused
connections).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

from functions.sources.address_policy import AddressRefused, IPAddress, check_address

ALLOWED_SCHEMES = frozenset({"http", "https"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
TEXT_TYPES = frozenset(
    {
        "text/plain",
        "text/markdown",
        "text/x-markdown",
        "text/x-rst",
        "text/prs.fallenstein.rst",
    }
)
USER_AGENT = "Digest/0.1 (document summaries)"

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


class FetchRefused(Exception):
    """The URL may not be fetched, or its answer cannot be used."""


class FetchFailed(Exception):
    """The fetch did not work this time; a later attempt may."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 5_000_000
    connect_seconds: float = 5.0
    read_seconds: float = 10.0
    total_seconds: float = 30.0
    max_redirects: int = 5
    # Tests only: loopback ports the policy lets through (see settings).
    loopback_ports: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Fetched:
    url: str
    media_type: str
    charset: str | None
    body: bytes


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    )
    # An IPv6 link-local answer may carry a zone ("fe80::1%eth0").
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def parse_url(url: str) -> httpx.URL:
    """The URL if its shape may be fetched; FetchRefused saying why if not."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchRefused(f"not a valid URL ({exc})") from None
    if not parsed.scheme:
        raise FetchRefused(
            "the URL has no scheme; give a full URL starting with http:// or https://"
        )
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise FetchRefused(
            f"the scheme {parsed.scheme!r} is not fetched; "
            "give an http:// or https:// URL"
        )
    if not parsed.host:
        raise FetchRefused("the URL names no host")
    if any(char.isspace() or char in "%<>\\^`{|}" for char in parsed.host):
        raise FetchRefused(f"the host {parsed.host!r} is not a valid host name")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise FetchRefused(f"the port {parsed.port} is out of range (1-65535)")
    if parsed.userinfo:
        raise FetchRefused("URLs with a user name or password are not fetched")
    return parsed


async def fetch(
    url: str,
    limits: FetchLimits | None = None,
    *,
    resolver: Resolver = system_resolver,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Fetched:
    limits = limits or FetchLimits()
    target = parse_url(url)
    timeout = httpx.Timeout(
        connect=limits.connect_seconds,
        read=limits.read_seconds,
        write=limits.read_seconds,
        pool=limits.connect_seconds,
    )
    try:
        async with (
            asyncio.timeout(limits.total_seconds),
            # trust_env=False: a proxy from the environment would make the
            # connection somewhere other than the vetted address.
            httpx.AsyncClient(
                transport=transport, trust_env=False, timeout=timeout
            ) as client,
        ):
            came_from: httpx.URL | None = None
            for _hop in range(limits.max_redirects + 1):
                try:
                    address = await vetted_address(target, limits, resolver)
                except FetchRefused as exc:
                    if came_from is None:
                        raise
                    raise FetchRefused(f"{came_from} redirects to {exc}") from None
                answer = await _get(client, target, address, limits)
                if isinstance(answer, Fetched):
                    return answer
                came_from, target = target, answer
    except TimeoutError:
        raise FetchFailed(
            f"{url} did not answer in full within {limits.total_seconds:.0f} s"
        ) from None
    raise FetchRefused(f"{url} redirects more than {limits.max_redirects} times")


async def vetted_address(
    target: httpx.URL, limits: FetchLimits, resolver: Resolver
) -> IPAddress:
    """The address to connect to for `target`, once every address the
    name resolves to has passed the policy."""
    host = target.host
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        addresses: Sequence[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = await resolver(host, port)
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_AGAIN:
                raise FetchFailed(f"could not resolve {host} now ({exc})") from None
            raise FetchRefused(f"the host name {host} does not resolve") from None
    if not addresses:
        raise FetchRefused(f"the host name {host} resolves to no address")
    try:
        for address in addresses:
            check_address(address, port, loopback_ports=limits.loopback_ports)
    except AddressRefused as exc:
        raise FetchRefused(f"refused {target.host}: {exc}") from None
    return addresses[0]


async def _get(
    client: httpx.AsyncClient,
    target: httpx.URL,
    address: IPAddress,
    limits: FetchLimits,
) -> Fetched | httpx.URL:
    """The answer's body, or the checked URL it redirects to."""
    extensions = {}
    if target.scheme == "https" and target.host != str(address):
        extensions["sni_hostname"] = target.host
    request = client.build_request(
        "GET",
        target.copy_with(host=str(address)),
        headers={
            "Host": target.netloc.decode("ascii"),
            "User-Agent": USER_AGENT,
            "Accept": "text/html, text/plain, text/markdown, text/x-rst, */*;q=0.1",
            # A compressed body could expand far past the cap in one piece.
            "Accept-Encoding": "identity",
        },
        extensions=extensions,
    )
    shown = str(target)
    try:
        response = await client.send(request, stream=True)
    except httpx.TimeoutException:
        raise FetchFailed(f"{shown} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"could not reach {shown} ({type(exc).__name__})") from None
    try:
        return await _read(response, target, limits)
    except httpx.TimeoutException:
        raise FetchFailed(f"{shown} stopped sending before the end") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"reading {shown} failed ({type(exc).__name__})") from None
    finally:
        await response.aclose()


async def _read(
    response: httpx.Response, target: httpx.URL, limits: FetchLimits
) -> Fetched | httpx.URL:
    shown, status = str(target), response.status_code
    if response.is_redirect:
        location = response.headers["location"]
        try:
            return parse_url(str(target.join(location)))
        except FetchRefused as exc:
            raise FetchRefused(
                f"{shown} redirects to {location[:200]}: {exc}"
            ) from None
    if status == 429 or status >= 500:
        raise FetchFailed(f"{shown} answered {status} {response.reason_phrase}")
    if not 200 <= status < 300:
        raise FetchRefused(f"{shown} answered {status} {response.reason_phrase}")
    media_type, charset = _content_type(response.headers.get("content-type", ""))
    if media_type and media_type not in HTML_TYPES | TEXT_TYPES:
        raise FetchRefused(
            f"{shown} is {media_type}; only HTML pages and plain text, Markdown "
            "or reST documents are summarised"
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchRefused(_too_large(shown, limits))
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) > limits.max_bytes:
            raise FetchRefused(_too_large(shown, limits))
    return Fetched(url=shown, media_type=media_type, charset=charset, body=bytes(body))


def _content_type(header: str) -> tuple[str, str | None]:
    media_type, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return media_type.strip().lower(), charset


def _too_large(shown: str, limits: FetchLimits) -> str:
    return (
        f"{shown} sends more than {limits.max_bytes // 1_000_000} MB; "
        "the fetch was stopped there"
    )
