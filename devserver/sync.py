"""Out-of-band sync of apps given with ``-u``: PUT their serve endpoints.

The PUT makes the SDK post its configuration to ``/fn/register``; the SDK
relays that answer as the PUT's body, so an ``error`` key there means the
registration failed even if the status is 200, and its ``sync_id`` names
the registration the poll caused.

A registration this poller did not cause takes precedence: once the app a
polled URL served is registered from another URL by someone else (``digest
tunnel up`` syncing through the tunnel, the app itself), that polled URL is
no longer re-synced, so the next poll does not move the app back. Polling
resumes if the app is registered from the polled URL again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from devserver import jsonio
from devserver.apps import SERVER_KIND
from devserver.caller import USER_AGENT
from devserver.logtext import get_logger
from devserver.signing import RequestSigner
from devserver.store import Store

logger = get_logger("digest.devserver.sync")

# While an app has never answered, try it this often (seconds) rather than
# waiting a full poll interval.
_UNSYNCED_RETRY_S = 0.5


class AppSyncer:
    def __init__(
        self,
        urls: list[str],
        poll_interval: float,
        *,
        store: Store | None = None,
        signer: RequestSigner | None = None,
    ) -> None:
        self._urls = list(urls)
        # Set in cloud mode: the PUT is signed, as the official server does.
        self._signer = signer
        self._poll_interval = poll_interval
        # Where registrations land; without it no precedence is kept.
        self._store = store
        self._synced: set[str] = set()
        # URLs that synced at least once since start; once all have, the
        # dispatcher may call apps (see wait_until_synced).
        self._ever_synced: set[str] = set()
        self._all_synced = asyncio.Event()
        # Per polled URL: the app it served at its last sync, and the sync id
        # of the registration that poll caused.
        self._served: dict[str, str] = {}
        self._own_syncs: dict[str, str] = {}
        # Polled URLs left alone because their app was registered elsewhere,
        # with that other URL.
        self._yielded: dict[str, str] = {}
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

    async def wait_until_synced(self, limit: float) -> None:
        """Return once every polled URL has synced, or after ``limit`` s.

        A run in flight names its app's URL as it was stored before this
        start; after a restart with a new ``-u`` (a tunnel at a new address)
        that URL may be dead or, worse, still answer. Calls wait for the
        first syncs so that they go to the URLs given now.
        """
        if not self._urls or limit <= 0 or self._all_synced.is_set():
            return
        logger.info(
            "calls to apps wait until %s has synced (at most %g s), so that "
            "no run calls an app at a URL stored before this start",
            ", ".join(self._urls),
            limit,
        )
        try:
            await asyncio.wait_for(self._all_synced.wait(), limit)
        except TimeoutError:
            missing = [url for url in self._urls if url not in self._ever_synced]
            logger.warning(
                "stopped waiting after %g s: %s has not synced; calls to apps "
                "start now, at the URLs the apps registered before "
                "(--startup-sync-wait sets the wait)",
                limit,
                ", ".join(missing),
            )
        else:
            logger.info("every app given with -u has synced; calls to apps start")

    async def _loop(self) -> None:
        while True:
            await asyncio.gather(*(self._poll(url) for url in self._urls))
            pending = any(
                url not in self._synced and url not in self._yielded
                for url in self._urls
            )
            await asyncio.sleep(
                min(_UNSYNCED_RETRY_S, self._poll_interval)
                if pending
                else self._poll_interval
            )

    async def _poll(self, url: str) -> None:
        elsewhere = self._registered_elsewhere(url)
        if elsewhere is not None:
            if self._yielded.get(url) != elsewhere:
                self._yielded[url] = elsewhere
                logger.warning(
                    "app %s was registered from %s by a sync this executor did "
                    "not make (digest tunnel up, or the app itself): its calls "
                    "go there, and %s is no longer re-synced; to go back, sync "
                    "%s again (curl -X PUT %s) or restart the executor",
                    self._served[url],
                    elsewhere,
                    url,
                    url,
                    url,
                )
            return
        if self._yielded.pop(url, None) is not None:
            logger.info(
                "app %s is registered from %s again; re-syncing it every %g s",
                self._served[url],
                url,
                self._poll_interval,
            )
        body = await self._register(url)
        if body is not None:
            self._remember(url, body)

    def _registered_elsewhere(self, url: str) -> str | None:
        """The URL the app polled at ``url`` was since registered from by a
        sync not of this poller, if any."""
        app = self._served.get(url)
        if app is None or self._store is None:
            return None
        row = self._store.db.execute(
            "SELECT url, sync_id FROM apps WHERE app_id = ?", (app,)
        ).fetchone()
        if row is None or row["url"] == url:
            return None
        # Another -u URL serving the same app: both stay polled (it flips).
        if row["sync_id"] in self._own_syncs.values():
            return None
        return str(row["url"])

    def _remember(self, url: str, body: dict[str, Any]) -> None:
        """Note which registration the poll of ``url`` caused.

        The sync id in the relayed answer names it exactly; without one (an
        SDK that does not relay the answer), the app's registration from
        ``url`` is taken as the poll's. A registration from elsewhere that
        lands while the PUT is in flight, just before the poll's own, is
        overwritten by it and goes unnoticed: the other side has to sync
        again.
        """
        if self._store is None:
            return
        db = self._store.db
        sync_id = body.get("sync_id")
        row = None
        if isinstance(sync_id, str):
            row = db.execute(
                "SELECT app_id, sync_id FROM apps WHERE sync_id = ?", (sync_id,)
            ).fetchone()
        if row is None:
            row = db.execute(
                "SELECT app_id, sync_id FROM apps WHERE url = ?", (url,)
            ).fetchone()
        if row is not None:
            self._served[url] = str(row["app_id"])
            self._own_syncs[url] = str(row["sync_id"])

    async def sync(self, url: str) -> bool:
        """PUT one app; True when its registration went through."""
        return await self._register(url) is not None

    async def _register(self, url: str) -> dict[str, Any] | None:
        """PUT one app; the SDK's relayed answer when it went through."""
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
            body = jsonio.loads(response.content)
        except (httpx.HTTPError, ValueError) as exc:
            # Apps are often started after the executor: stay quiet.
            logger.debug("app at %s not reachable yet: %s", url, exc)
            return self._mark(url, None)
        if response.status_code != 200 or (isinstance(body, dict) and "error" in body):
            problem = f"HTTP {response.status_code}: {body}"
            if self._problems.get(url) != problem:
                logger.warning("app at %s refused the sync: %s", url, problem)
                self._problems[url] = problem
            return self._mark(url, None)
        self._problems.pop(url, None)
        if url not in self._synced:
            logger.info("app at %s synced", url)
        return self._mark(url, body if isinstance(body, dict) else {})

    def _mark(self, url: str, body: dict[str, Any] | None) -> dict[str, Any] | None:
        if body is None:
            self._synced.discard(url)
            return None
        self._synced.add(url)
        self._ever_synced.add(url)
        if self._ever_synced.issuperset(self._urls):
            self._all_synced.set()
        return body
