"""`digest doctor`: is this profile's stack able to run a job?

Each check looks and changes nothing: no migration, no sync, no event
recorded. They run in the order a job needs them (profile, database,
executor, sync, serve endpoint, event key), and each says ok, fail (with the
fix) or skip (with why it could not look).

Where the event key is concerned, looking without changing anything means
sending an empty batch (`[]`) to the event API: the key is checked before
the body, so a refused key answers 401 while an accepted one records
nothing. Accepted means a 2xx (the embedded executor: 200 with no ids), or
the event API's own refusal of the batch (a 400 whose body has its `ids`
and `error` fields); any other answer is not an Inngest event API at all.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from rich.console import Console
from sqlalchemy import Connection

from devserver.signing import bearer_token, sign_request
from digest.config_show import env_files_line
from digest.profile import (
    Problem,
    Service,
    executor_name,
    fingerprint,
    problems,
    uses_inngest_cloud,
)
from digest.settings import Settings
from digest.tunnel_up import SETTING_OF
from digest.urls import without_password
from tunnel.record import TunnelRecord, stale_record

Status = Literal["ok", "fail", "skip"]

# Where Inngest Cloud answers when INNGEST_BASE_URL is unset in prod.
CLOUD_API = "https://api.inngest.com"
CLOUD_EVENT_API = "https://inn.gs"
SERVE_PATH = "/api/inngest"
# The settings a tunnel writes, with the target that writes each.
TUNNEL_TARGETS = {setting: target for target, setting in SETTING_OF.items()}
UNSIGNED_EXECUTOR = "the executor is an unsigned dev server; the key is not used"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


@dataclass
class Doctor:
    """The checks of one profile, sharing one HTTP client."""

    settings: Settings
    http: httpx.Client
    service: Service = "api"
    # The app's failure handlers on the executor, once `sync` has looked:
    # the SDK counts a function and its handler as one, the executor as two.
    failure_handlers: int | None = None
    # Whether the executor checks no key (a dev server: `digest dev`'s, or
    # the official one), once `executor` has looked; None when unknown.
    unsigned_executor: bool | None = None
    # The profile's problems, once `profile` has looked.
    found: list[Problem] | None = None
    # Settings still holding the URL of a tunnel that is gone, once
    # `tunnels` has looked (tunnel.record).
    stale: dict[str, TunnelRecord] | None = None

    @property
    def cloud(self) -> bool:
        """Whether the executor is Inngest Cloud itself."""
        return uses_inngest_cloud(self.settings)

    @property
    def api_url(self) -> str:
        return CLOUD_API if self.cloud else self.settings.executor_url

    @property
    def event_api_url(self) -> str:
        return CLOUD_EVENT_API if self.cloud else self.settings.executor_url

    @property
    def shown_event_api(self) -> str:
        """The event API's URL as a check line shows it: no password."""
        return without_password(self.event_api_url)

    @property
    def origin_setting(self) -> str:
        """The setting that says where the executor reaches the functions:
        the functions service has no PUBLIC_URL (that is the API's)."""
        if self.service == "functions" or self.settings.inngest_serve_origin:
            return "INNGEST_SERVE_ORIGIN"
        return "PUBLIC_URL"

    @property
    def expected_serve_url(self) -> str | None:
        """Where the executor should call the app; None for a functions
        service without INNGEST_SERVE_ORIGIN, whose SDK then registers the
        URL it is reached at, which only the executor knows."""
        if self.origin_setting == "INNGEST_SERVE_ORIGIN":
            origin = self.settings.inngest_serve_origin
        else:
            origin = self.settings.public_url
        return origin.rstrip("/") + SERVE_PATH if origin else None

    @property
    def shown_serve_url(self) -> str:
        """Where the executor should call the app as a check line shows it:
        no password (PUBLIC_URL may hold one), or a description if unknown."""
        expected = self.expected_serve_url
        return without_password(expected) if expected else self.unknown_serve_url

    @property
    def serves(self) -> str:
        if self.service == "functions":
            return "the functions service (`digest functions serve`)"
        if self.service == "dev":
            return "the dev stack (`digest dev`)"
        return "the backend (`digest serve`)"

    def signing_key(self) -> str | None:
        key = self.settings.inngest_signing_key
        return key.get_secret_value() if key else None

    def run(self) -> list[Check]:
        checks = [self.profile(), *self.tunnels(), self.database(), self.executor()]
        if self.service == "api" and not self.settings.serve_functions:
            # The executor calls the functions service, not this backend.
            elsewhere = (
                "SERVE_FUNCTIONS=false: this backend serves no functions; "
                "check the functions service with `digest doctor --service "
                "functions`"
            )
            checks += [skip("sync", elsewhere), skip("serve endpoint", elsewhere)]
            checks.append(self.event_key())
            return checks
        synced_at, sync_check = self.sync()
        checks.append(sync_check)
        checks.append(self.serve_endpoint(synced_at or self.expected_serve_url))
        checks.append(self.event_key())
        return checks

    def profile_problems(self) -> list[Problem]:
        if self.found is None:
            self.found = problems(self.settings, self.service)
        return self.found

    def unusable(self, check: str, setting: str) -> Check | None:
        """The verdict of a check that needs `setting` when the profile
        names a problem with it: asking with that value would only give
        advice about something else (`digest dev` at ftp://…, a missing
        SQLite file for a driver that is refused, a parser's message)."""
        if not any(problem.setting == setting for problem in self.profile_problems()):
            return None
        return fail(
            check,
            f"not checked: the profile names a problem with {setting}",
            f"fix {setting} first (see the profile check)",
        )

    def profile(self) -> Check:
        found = self.profile_problems()
        # Which dotenv files were read: run outside the project folder, none
        # is, and a profile that looks fine may not be the one meant.
        files = env_files_line(self.settings.app_env)
        name = f"{self.settings.app_env} profile for the {self.service} service"
        if not found:
            return ok("profile", f"{name}, no problem; {files}")
        return fail(
            "profile",
            f"{len(found)} problem(s) in the {name}; {files}",
            "\n".join(str(problem) for problem in found),
        )

    def tunnels(self) -> list[Check]:
        """A failing `tunnel` check for each setting that a tunnel wrote
        and that stayed written when the tunnel was killed; none when no
        tunnel left anything. Only looks: the setting's lock is tried
        without waiting, and a live tunnel's setting is never reported."""
        self.stale = {}
        checks = []
        for setting, target in TUNNEL_TARGETS.items():
            record = stale_record(self.settings.digest_home, setting)
            if record is None:
                continue
            self.stale[setting] = record
            checks.append(
                fail(
                    "tunnel",
                    f"{setting}={without_password(record.url)} in "
                    f"{record.env_file} was written "
                    f"by a tunnel that is no longer running (pid {record.pid})",
                    f"run `digest tunnel up --target {target}` again (it first "
                    f"puts {setting} back, {_before(record)}; Ctrl-C closes "
                    f"it), or {_by_hand(record)}",
                )
            )
        return checks

    def stale_public_url(self) -> TunnelRecord | None:
        """The gone tunnel's record when PUBLIC_URL in effect is its URL."""
        record = (self.stale or {}).get("PUBLIC_URL")
        if record is None or self.settings.public_url != record.url:
            return None
        return record

    def database(self) -> Check:
        unusable = self.unusable("database", "DATABASE_URL")
        if unusable:
            return unusable
        return asyncio.run(_database_check(self.settings.database_url))

    def executor(self) -> Check:
        unusable = self.unusable("executor", "INNGEST_BASE_URL")
        if unusable:
            return unusable
        key = self.signing_key()
        where = executor_name(self.settings)
        try:
            if not self.cloud:
                health = self.http.get(f"{self.api_url}/health")
                if health.status_code != 200:
                    return fail(
                        "executor",
                        f"{where}/health answered {health.status_code}",
                        "check INNGEST_BASE_URL: it must be the executor's origin",
                    )
            if key is None and self.cloud:
                # Inngest Cloud answers nothing without a key: saying it
                # answers would be a guess.
                return fail(
                    "executor",
                    "Inngest Cloud was not asked: there is no signing key to "
                    "ask it with",
                    "set INNGEST_SIGNING_KEY to your environment's "
                    "signkey-prod-... key (or INNGEST_BASE_URL for a "
                    "self-hosted executor)",
                )
            if key is None:
                return ok("executor", f"{where} answers (no signing key: unsigned)")
            if not self.cloud and self._reads_without_a_key():
                # `digest dev`'s executor runs unsigned on purpose, whatever
                # key this profile has: saying it accepts the key would be
                # a guess, and the app's key is then never asked for.
                self.unsigned_executor = True
                if not self.settings.is_dev:
                    return fail(
                        "executor",
                        f"{where} is an unsigned dev server: it signs none of "
                        "its calls, and the prod profile refuses every call "
                        "that is not signed, so no job would run",
                        "point INNGEST_BASE_URL at an executor that has your "
                        "INNGEST_SIGNING_KEY (or unset it for Inngest Cloud), "
                        "or use APP_ENV=dev beside a dev server",
                    )
                return ok(
                    "executor",
                    f"{where} answers; {UNSIGNED_EXECUTOR} (signing key "
                    f"{fingerprint(key, signing_key=True)})",
                )
            self.unsigned_executor = False
            # Any /v1 route needs a bearer of the signing key: reading one
            # event proves the executor knows the key.
            answer = self.http.get(
                f"{self.api_url}/v1/events",
                params={"limit": 1},
                headers={"Authorization": f"Bearer {bearer_token(key)}"},
            )
        except httpx.HTTPError as exc:
            return fail(
                "executor",
                f"{where} does not answer ({type(exc).__name__})",
                _start_executor_fix(self.settings),
            )
        if answer.status_code in (401, 403):
            return fail(
                "executor",
                f"{where} refused signing key {fingerprint(key, signing_key=True)}",
                "set INNGEST_SIGNING_KEY to the executor's signing key",
            )
        if answer.status_code != 200:
            return fail(
                "executor",
                f"{where}/v1/events answered {answer.status_code}",
                "check INNGEST_BASE_URL: it must be the executor's origin",
            )
        return ok(
            "executor",
            f"{where} answers and accepts signing key "
            f"{fingerprint(key, signing_key=True)}",
        )

    def _reads_without_a_key(self) -> bool:
        """Whether the executor's REST API answers with no bearer at all,
        as only a dev server (no signing key) does."""
        answer = self.http.get(f"{self.api_url}/v1/events", params={"limit": 1})
        return answer.status_code == 200

    def sync(self) -> tuple[str | None, Check]:
        """The URL the executor calls for this app, and the check's verdict."""
        if self.cloud:
            return None, skip(
                "sync",
                "Inngest Cloud lists apps in its dashboard only: check there "
                f"that app {self.settings.inngest_app_id} is synced at "
                f"{self.shown_serve_url}",
            )
        unusable = self.unusable("sync", "INNGEST_BASE_URL")
        if unusable:
            return None, unusable
        try:
            answer = self.http.get(f"{self.api_url}/dev")
            functions = answer.json().get("functions", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            return None, fail(
                "sync",
                f"could not list the executor's functions ({type(exc).__name__})",
                _start_executor_fix(self.settings),
            )
        ours = [
            function
            for function in functions
            if str(function.get("slug", "")).startswith(
                self.settings.inngest_app_id + "-"
            )
        ]
        urls = {_without_query(function.get("url", "")) for function in ours}
        self.failure_handlers = sum(
            str(function.get("slug", "")).endswith("-failure") for function in ours
        )
        expected = self.expected_serve_url
        sync_fix = f"sync it: curl -X PUT {self.shown_serve_url}" + (
            ""
            if self.service == "functions"
            else " (or `digest tunnel up --target backend`, which syncs)"
        )
        gone = self.stale_public_url() if self.origin_setting == "PUBLIC_URL" else None
        if gone is not None:
            # Its address is dead: a sync there is what went wrong.
            sync_fix = (
                f"PUBLIC_URL is a closed tunnel's address (see the tunnel "
                f"check); once it is put back, sync at the backend's URL: curl "
                f"-X PUT {without_password(gone.before or _default_public_url())}"
                f"{SERVE_PATH}"
            )
        if not urls:
            return None, fail(
                "sync",
                f"app {self.settings.inngest_app_id} has no function on the executor",
                sync_fix,
            )
        synced = sorted(urls)[0]
        # As the executor registered them, which may hold a password too.
        shown = ", ".join(sorted(without_password(url) for url in urls))
        setting = self.origin_setting
        if len(urls) > 1 or (expected is not None and synced != expected):
            return synced, fail(
                "sync",
                f"the executor calls {shown}, not "
                f"{self.shown_serve_url} ({setting} + {SERVE_PATH})",
                sync_fix + f"; or set {setting} to where the app is served",
            )
        return synced, ok("sync", f"the executor calls {shown}")

    @property
    def unknown_serve_url(self) -> str:
        return f"the functions service's URL + {SERVE_PATH}"

    def serve_endpoint(self, url: str | None) -> Check:
        if url is None:
            return skip(
                "serve endpoint",
                "INNGEST_SERVE_ORIGIN is unset, so where the executor reaches "
                "the functions service is not known here; set it to that "
                "service's public origin to have it checked",
            )
        # The URL as every line below shows it: no password.
        shown = without_password(url)
        key = self.signing_key()
        headers = {"x-inngest-signature": sign_request(b"", key)} if key else {}
        try:
            answer = self.http.get(url, headers=headers)
            inspection: dict[str, Any] = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            tunnel = (
                ""
                if self.service == "functions"
                else " or, behind a tunnel, `digest tunnel up --target backend`"
            )
            return fail(
                "serve endpoint",
                f"{shown} does not answer ({type(exc).__name__})",
                f"start {self.serves}{tunnel}",
            )
        if answer.status_code == 401 and _from_digest_app(answer):
            return _refused_signature(shown, answer, key)
        setting = self.origin_setting
        if answer.status_code != 200 or "function_count" not in inspection:
            return fail(
                "serve endpoint",
                f"{shown} answered {answer.status_code}, not an Inngest app",
                f"set {setting} so that {setting} + {SERVE_PATH} is the app",
            )
        served = _functions_served(inspection["function_count"], self.failure_handlers)
        if key is None:
            return ok("serve endpoint", f"{shown} serves {served}, unsigned")
        if self.unsigned_executor:
            return self._beside_an_unsigned_executor(shown, served, inspection)
        ours = bearer_token(key)
        theirs = {
            inspection.get("signing_key_hash"),
            inspection.get("signing_key_fallback_hash"),
        }
        if not inspection.get("authentication_succeeded") or ours not in theirs:
            return fail(
                "serve endpoint",
                f"{shown} does not hold signing key "
                f"{fingerprint(key, signing_key=True)} (mode "
                f"{inspection.get('mode')})",
                "give the app the same INNGEST_SIGNING_KEY as the executor, "
                "and unset INNGEST_DEV there",
            )
        return ok(
            "serve endpoint",
            f"{shown} serves {served} and holds signing key "
            f"{fingerprint(key, signing_key=True)}",
        )

    def _beside_an_unsigned_executor(
        self, url: str, served: str, inspection: dict[str, Any]
    ) -> Check:
        """An unsigned executor signs no call: the app must not ask for a
        signature (dev mode), and which key it holds does not matter."""
        if inspection.get("mode") == "dev":
            return ok("serve endpoint", f"{url} serves {served}; {UNSIGNED_EXECUTOR}")
        return fail(
            "serve endpoint",
            f"{url} checks signatures (mode {inspection.get('mode')}), and the "
            "executor is an unsigned dev server: the app will refuse its calls",
            "run the app in the dev profile (APP_ENV=dev, INNGEST_DEV=1), or "
            "give the executor the app's INNGEST_SIGNING_KEY",
        )

    def event_key(self) -> Check:
        key = self.settings.inngest_event_key
        if self.service == "functions":
            return skip("event key", "the functions service sends no event")
        if key is None:
            if self.settings.is_dev:
                return skip("event key", "unset; a dev executor takes any key")
            return fail("event key", "unset", "set INNGEST_EVENT_KEY")
        unusable = self.unusable("event key", "INNGEST_BASE_URL")
        if unusable:
            return unusable
        plain = key.get_secret_value()
        url = f"{self.event_api_url}/e/{plain}"
        try:
            answer = self.http.post(url, json=[])
        except httpx.HTTPError as exc:
            return fail(
                "event key",
                f"{self.shown_event_api} does not answer ({type(exc).__name__})",
                _start_executor_fix(self.settings),
            )
        if answer.status_code in (401, 403):
            return fail(
                "event key",
                f"event key {fingerprint(plain)} refused by {self.shown_event_api}",
                "set INNGEST_EVENT_KEY to a key of the executor's environment",
            )
        if not (
            answer.is_success
            or (answer.status_code == 400 and _is_event_api_refusal(answer))
        ):
            return fail(
                "event key",
                f"no Inngest event API at {self.shown_event_api} "
                f"(answered {answer.status_code})",
                "set INNGEST_BASE_URL to the executor's origin"
                + ("" if self.settings.is_dev else ", or unset it for Inngest Cloud"),
            )
        return ok(
            "event key",
            f"event key {fingerprint(plain)} accepted (empty batch, nothing recorded)",
        )


def _from_digest_app(answer: httpx.Response) -> bool:
    """Whether a 401 came from Digest's serve endpoint itself (the SDK marks
    its answers; the stale-signature check names its error code), rather
    than from whatever else answers at that URL."""
    if answer.headers.get("x-inngest-sdk-handled") or answer.headers.get(
        "x-inngest-sdk"
    ):
        return True
    return _error_code(answer) == "stale_signature"


def _refused_signature(url: str, answer: httpx.Response, key: str | None) -> Check:
    if _error_code(answer) == "stale_signature":
        return fail(
            "serve endpoint",
            f"{url} refused the signature as stale (answered 401)",
            "this machine's clock and the app's differ by minutes; sync both with NTP",
        )
    if key is None:
        return fail(
            "serve endpoint",
            f"{url} answered 401: the app checks signatures and this profile "
            "has no signing key to sign with",
            "set INNGEST_SIGNING_KEY here to the app's key",
        )
    return fail(
        "serve endpoint",
        f"{url} answered 401 to a call signed with signing key "
        f"{fingerprint(key, signing_key=True)}: the app holds another key",
        "give the app and the executor the same INNGEST_SIGNING_KEY (during "
        "a rotation, the old one as INNGEST_SIGNING_KEY_FALLBACK)",
    )


def _error_code(answer: httpx.Response) -> str | None:
    """`error.code` of a Digest error answer, if it is one."""
    try:
        error = answer.json().get("error")
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _is_event_api_refusal(answer: httpx.Response) -> bool:
    """Whether a 400 is an Inngest event API's own answer to a batch it
    would not take: `{"ids": [...], "status": 400, "error": "..."}`."""
    try:
        body = answer.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and isinstance(body.get("ids"), list)
        and isinstance(body.get("error"), str)
    )


