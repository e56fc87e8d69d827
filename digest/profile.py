"""Whether a profile can work: every check on the settings, in one place.

The backend, the functions service and the `digest` commands that start
them run `refuse_bad_profile` before anything else, and `digest doctor`
shows the same findings. Each finding is one line: the setting, what is
wrong with it, what to put there. All of them are reported together so a
deploy is fixed in one pass, not one restart per mistake.

What is checked depends on the service starting (`Service`): the API sends
events and checks bearer tokens, the functions service answers the
executor's signed calls, and `digest dev` runs both beside a local executor.
A setting a service does not use is not demanded of it.

Secrets are named by `fingerprint`, never shown.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from devserver.signing import bearer_token, check_signing_key
from devserver.signing import fingerprint as signing_key_fingerprint
from digest.settings import DEV_JWT_SECRET, Settings
from digest.urls import (
    AUTHORITY_END,
    NOT_HTTP,
    find_userinfo,
    http_url_fault,
    secret_param_names,
    split_userinfo,
    url_parts,
    without_password,
)

_KEY_ENV = re.compile(r"^signkey-(\w+?)-")
# The environments Inngest names in signing keys that a dev profile may use.
_DEV_KEY_ENVS = ("test", "branch")

# Which process is starting: the backend (`digest serve`; it serves the
# functions too unless SERVE_FUNCTIONS=false), the functions service alone
# (`digest functions serve`), or the local dev stack (`digest dev`).
Service = Literal["api", "functions", "dev"]
SERVICES: tuple[Service, ...] = ("api", "functions", "dev")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a profile: the setting and what to do."""

    setting: str
    fix: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.fix}"


