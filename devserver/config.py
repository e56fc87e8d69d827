"""Settings of the embedded executor, gathered in one dataclass."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Where the executor keeps its SQLite file when no data dir is given.
DATA_DIR_ENV = "DIGEST_HOME"

# The official server retries a function 4 times (5 attempts) when the SDK
# does not say otherwise; the SDK omits the field unless `retries=` is set.
DEFAULT_RETRIES = 4
MAX_RETRIES = 20


def _default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or "./var")


@dataclass
class ExecutorConfig:
    """How the executor listens, where it stores state and how it retries.

    Attributes:
        host: interface to bind.
        port: TCP port (8288 is what the SDK expects in dev mode).
        data_dir: directory holding ``executor.db``.
        sdk_urls: app serve endpoints to sync at start and every
            ``poll_interval`` seconds.
        retry_interval: fixed delay between attempts in seconds; ``None``
            uses the official backoff table with jitter.
        poll_interval: seconds between re-syncs of ``sdk_urls``.
        startup_sync_wait: at start, calls to apps wait until every
            ``sdk_urls`` entry has synced, at most this many seconds, so a
            run in flight never calls a URL stored before (0: no wait).
        call_timeout: seconds one call to an app may take.
        slow_call_warning: seconds after which a call still without an
            answer is logged as lagging, naming its run and step.
        workers: how many calls may be in flight at once.
        default_retries: retries used when a function does not set any.
        cron_tick: for tests, the real seconds one cron minute lasts
            (``* * * * *`` then fires that often); ``None`` is real time.
        signing_key: turns on cloud mode (protocol 5): calls are signed,
            answers checked, and the REST API and ``/fn/register`` need the
            bearer of this key or of ``signing_key_fallback``.
        signing_key_fallback: the previous key during a rotation.
        event_keys: in cloud mode, the only keys ``/e/{key}`` accepts.
    """

    host: str = "127.0.0.1"
    port: int = 8288
    data_dir: Path = field(default_factory=_default_data_dir)
    sdk_urls: list[str] = field(default_factory=list)
    retry_interval: float | None = None
    poll_interval: float = 5.0
    startup_sync_wait: float = 30.0
    call_timeout: float = 2 * 60 * 60.0
    slow_call_warning: float = 60.0
    workers: int = 64
    default_retries: int = DEFAULT_RETRIES
    cron_tick: float | None = None
    # Secrets are kept out of the dataclass repr so a logged config never
    # shows them.
    signing_key: str | None = field(default=None, repr=False)
    signing_key_fallback: str | None = field(default=None, repr=False)
    event_keys: list[str] = field(default_factory=list, repr=False)

    @property
    def server_kind(self) -> str:
        """``x-inngest-server-kind``: ``cloud`` with a signing key, else ``dev``."""
        return "cloud" if self.signing_key else "dev"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "executor.db"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