def _before(record: TunnelRecord) -> str:
    if record.before is None:
        return "unset as it was before"
    return f"to {without_password(record.before)}"


def _by_hand(record: TunnelRecord) -> str:
    if record.before is None:
        return f"delete the {record.setting} line from {record.env_file}"
    return f"set {record.setting}={without_password(record.before)} there yourself"


def _default_public_url() -> str:
    return str(Settings.model_fields["public_url"].default)


def _start_executor_fix(settings: Settings) -> str:
    if settings.is_dev:
        return (
            f"start one at {executor_name(settings)} (`digest dev` or "
            "`digest devserver`), or set INNGEST_BASE_URL to where it runs"
        )
    return "set INNGEST_BASE_URL to the executor's origin, or unset it for Cloud"


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def _database_check(database_url: str) -> Check:
    from backend.store import create_engine, is_sqlite
    from backend.store.migrate import head_revision

    fix = "run `digest db upgrade`"
    try:
        if is_sqlite(database_url):
            path = _sqlite_path(database_url)
            if path is not None and not path.exists():
                # Connecting would create the file: say so instead.
                return fail("database", f"no SQLite file at {path}", fix)
            current = _sqlite_revision(path)
        else:
            engine = create_engine(database_url)
            try:
                async with engine.connect() as connection:
                    current = await connection.run_sync(_revision)
            finally:
                await engine.dispose()
    except Exception as exc:
        return fail(
            "database",
            f"unreachable ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})",
            "check DATABASE_URL and that the database server runs",
        )
    head = head_revision()
    if current is not None and current not in _known_revisions():
        return fail(
            "database",
            f"at revision {current}, which this code does not know: the "
            f"database was migrated by newer code (this code's latest is {head})",
            f"the code is older than the database: deploy the code that has "
            f"revision {current}, never `digest db upgrade` from this one",
        )
    if current != head:
        return fail(
            "database", f"at revision {current or 'none'}, code needs {head}", fix
        )
    return ok("database", f"reachable and at the latest revision ({head})")


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from backend.store.migrate import MIGRATIONS

    scripts = ScriptDirectory(str(MIGRATIONS))
    return {script.revision for script in scripts.walk_revisions()}


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _sqlite_revision(path: Path | None) -> str | None:
    """The revision of a SQLite file, opened read-only: the store's engine
    would switch the file to WAL on connect, and doctor writes nothing."""
    from sqlalchemy import create_engine as create_sync_engine

    target = "file::memory:"
    if path is not None and Path(f"{path}-wal").exists():
        # A process has the file open in WAL mode (or died with it open):
        # the latest writes may be in the -wal file only, so read through
        # it. Its -shm file exists too, so reading creates nothing.
        target = f"file:{path}?mode=ro"
    elif path is not None:
        # No -wal file: every write is in the file itself. `immutable=1`
        # reads it without locks and without the -wal and -shm files that
        # a WAL-mode file gets on every open, even a read-only one. What it
        # trades away: a writer starting during this read goes unseen.
        target = f"file:{path}?mode=ro&immutable=1"
    engine = create_sync_engine(
        "sqlite://", creator=lambda: sqlite3.connect(target, uri=True)
    )
    try:
        with engine.connect() as connection:
            return _revision(connection)
    finally:
        engine.dispose()


