"""Out-of-band sync of apps given with ``-u``: PUT their serve endpoints.

The PUT makes the SDK post its configuration to ``/fn/register``; the SDK
relays that answer as the PUT's body, so an ``error`` key there means the
registration failed even if the status is 200.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from devserver.apps import SERVER_KIND
from devserver.caller import USER_AGENT
from devserver.signing import RequestSigner

logger = logging.getLogger("digest.devserver.sync")

# While an app has never answered, try it this often (seconds) rather than
# waiting a full poll interval.
_UNSYNCED_RETRY_S = 0.5


class AppSyncer:
    def __init__(
        self,
        urls: list[str],
        poll_interval: float,
        *,
        signer: RequestSigner | None = None,
    ) -> None:
        self._urls = list(urls)
        # Set in cloud mode: the PUT is signed, as the official server does.
        self._signer = signer
        self._poll_interval = poll_interval
        self._synced: set[str] = set()
        # Last refusal per URL, so a persistent problem is logged once.
        self._problems: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0),
            headers={"user-agent": USER_AGENT},
            # Shorter than the app's keep-alive, as in caller.py.
            limits=httpx.Limits(keepalive_expiry=2.0),
        )

    def start(self) -> None:
        if self._urls:
            self._task = asyncio.create_task(self._loop(), name="devserver-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()

    async def _loop(self) -> None:
        while True:
            await asyncio.gather(*(self.sync(url) for url in self._urls))
            pending = any(url not in self._synced for url in self._urls)
            await asyncio.sleep(
                min(_UNSYNCED_RETRY_S, self._poll_interval)
                if pending
                else self._poll_interval
            )

    async def sync(self, url: str) -> bool:
        """PUT one app; True when its registration went through."""
        try:
            if self._signer is None:
                response = await self._client.put(
                    url,
                    json={"url": url},
                    headers={"x-inngest-server-kind": SERVER_KIND},
                )
            else:
                response = await self._signer.send(
                    self._client,
                    "PUT",
                    url,
                    {"url": url},
                    {
                        "content-type": "application/json",
                        "x-inngest-server-kind": "cloud",
                    },
                )
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # Apps are often started after the executor: stay quiet.
            logger.debug("app at %s not reachable yet: %s", url, exc)
            return self._mark(url, ok=False)
        if response.status_code != 200 or (isinstance(body, dict) and "error" in body):
            problem = f"HTTP {response.status_code}: {body}"
            if self._problems.get(url) != problem:
                logger.warning("app at %s refused the sync: %s", url, problem)
                self._problems[url] = problem
            return self._mark(url, ok=False)
        self._problems.pop(url, None)
        if url not in self._synced:
            logger.info("app at %s synced", url)
        return self._mark(url, ok=True)

    def _mark(self, url: str, *, ok: bool) -> bool:
        if ok:
            self._synced.add(url)
        else:
            self._synced.discard(url)
        return ok
