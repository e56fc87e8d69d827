"""Digest's configuration: every setting in one class, read once.

Precedence, highest first: the process environment, `.env.{APP_ENV}.local`
(untracked, for secrets), `.env.{APP_ENV}` (tracked, no secrets), the
defaults below. `APP_ENV` itself comes from the process environment only,
since it decides which files are read.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

AppEnv = Literal["dev", "prod"]

# Signs and checks bearer tokens in dev when AUTH_JWT_SECRET is unset. It is
# public (it is in this file), so prod never accepts it.
DEV_JWT_SECRET = "digest-dev-only-jwt-secret-never-use-in-production"
MAX_RETENTION_DAYS = 36_500
# Secrets and URLs that may be unset: a blank value counts as unset.
OPTIONAL_TEXT = (
    "inngest_dev",
    "inngest_base_url",
    "inngest_event_key",
    "inngest_signing_key",
    "inngest_signing_key_fallback",
    "ngrok_authtoken",
    "ngrok_domain",
    "tunnel_lan_address",
    "inngest_serve_origin",
    "llm_base_url",
    "llm_api_key",
    "llm_model",
    "digest_token",
    "auth_jwt_secret",
    "auth_jwks_url",
    "auth_audience",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, env_file_encoding="utf-8"
    )

    app_env: AppEnv = "dev"

    # `1`, or the URL of a dev server; truthy values put the SDK in dev mode.
    inngest_dev: str | None = None
    # Origin of the executor's event and REST APIs (dev server, tunnel URL or
    # a self-hosted Inngest); unset in prod means Inngest Cloud.
    inngest_base_url: str | None = None
    inngest_event_key: SecretStr | None = None
    inngest_signing_key: SecretStr | None = None
    inngest_signing_key_fallback: SecretStr | None = None

    database_url: str = "sqlite+aiosqlite:///var/digest.db"
    # Where the backend is reachable; links in API answers are built on it.
    public_url: str = "http://127.0.0.1:8000"
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    tunnel_provider: Literal["none", "ngrok", "lan"] = "none"
    # The `ngrok` tunnel: the agent's authtoken, and a reserved domain so the
    # public URL survives restarts (unset: a new URL every session).
    ngrok_authtoken: SecretStr | None = None
    ngrok_domain: str | None = None
    # The `lan` tunnel: the address peers on the local network reach this
    # machine at (unset: the address of the interface with the default route).
    tunnel_lan_address: str | None = None
    # Origin (scheme and host) the SDK registers as its serve endpoint when a
    # proxy hides it; read by the Inngest SDK itself, listed here so that
    # `digest doctor` knows which URL the executor calls.
    inngest_serve_origin: str | None = None
    # Prod refuses a SQLite DATABASE_URL (one file, one machine) unless this
    # is true: for a single-host deployment that accepts that.
    allow_sqlite_in_prod: bool = False

    # Inngest app id shared by the backend and the functions service.
    inngest_app_id: str = "digest"
    # Whether the backend serves the step functions itself at /api/inngest
    # (one service). False when they run as a service of their own
    # (`digest functions serve`, `functions.app:app`): the backend then has
    # no /api/inngest and only sends events. Sync the executor with
    # whichever serves them, never with both.
    serve_functions: bool = True
    # Largest accepted document, in bytes of UTF-8 text.
    max_text_bytes: int = 2_000_000
    # Seconds a request body may go without a new chunk before the request
    # is answered 408 and its connection closed (a client that declares more
    # than it sends, or sends it slowly, must not hold a connection forever).
    body_idle_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    # Characters of prose per summarize-chunk step.
    chunk_chars: int = 6000
    # Who writes summaries: `extractive` (offline, picks the document's own
    # sentences) or `llm` (a chat model behind an OpenAI-compatible API).
    summarizer: Literal["extractive", "llm"] = "extractive"
    # The `llm` summariser's endpoint, e.g. https://api.openai.com/v1 or a
    # local server's /v1; the key is optional for servers that need none.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    # The model's context window in tokens; chunk sizes derive from it.
    llm_context_tokens: int = Field(default=8192, ge=1024)
    # Most tokens one answer may have (the final summary's budget).
    llm_max_output_tokens: int = Field(default=512, ge=64)
    # Model calls in flight at once for one provider (base URL and model),
    # across all runs: the function's concurrency limit.
    llm_max_concurrency: int = Field(default=4, ge=1)
    # Seconds one model call may take before it is abandoned and retried.
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    # Let the executor make the model calls (step.ai.infer), so that no
    # function holds a connection open while the model writes.
    llm_via_executor: bool = False
    # Jobs whose last change is older than this many days are deleted, with
    # everything stored for them, by the `cleanup-expired-jobs` function.
    # At most a century: the cutoff is a date, and a larger span overflows.
    job_retention_days: float = Field(
        default=30.0, gt=0, le=MAX_RETENTION_DAYS, allow_inf_nan=False
    )
    # When that function runs (five cron fields, UTC).
    job_retention_cron: str = "17 * * * *"
    # How long a backend replica holds an outbox event it is sending before
    # another replica may send it (the first may have died mid-send).
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    # A running job that has not changed for this long is checked against
    # its run on the executor (backend.reconcile): a run that failed or was
    # cancelled where the functions could not record it ends the job too.
    # A queued job's event is first checked this long after it was sent, or
    # 10 s if that is shorter.
    reconcile_after_seconds: float = Field(default=60.0, gt=0)
    # An event stream re-reads its job this often even when no change was
    # announced (another process on SQLite, a lost LISTEN connection).
    job_stream_reread_seconds: float = Field(default=1.0, gt=0)
    # Data folder for local state (the SQLite file, the executor's state).
    digest_home: Path = Path("var")
    # The CLI's bearer token for the API (`digest summarize`, `status`...).
    # Unset in dev means the CLI asks the backend's dev token route for one
    # and keeps it under digest_home.
    digest_token: SecretStr | None = None

    # Bearer tokens on /api/summaries*: HS256 signed with this secret, or
    # (in prod, usually) keys published at a JWKS URL. Unset in dev means
    # DEV_JWT_SECRET; prod refuses to start with neither set.
    auth_jwt_secret: SecretStr | None = None
    auth_jwks_url: str | None = None
    # When set, tokens must name this audience (`aud`); set it in prod when
    # the identity provider issues tokens for other services too.
    auth_audience: str | None = None
    # FOR TESTS ONLY: loopback ports that URL sources may fetch from, so an
    # end-to-end fetch from a local test server works. Empty (the default)
    # refuses every loopback address; prod refuses to start if it is set.
    fetch_allow_loopback_for_tests: Annotated[list[int], NoDecode] = Field(
        default_factory=list
    )

    @field_validator(*OPTIONAL_TEXT, mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `INNGEST_EVENT_KEY=` (a template line left empty) would otherwise be
        # a key of no characters: the profile checks would let prod start,
        # and every send would fail. Empty means unset, as for the SDK.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("fetch_allow_loopback_for_tests", mode="before")
    @classmethod
    def _split_ports(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("job_retention_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        # Read as the executor reads it: a schedule it cannot parse, or one
        # that never comes (31 February), would leave cleanup never running.
        from devserver.cron import next_fire_ms, parse

        example = "give five fields (minute hour day month weekday): '17 * * * *'"
        try:
            schedule = parse(value)
        except ValueError as exc:
            raise ValueError(f"{exc}; {example}") from None
        try:
            next_fire_ms(schedule, 0)
        except ValueError:
            raise ValueError(f"{value!r} never fires; {example}") from None
        return value

    @property
    def jwt_secret(self) -> str | None:
        """The HS256 secret: the configured one, or in dev the dev-only one."""
        if self.auth_jwt_secret is not None:
            return self.auth_jwt_secret.get_secret_value()
        return DEV_JWT_SECRET if self.is_dev else None

    @property
    def is_dev(self) -> bool:
        return self.app_env == "dev"

    @property
    def executor_url(self) -> str:
        """The executor's origin as the SDK will resolve it in dev mode."""
        if self.inngest_base_url:
            return self.inngest_base_url.rstrip("/")
        dev = (self.inngest_dev or "").strip()
        if "://" in dev:
            return dev.rstrip("/")
        return "http://127.0.0.1:8288"