def _sqlite_path(database_url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    if not name or name == ":memory:":
        return None
    return Path(name)


def _functions_served(count: int, failure_handlers: int | None) -> str:
    """`count` as the SDK reports it, with the failure handlers that the
    executor lists as functions of their own, when known."""
    said = f"{count} function{'s' if count != 1 else ''}"
    if failure_handlers is None:
        return f"{said} (their failure handlers not counted)"
    if failure_handlers == 0:
        return said
    plural = "s" if failure_handlers != 1 else ""
    return f"{said} (+{failure_handlers} failure handler{plural})"


def invalid_settings(reasons: dict[str, str]) -> list[Check]:
    """The verdict when settings cannot even be read (reasons by setting
    name): no other check can run without them."""
    return [
        fail(
            "settings",
            f"setting {name} is invalid: {reason}",
            f"change {name} in the environment or the .env files",
        )
        for name, reason in reasons.items()
    ]


def diagnose(
    settings: Settings,
    *,
    service: Service = "api",
    transport: httpx.BaseTransport | None = None,
) -> list[Check]:
    """Run every check for `service` (whose profile needs differ: see
    digest.profile); `transport` lets tests stand in for Inngest Cloud."""
    with httpx.Client(timeout=5.0, transport=transport) as http:
        return Doctor(settings, http, service).run()


def report(checks: list[Check], console: Console, *, as_json: bool) -> int:
    """Print the checks; 0 if none failed, else 1."""
    failed = any(check.status == "fail" for check in checks)
    if as_json:
        document = {"ok": not failed, "checks": [asdict(c) for c in checks]}
        console.print_json(json.dumps(document))
        return 1 if failed else 0
    style: dict[Status, Callable[[str], str]] = {
        "ok": lambda s: f"[green]{s}[/green]",
        "fail": lambda s: f"[red]{s}[/red]",
        "skip": lambda s: f"[yellow]{s}[/yellow]",
    }
    for check in checks:
        label = style[check.status](f"{check.status:<4}")
        console.print(f"{label} {check.name:<15} {check.detail}", highlight=False)
        for line in (check.fix or "").splitlines():
            console.print(f"     {'':<15} fix: {line}", highlight=False)
    verdict = "some checks failed" if failed else "all checks passed"
    console.print(f"[{'red' if failed else 'green'}]{verdict}[/]")
    return 1 if failed else 0
