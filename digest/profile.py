"""Whether a profile can work: every check on the settings, in one place.

The backend, the functions service and the `digest` commands that start
them run `refuse_bad_profile` before anything else, and `digest doctor`
shows the same findings. Each finding is one line: the setting, what is
wrong with it, what to put there. All of them are reported together so a
deploy is fixed in one pass, not one restart per mistake.

Secrets are named by `fingerprint`, never shown.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from devserver.signing import check_signing_key
from devserver.signing import fingerprint as signing_key_fingerprint
from digest.settings import DEV_JWT_SECRET, Settings

_KEY_ENV = re.compile(r"^signkey-(\w+?)-")
# The environments Inngest names in signing keys that a dev profile may use.
_DEV_KEY_ENVS = ("test", "branch")


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


def problems(settings: Settings) -> list[Problem]:
    """Everything that stops this profile from working, in setting order."""
    found = _inngest_problems(settings)
    found += _signing_key_problems(settings)
    found += _llm_problems(settings)
    if not settings.is_dev:
        found += _prod_service_problems(settings)
    return found


def refuse_bad_profile(settings: Settings) -> None:
    """Raise UnsafeSettings listing every problem, if there is any."""
    found = problems(settings)
    if found:
        raise UnsafeSettings(found)


def _inngest_problems(settings: Settings) -> list[Problem]:
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
    if settings.inngest_event_key is None:
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
    return [
        Problem(name, fix)
        for name, (value, fix) in wanted.items()
        if not (value or "").strip()
    ]


def _signing_key_problems(settings: Settings) -> list[Problem]:
    key = _plain(settings.inngest_signing_key)
    fallback = _plain(settings.inngest_signing_key_fallback)
    found = []
    if key is None and not settings.is_dev:
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
    if key is not None and key == fallback:
        found.append(
            Problem(
                "INNGEST_SIGNING_KEY_FALLBACK",
                "is the same key as INNGEST_SIGNING_KEY "
                f"({fingerprint(key, signing_key=True)}); "
                "set it to the previous key during a rotation, or unset it",
            )
        )
    return found


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


def _prod_service_problems(settings: Settings) -> list[Problem]:
    found = []
    database = settings.database_url.lower()
    if database.startswith("sqlite") and not settings.allow_sqlite_in_prod:
        found.append(
            Problem(
                "DATABASE_URL",
                "is SQLite in prod (one file on one machine); set a PostgreSQL "
                "URL (postgresql+asyncpg://user@host/digest), or "
                "ALLOW_SQLITE_IN_PROD=true for a single-host deployment",
            )
        )
    if "*" in settings.cors_origins:
        found.append(
            Problem(
                "CORS_ORIGINS",
                "is * in prod, which lets any web site call the API; list "
                "your client's origins, comma-separated",
            )
        )
    if not settings.public_url.startswith("https://"):
        found.append(
            Problem(
                "PUBLIC_URL",
                f"is {settings.public_url}, not https, in prod; set the "
                "deployed backend's https:// URL",
            )
        )
    if settings.jwt_secret is None and not settings.auth_jwks_url:
        found.append(
            Problem(
                "AUTH_JWT_SECRET",
                "prod needs AUTH_JWKS_URL (your identity provider's key set) "
                "or AUTH_JWT_SECRET to check bearer tokens; set one",
            )
        )
    if settings.jwt_secret == DEV_JWT_SECRET:
        found.append(
            Problem(
                "AUTH_JWT_SECRET",
                "is the public dev secret; set your own (32 random bytes or more)",
            )
        )
    if settings.fetch_allow_loopback_for_tests:
        found.append(
            Problem(
                "FETCH_ALLOW_LOOPBACK_FOR_TESTS",
                "is for tests (URL sources could reach this server's own "
                "network); unset it",
            )
        )
    if settings.tunnel_provider != "none":
        found.append(
            Problem(
                "TUNNEL_PROVIDER",
                f"is {settings.tunnel_provider} in prod, where everything has "
                "a public URL already; set none",
            )
        )
    return found


def _plain(value: object) -> str | None:
    secret = getattr(value, "get_secret_value", None)
    text = secret() if secret else None
    return text.strip() if isinstance(text, str) and text.strip() else None