def env_files(app_env: str) -> tuple[str, ...]:
    """The dotenv files for a profile, lowest precedence first."""
    return (f".env.{app_env}", f".env.{app_env}.local")


class SettingsFileError(ValueError):
    """A dotenv file that cannot be read; the message is one line naming
    the file and what to do."""


def _refuse_undecodable(names: tuple[str, ...]) -> None:
    """Raise SettingsFileError for the first file that is not UTF-8 text,
    which would otherwise end every command in a UnicodeDecodeError."""
    for name in names:
        path = Path(name)
        try:
            data = path.read_bytes()
        except OSError:
            continue  # absent (or unreadable): read as pydantic-settings does
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SettingsFileError(
                f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                f"position {exc.start}); save it as UTF-8"
            ) from None


def load_settings() -> Settings:
    """Read the settings for the profile named by `APP_ENV` (default dev);
    SettingsFileError if one of its dotenv files is not UTF-8 text."""
    app_env = os.environ.get("APP_ENV", "dev").strip() or "dev"
    _refuse_undecodable(env_files(app_env))
    # The profile is the one that picked the files: an APP_ENV line inside
    # them (`.env.dev.local` saying prod) would otherwise give the prod
    # profile the dev files' values.
    return Settings(_env_file=env_files(app_env), app_env=app_env)  # type: ignore[call-arg,arg-type]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once on first use."""
    return load_settings()