class UnsafeSettings(RuntimeError):
    """A profile that must not start; the message has one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def fingerprint(secret: str, *, signing_key: bool = False) -> str:
    """A name for a secret that is safe to log: `sha256:` and 8 hex digits.

    For a well-formed signing key it is the start of the SDK's own
    `signing_key_hash` (and of the executor's log lines), so the two can be
    compared; anything else is the sha256 of its text, which for an event
    key is the start of the SDK's `event_key_hash`.
    """
    if signing_key:
        try:
            check_signing_key(secret)
        except ValueError:
            pass
        else:
            return signing_key_fingerprint(secret)
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def secret_fingerprints(settings: Settings) -> dict[str, str | None]:
    """The secrets of a profile by setting name, as fingerprints."""
    secrets = {
        "INNGEST_EVENT_KEY": settings.inngest_event_key,
        "INNGEST_SIGNING_KEY": settings.inngest_signing_key,
        "INNGEST_SIGNING_KEY_FALLBACK": settings.inngest_signing_key_fallback,
        "AUTH_JWT_SECRET": settings.auth_jwt_secret,
        "LLM_API_KEY": settings.llm_api_key,
    }
    return {
        name: fingerprint(value.get_secret_value(), signing_key="SIGNING" in name)
        if value
        else None
        for name, value in secrets.items()
    }


def problems(settings: Settings, service: Service = "api") -> list[Problem]:
    """Everything that stops `service` from working with this profile."""
    functions = runs_functions(settings, service)
    found = []
    if service == "dev" and not settings.is_dev:
        found.append(
            Problem(
                "APP_ENV",
                "is prod, but `digest dev` runs a local, unsigned executor; "
                "use APP_ENV=dev, or `digest serve` in prod",
            )
        )
    found += _url_problems(settings)
    found += _inngest_problems(settings, sends_events=service != "functions")
    found += _signing_key_problems(settings, required=functions)
    if functions:
        found += _llm_problems(settings)
    found += _service_problems(settings, api=service != "functions")
    return found


def _url_problems(settings: Settings) -> list[Problem]:
    """DATABASE_URL and INNGEST_BASE_URL as every service uses them: a value
    neither the job store nor the Inngest client can use stops them all."""
    found = []
    database = _database_url_problem(settings.database_url)
    if database:
        found.append(Problem("DATABASE_URL", database))
    base_url = (settings.inngest_base_url or "").strip()
    fault = http_url_fault(base_url) if base_url else None
    if fault:
        found.append(
            Problem(
                "INNGEST_BASE_URL",
                f"is {without_password(base_url)!r}, {fault}; set the "
                "executor's origin (e.g. http://127.0.0.1:8288 "
                "or https://inngest.example.com), or unset it for Inngest Cloud",
            )
        )
    elif base_url and AUTHORITY_END.search(split_userinfo(base_url)[1] or ""):
        # HTTP clients end the host at the first of them: the password
        # would be read as a port, or sent to a host named by its start.
        found.append(
            Problem(
                "INNGEST_BASE_URL",
                "has '#', '?' or '/' in its user name or password, which "
                "HTTP clients read as the end of the host; write them "
                "percent-encoded (%23, %3F, %2F)",
            )
        )
    return found


def _database_url_problem(url: str) -> str | None:
    """What keeps the job store's engine from using DATABASE_URL, if
    anything: the URL read as `backend.store.create_engine` reads it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from backend.store.engine import UnsupportedDatabase, database_url

    shown = without_password(url)
    use = (
        "set sqlite+aiosqlite:///path/to/digest.db or "
        "postgresql+asyncpg://user@host:5432/digest (postgresql:// and "
        "postgres:// are read as asyncpg too)"
    )
    try:
        parsed = database_url(url)
    except UnsupportedDatabase:
        try:
            make_url(url)
        except (ArgumentError, ValueError):
            return f"is {shown!r}, not a database URL; {use}"
        return f"is {shown!r}, a database or driver Digest cannot use; {use}"
    except ValueError:
        # SQLAlchemy reads the port as a number when the URL is used.
        return f"is {shown!r}, whose port is not a number; {use}"
    driver = parsed.get_driver_name()
    if parsed.get_backend_name() == "sqlite" and driver != "aiosqlite":
        # sqlite:// is the blocking driver, which the async engine refuses.
        return (
            f"is {shown!r}, whose SQLite driver ({driver}) "
            f"cannot run the async job store; {use}"
        )
    return None


def runs_functions(settings: Settings, service: Service) -> bool:
    """Whether `service` serves the step functions at /api/inngest."""
    return service != "api" or settings.serve_functions


def refuse_bad_profile(settings: Settings, service: Service = "api") -> None:
    """Raise UnsafeSettings listing every problem, if there is any."""
    found = problems(settings, service)
    if found:
        raise UnsafeSettings(found)


def uses_inngest_cloud(settings: Settings) -> bool:
    """Whether the executor is Inngest Cloud: prod with no INNGEST_BASE_URL."""
    return not settings.is_dev and not settings.inngest_base_url


def executor_name(settings: Settings) -> str:
    """The executor as a log line names it: Inngest Cloud, or its URL."""
    if uses_inngest_cloud(settings):
        return "Inngest Cloud"
    return without_password(settings.executor_url)


def _inngest_problems(settings: Settings, *, sends_events: bool) -> list[Problem]:
    if settings.is_dev:
        return []
    found = []
    if (settings.inngest_dev or "").strip():
        found.append(
            Problem(
                "INNGEST_DEV",
                "is set in prod, where the SDK would then skip signature "
                "checks; unset it (for a self-hosted executor set "
                "INNGEST_BASE_URL instead)",
            )
        )
    if sends_events and settings.inngest_event_key is None:
        found.append(
            Problem(
                "INNGEST_EVENT_KEY",
                "prod sends events with it; set it to your Inngest "
                "environment's event key (environment or .env.prod.local)",
            )
        )
    return found


def _llm_problems(settings: Settings) -> list[Problem]:
    if settings.summarizer != "llm":
        return []
    wanted = {
        "LLM_BASE_URL": (
            settings.llm_base_url,
            "SUMMARIZER=llm calls an OpenAI-compatible endpoint; set its base "
            "URL (e.g. https://api.openai.com/v1) or use SUMMARIZER=extractive",
        ),
        "LLM_MODEL": (
            settings.llm_model,
            "SUMMARIZER=llm needs the model's name (e.g. gpt-4o-mini) or "
            "SUMMARIZER=extractive",
        ),
    }
    found = [
        Problem(name, fix)
        for name, (value, fix) in wanted.items()
        if not (value or "").strip()
    ]
    base_url = settings.llm_base_url or ""
    fault = http_url_fault(base_url) if base_url else None
    if fault:
        found.insert(
            0,
            Problem(
                "LLM_BASE_URL",
                f"is {without_password(base_url)!r}, {fault}; set the "
                "endpoint's base URL, e.g. https://api.openai.com/v1",
            ),
        )
    elif base_url and split_userinfo(base_url.strip())[1] is not None:
        # httpx would send the user part as Basic auth in place of the key,
        # and the URL is shown in errors and logs wherever a call fails.
        found.insert(
            0,
            Problem(
                "LLM_BASE_URL",
                "holds a user name or password before the host; give the "
                "URL without them and the key in LLM_API_KEY",
            ),
        )
    keys = secret_param_names(base_url.strip())
    if keys:
        # Masked wherever the URL is shown, but still sent with every call
        # and written into the provider's (and any proxy's) access logs.
        shown = ", ".join(f"{name[:40]}=***" for name in keys)
        found.insert(
            sum(problem.setting == "LLM_BASE_URL" for problem in found),
            Problem(
                "LLM_BASE_URL",
                f"carries a key in its query ({shown}); put the key in "
                "LLM_API_KEY and remove it from the URL",
            ),
        )
    # The answer's budget comes out of the context window, beside the text
    # and the instructions: past half the window, a chunk has less room than
    # the answer it asks for (and at the extreme, none at all).
    most = settings.llm_context_tokens // 2
    if settings.llm_max_output_tokens > most:
        found.append(
            Problem(
                "LLM_MAX_OUTPUT_TOKENS",
                f"is {settings.llm_max_output_tokens}, more than half of "
                f"LLM_CONTEXT_TOKENS ({settings.llm_context_tokens}), leaving "
                f"too little room for the text; set at most {most}, or set "
                "LLM_CONTEXT_TOKENS to the model's real context window",
            )
        )
    return found


def _signing_key_problems(settings: Settings, *, required: bool) -> list[Problem]:
    key = _plain(settings.inngest_signing_key)
    fallback = _plain(settings.inngest_signing_key_fallback)
    found = []
    if key is None and required and not settings.is_dev:
        found.append(
            Problem(
                "INNGEST_SIGNING_KEY",
                "prod checks every call from the executor with it; set it to "
                "your environment's signkey-prod-... key",
            )
        )
    if fallback is not None and key is None:
        found.append(
            Problem(
                "INNGEST_SIGNING_KEY_FALLBACK",
                "is set without INNGEST_SIGNING_KEY; set the new key there "
                "and keep the previous one here",
            )
        )
    for name, value in (
        ("INNGEST_SIGNING_KEY", key),
        ("INNGEST_SIGNING_KEY_FALLBACK", fallback),
    ):
        if value is not None:
            found += _key_shape(name, value, settings)
    if key is not None and fallback is not None and same_signing_key(key, fallback):
        found.append(
            Problem(
                "INNGEST_SIGNING_KEY_FALLBACK",
                "is the same key as INNGEST_SIGNING_KEY "
                f"({fingerprint(key, signing_key=True)}); "
                "set it to the previous key during a rotation, or unset it",
            )
        )
    return found


def same_signing_key(one: str, other: str) -> bool:
    """Whether two signing keys are one key, as the SDK tells keys apart: by
    the hash of their hex bytes, whatever the `signkey-<env>-` prefix or the
    case of the hex digits."""
    try:
        return bearer_token(one) == bearer_token(other)
    except ValueError:
        return one == other


def _key_shape(name: str, key: str, settings: Settings) -> list[Problem]:
    named = fingerprint(key, signing_key=True)
    try:
        check_signing_key(key)
    except ValueError:
        return [
            Problem(
                name,
                f"({named}) is not signkey-<env>-<hex>; copy the "
                "whole key from your Inngest environment",
            )
        ]
    match = _KEY_ENV.match(key)
    env = match.group(1) if match else None
    if settings.is_dev and env not in (None, *_DEV_KEY_ENVS):
        return [
            Problem(
                name,
                f"({named}) is a signkey-{env}- key in the dev "
                "profile; use a signkey-test- or signkey-branch- key, or none",
            )
        ]
    if not settings.is_dev and env != "prod":
        shown = f"a signkey-{env}- key" if env else "a key without signkey-prod-"
        return [
            Problem(
                name,
                f"({named}) is {shown} in the prod profile; use "
                "your production environment's signkey-prod-... key",
            )
        ]
    return []


def _service_problems(settings: Settings, *, api: bool) -> list[Problem]:
    """The job store's, the API's and the tunnel's settings; `api` is false
    for the functions service, which answers no browser and builds no link."""
    prod = not settings.is_dev
    found = []
    database = settings.database_url.lower()
    if prod and database.startswith("sqlite") and not settings.allow_sqlite_in_prod:
        found.append(
            Problem(
                "DATABASE_URL",
                "is SQLite in prod (one file on one machine); set a PostgreSQL "
                "URL (postgresql+asyncpg://user@host/digest), or "
                "ALLOW_SQLITE_IN_PROD=true for a single-host deployment",
            )
        )
    if prod and api and "*" in settings.cors_origins:
        found.append(
            Problem(
                "CORS_ORIGINS",
                "is * in prod, which lets any web site call the API; list "
                "your client's origins, comma-separated",
            )
        )
    if api:
        found += _cors_problems(settings)
        found += _public_url_problems(settings)
    if prod and api and settings.jwt_secret is None and not settings.auth_jwks_url:
        found.append(
            Problem(
                "AUTH_JWT_SECRET",
                "prod needs AUTH_JWKS_URL (your identity provider's key set) "
                "or AUTH_JWT_SECRET to check bearer tokens; set one",
            )
        )
    if prod and settings.jwt_secret == DEV_JWT_SECRET:
        found.append(
            Problem(
                "AUTH_JWT_SECRET",
                "is the public dev secret; set your own (32 random bytes or more)",
            )
        )
    elif prod and settings.jwt_secret and len(settings.jwt_secret.encode()) < 32:
        # Shorter HS256 secrets can be guessed offline from one token.
        found.append(
            Problem(
                "AUTH_JWT_SECRET",
                f"is {len(settings.jwt_secret.encode())} bytes, too short to "
                "sign tokens safely; set 32 random bytes or more (python -c "
                "'import secrets; print(secrets.token_urlsafe(32))')",
            )
        )
    if prod and settings.fetch_allow_loopback_for_tests:
        found.append(
            Problem(
                "FETCH_ALLOW_LOOPBACK_FOR_TESTS",
                "is for tests (URL sources could reach this server's own "
                "network); unset it",
            )
        )
    if prod and settings.tunnel_provider != "none":
        found.append(
            Problem(
                "TUNNEL_PROVIDER",
                f"is {settings.tunnel_provider} in prod, where everything has "
                "a public URL already; set none",
            )
        )
    return found


def _cors_problems(settings: Settings) -> list[Problem]:
    """Each CORS origin that is no origin: browsers send `scheme://host` or
    `scheme://host:port` only, so anything more never matches, and a user
    part in it is a secret written where it does nothing."""
    found = []
    for origin in settings.cors_origins:
        fault = _origin_fault(origin)
        if fault:
            found.append(
                Problem(
                    "CORS_ORIGINS",
                    f"has {without_password(origin)!r}, {fault}; list origins "
                    "as browsers send them, scheme://host[:port] "
                    "(https://app.example.com), comma-separated",
                )
            )
    return found


def _origin_fault(origin: str) -> str | None:
    origin = origin.strip()
    if origin == "*":
        return None
    _, userinfo, rest, strict = find_userinfo(origin)
    if userinfo is not None:
        return "which holds a user name or password, never part of an origin"
    if not strict or AUTHORITY_END.search(rest):
        return "not an origin (scheme://host[:port], no path)"
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError:
        return "whose port is not a number in 1-65535"
    if not parts.hostname:
        return "not an origin (scheme://host[:port], no path)"
    return None


def _public_url_problems(settings: Settings) -> list[Problem]:
    url = settings.public_url
    fault = http_url_fault(url)
    if settings.is_dev:
        if fault is None:
            return []
        return [
            Problem(
                "PUBLIC_URL",
                f"is {without_password(url)!r}, {fault}; set where the "
                "backend is reached, e.g. http://127.0.0.1:8000",
            )
        ]
    # urlsplit lowers the scheme: HTTPS://… is https too.
    https = fault is None and url_parts(url.strip()).scheme == "https"
    if https:
        return []
    if not url.strip().lower().startswith("https:"):
        shown = "not https"
    elif fault is None or fault == NOT_HTTP:
        shown = "https without a host"
    else:
        shown = fault
    return [
        Problem(
            "PUBLIC_URL",
            f"is {without_password(url)}, {shown}, in prod; set the deployed backend's "
            "https:// URL (https://api.example.com)",
        )
    ]


def _plain(value: object) -> str | None:
    secret = getattr(value, "get_secret_value", None)
    text = secret() if secret else None
    return text.strip() if isinstance(text, str) and text.strip() else None
