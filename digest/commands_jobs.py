"""`digest summarize`, `status`, `cancel` and `list`: the API from a shell.

They talk to a running backend over HTTP, like any other client. Data
(summaries, titles) goes to stdout as plain text, never through rich's
markup; progress and errors go to stderr.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from backend.api.body import ENVELOPE_BYTES, ESCAPE_ALLOWANCE
from backend.api.upload import FORMAT_OF_SUFFIX
from digest.client import (
    TERMINAL,
    ApiError,
    ClientError,
    DevTokens,
    DigestClient,
    Json,
)
from digest.settings import get_settings
from digest.urls import without_password

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
# The backend's own list, so that the client refuses exactly what the
# upload route would answer 415 to.
UPLOADABLE_SUFFIXES = frozenset(FORMAT_OF_SUFFIX)
# Files sent as uploads even when they are UTF-8: the server converts them.
UPLOADED_SUFFIXES = frozenset(
    suffix for suffix, kind in FORMAT_OF_SUFFIX.items() if kind == "html"
)
# Input refused before anything is sent exits as a bad option does (click's
# usage errors); 1 stays for what the backend refused or failed to do.
BAD_INPUT = 2
# A job id is a ULID; anything else would change the request's path.
JOB_ID = re.compile(r"[0-9A-Za-z]+")
# The bounds the API puts on these numbers, checked here so that a bad one
# is refused in one line before anything is sent.
MAX_SENTENCES = (1, 50)
PAGE_LIMIT = (1, 100)
DEFAULT_PAGE_LIMIT = 20

BackendUrl = Annotated[
    str | None,
    typer.Option("--url", help="Backend URL (default: the PUBLIC_URL setting)."),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token (default: the DIGEST_TOKEN setting, or in dev one "
        "fetched from the backend and cached under DIGEST_HOME).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the job as JSON.")]


def register(app: typer.Typer) -> None:
    app.command()(summarize)
    app.command()(status)
    app.command()(cancel)
    app.command("list")(list_jobs)


@contextlib.contextmanager
def _client(url: str | None, token: str | None) -> Iterator[DigestClient]:
    """A client for the configured backend; any ClientError inside ends the
    command with its one-line message and exit code 1."""
    settings = get_settings()
    if url is None:
        base_url = _checked_base_url(settings.public_url, "PUBLIC_URL")
    else:
        base_url = _checked_base_url(url, "--url")
    token_from = None if token is None else "--token"
    if token is None and settings.digest_token is not None:
        token = settings.digest_token.get_secret_value()
        token_from = "DIGEST_TOKEN"
    dev_tokens = None
    if token is None and settings.is_dev:
        dev_tokens = DevTokens(settings.digest_home / "cli-tokens.json", _subject())
    try:
        with DigestClient(
            base_url, token=token, token_from=token_from, dev_tokens=dev_tokens
        ) as client:
            yield client
    except ClientError as exc:
        message = str(exc)
        if url is None and not isinstance(exc, ApiError):
            message += _gone_tunnel(settings.digest_home, base_url)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from None


def _gone_tunnel(home: Path, base_url: str) -> str:
    """What to add to a connection error when PUBLIC_URL is the address of
    a tunnel that was killed (its record says so: tunnel.record); else ""."""
    from tunnel.record import stale_record

    record = stale_record(home, "PUBLIC_URL")
    if record is None or record.url.rstrip("/") != base_url:
        return ""
    before = (
        f"it was {record.before} before" if record.before else "it was unset before"
    )
    return (
        f"; PUBLIC_URL was written by a tunnel that is no longer running (pid "
        f"{record.pid}, in {record.env_file}; {before}): run `digest tunnel up "
        "--target backend` again, which puts it back first, or give --url"
    )


def _refuse(message: str) -> NoReturn:
    """End the command on input it cannot use, before anything is sent."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(BAD_INPUT)


def _http_url_problem(url: str) -> str | None:
    """What keeps `url` from being an http(s) URL a request can go to, or
    None when nothing does."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        return str(exc).rstrip(".")
    if parsed.scheme not in ("http", "https"):
        return "it is not an http:// or https:// URL"
    if not parsed.host:
        return "it names no host"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return f"its port {parsed.port} is not one from 1 to 65535"
    return None


def _checked_base_url(url: str, origin: str) -> str:
    """The backend's URL, or a refusal naming where the bad one came from
    (httpx would otherwise report a lost connection)."""
    problem = _http_url_problem(url)
    if problem is not None:
        _refuse(
            f"{origin} {without_password(url)!r} is not a URL ({problem}); give "
            "the backend's http(s) address, such as http://127.0.0.1:8000"
        )
    return url.strip().rstrip("/")


def _checked_range(
    value: str | None, option: str, bounds: tuple[int, int]
) -> int | None:
    """A whole-number option within the API's bounds, or a one-line refusal
    (click's own would be a box of several lines)."""
    if value is None:
        return None
    low, high = bounds
    text = value.strip()
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        _refuse(f"{option} must be a whole number from {low} to {high}, not {value!r}")
    return int(text)


def _checked_job_id(job_id: str) -> str:
    job_id = job_id.strip()
    if not job_id:
        _refuse(
            "the job id is empty; give the id `digest summarize` printed, "
            "or find it with `digest list`"
        )
    if not JOB_ID.fullmatch(job_id):
        _refuse(
            f"{job_id!r} is not a job id (letters and digits, such as "
            "01K...); find yours with `digest list`"
        )
    return job_id


@contextlib.contextmanager
def _unknown_job_points_to_list() -> Iterator[None]:
    """A job id the backend does not know: say where the right one is."""
    try:
        yield
    except ApiError as exc:
        if exc.status != 404 or exc.code != "not_found":
            raise
        raise ClientError(
            f"{exc}; find the ids of your jobs with `digest list`"
        ) from None


def _subject() -> str:
    """A stable user for this account's dev tokens: its jobs stay listed
    from one command to the next."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "user"
    return "cli-" + (re.sub(r"[^A-Za-z0-9._-]", "-", name) or "user")


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def summarize(
    source: Annotated[
        str, typer.Argument(metavar="FILE|URL", help="A document file, or its URL.")
    ],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job and print the summary.")
    ] = False,
    as_json: AsJson = False,
    title: Annotated[str | None, typer.Option(help="Title of the summary.")] = None,
    max_sentences: Annotated[
        str | None,
        typer.Option(metavar="N", help="Sentences to keep, from 1 to 50."),
    ] = None,
    url: BackendUrl = None,
    token: Token = None,
) -> None:
    """Ask the backend to summarise FILE or URL."""
    fields: Json = {}
    sentences = _checked_range(max_sentences, "--max-sentences", MAX_SENTENCES)
    if sentences is not None:
        fields["max_sentences"] = sentences
    # Read and checked before the client exists: a file the backend would
    # refuse is never sent, and no dev token is fetched for it.
    document = None if _is_http_url(source) else _read_document(source)
    if document is None:
        _check_document_url(source)
    with _client(url, token) as client:
        if document is None:
            accepted = client.submit_url(source, **_titled(fields, title))
        else:
            accepted = _submit_document(client, document, title, fields)
        job_id = accepted["id"]
        if not wait:
            if as_json:
                _print_json(accepted)
            else:
                typer.echo(f"{job_id}  queued")
                typer.echo(f"follow it with: digest status {job_id}", err=True)
            return
        try:
            job = _follow(client, job_id, show_progress=not as_json)
        except KeyboardInterrupt:
            typer.echo(
                f"stopped following; the job goes on: digest status {job_id}",
                err=True,
            )
            raise typer.Exit(130) from None
    if as_json:
        _print_json(job)
    else:
        _print_result(job)
    raise typer.Exit(0 if job["status"] == "succeeded" else 1)


@dataclass(frozen=True)
class Document:
    """A file as given on the command line, read and ready to send."""

    source: str  # as the user wrote it: errors name it so
    path: Path
    content: bytes
    text: str | None  # None: uploaded, for the backend to read


def _is_http_url(source: str) -> bool:
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", source)
    if scheme is None:
        return False
    if scheme[1].lower() in ("http", "https"):
        return True
    _refuse(
        f"{source}: Digest fetches only http:// and https:// URLs, not "
        f"{scheme[1]}://; give one of those, or the path of a local file"
    )


def _check_document_url(source: str) -> None:
    problem = _http_url_problem(source)
    if problem is not None:
        _refuse(
            f"{without_password(source)!r} is not a URL Digest can fetch "
            f"({problem}); give the document's full address, such as "
            "https://example.com/notes.txt, or the path of a local file"
        )


def _max_file_bytes() -> int:
    """The most any backend route could take for a document, whatever it
    holds: a JSON body's cap (MAX_TEXT_BYTES with room for escapes), which is
    above the upload route's. A larger file is refused unread."""
    return get_settings().max_text_bytes * ESCAPE_ALLOWANCE + ENVELOPE_BYTES


def _file_too_large(source: str, size: int) -> NoReturn:
    limit = get_settings().max_text_bytes
    _refuse(
        f"{source} is too large ({size:,} bytes; the backend takes at most "
        f"{limit:,}, the MAX_TEXT_BYTES set here): send a shorter document, "
        "or split it"
    )


def _read_document(source: str) -> Document:
    path = _checked_file(source)
    cap = _max_file_bytes()
    try:
        size = path.stat().st_size
        if size > cap:
            _file_too_large(source, size)
        with path.open("rb") as file:
            # No more than the cap, should the file grow meanwhile.
            content = file.read(cap + 1)
    except OSError as exc:
        _refuse(f"cannot read {source}: {exc.strerror}")
    if len(content) > cap:
        _file_too_large(source, len(content))
    try:
        text: str | None = content.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" in text:
        # Valid UTF-8 but binary (an image of a disk, a sparse file); the
        # backend's answer would name its 'text' field, not the file.
        offset = content.index(b"\x00")
        _refuse(
            f"{source} holds a NUL byte at offset {offset:,}: it is not a text "
            "document; give a text, Markdown, reStructuredText or HTML file"
        )
    if text is not None and not any(char.isalnum() for char in text):
        # The backend's test for "no words"; its answer would name its
        # 'text' field, not the file.
        _refuse(
            f"{source} is empty: it holds no words to summarise; "
            "give the file that holds the document"
        )
    if text is None or path.suffix.lower() in UPLOADED_SUFFIXES:
        # The backend's upload route reads other encodings and turns HTML
        # into text; plain UTF-8 goes as text, whatever the file's name.
        _check_uploadable(source, path)
        text = None
    return Document(source, path, content, text)


def _checked_file(source: str) -> Path:
    path = Path(source)
    if path.is_dir():
        _refuse(f"{source} is a folder; give one document file in it, or a URL")
    if not path.exists():
        _refuse(f"no such file: {source} (give a file or an http(s) URL)")
    if not path.is_file():
        _refuse(f"{source} is not a regular file; give a document file or a URL")
    return path


def _check_uploadable(source: str, path: Path) -> None:
    """Refuse what the upload route would answer 415 to, before sending it."""
    if path.suffix.lower() in UPLOADABLE_SUFFIXES:
        return
    accepted = " ".join(sorted(UPLOADABLE_SUFFIXES))
    _refuse(
        f"{source} is not UTF-8 text, and the backend reads other files only "
        f"when they end in {accepted}; convert it to UTF-8 text or one of those"
    )


def _submit_document(
    client: DigestClient, document: Document, title: str | None, fields: Json
) -> Json:
    fields = _titled(fields, title or document.path.name)
    try:
        if document.text is None:
            return client.submit_file(document.path, document.content, **fields)
        return client.submit_text(document.text, **fields)
    except ApiError as exc:
        if exc.status != 413:
            raise
        # The backend's limit (MAX_TEXT_BYTES) is its own setting: its
        # answer says what it is, where the client could only guess.
        raise ClientError(_too_large(document, exc)) from None


def _too_large(document: Document, exc: ApiError) -> str:
    message = f"{document.source} is too large ({len(document.content):,} bytes"
    limit = exc.details.get("limit_bytes")
    if isinstance(limit, int):
        message += f"; the backend takes at most {limit:,}"
    return message + "): send a shorter document, or split it"


def _titled(fields: Json, title: str | None) -> Json:
    return {**fields, "title": title} if title else fields


def _follow(client: DigestClient, job_id: str, *, show_progress: bool) -> Json:
    job: Json = {"id": job_id, "status": "queued"}
    columns = (
        # Step names come from the server: shown as they are, not as markup.
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    console = Console(stderr=True)
    with Progress(
        *columns, console=console, disable=not show_progress, transient=False
    ) as bar:
        task = bar.add_task(f"{job_id} queued", total=None)
        for event in client.events(job_id):
            job = event.job
            progress = job["progress"]
            described = job["status"]
            if progress["step"] and job["status"] not in TERMINAL:
                described += f": step {progress['step']}"
            bar.update(
                task,
                description=described,
                completed=progress["done"],
                total=progress["total"] or None,
            )
    return job


def _print_sentences(job: Json) -> None:
    for sentence in job.get("sentences") or []:
        typer.echo(f"  - {sentence}")


def _print_result(job: Json) -> None:
    if job["status"] != "succeeded":
        reason = job.get("error") or "no reason given"
        typer.echo(f"job {job['id']} {job['status']}: {reason}", err=True)
        return
    if job.get("title"):
        typer.echo(f"Summary of {job['title']}")
    _print_sentences(job)


def status(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id.")],
    as_json: AsJson = False,
    url: BackendUrl = None,
    token: Token = None,
) -> None:
    """Show a job: its status, progress and summary or error."""
    job_id = _checked_job_id(job_id)
    with _client(url, token) as client, _unknown_job_points_to_list():
        job = client.job(job_id)
    if as_json:
        _print_json(job)
        return
    progress = job["progress"]
    where = f"{progress['done']}/{progress['total']}"
    if progress.get("step") and job["status"] not in TERMINAL:
        where = f"step {progress['step']}, {where}"
    typer.echo(f"id       {job['id']}")
    typer.echo(f"title    {job.get('title') or '-'}")
    typer.echo(f"status   {job['status']} ({where})")
    typer.echo(f"created  {job['created_at']}")
    typer.echo(f"updated  {job['updated_at']}")
    if job.get("error"):
        typer.echo(f"error    {job['error']}")
    _print_sentences(job)


def cancel(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id.")],
    as_json: AsJson = False,
    url: BackendUrl = None,
    token: Token = None,
) -> None:
    """Cancel a job that is queued or running."""
    job_id = _checked_job_id(job_id)
    with _client(url, token) as client, _unknown_job_points_to_list():
        job = client.cancel(job_id)
    if as_json:
        _print_json(job)
    else:
        typer.echo(f"{job['id']}  {job['status']}")


def list_jobs(
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help=f"Only jobs in this state: {', '.join(STATUSES)}."
        ),
    ] = None,
    limit: Annotated[
        str | None,
        typer.Option(
            metavar="N",
            help=f"Jobs per page, from 1 to 100 (default {DEFAULT_PAGE_LIMIT}).",
        ),
    ] = None,
    cursor: Annotated[
        str | None, typer.Option(help="Page from a previous listing.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the page as JSON.")
    ] = False,
    url: BackendUrl = None,
    token: Token = None,
) -> None:
    """List your jobs, newest first."""
    if status is not None and status not in STATUSES:
        _refuse(f"--status must be one of {', '.join(STATUSES)}, not {status!r}")
    per_page = _checked_range(limit, "--limit", PAGE_LIMIT) or DEFAULT_PAGE_LIMIT
    with _client(url, token) as client:
        page = client.jobs(status=status, cursor=cursor, limit=per_page)
    if as_json:
        _print_json(page)
        return
    items = page.get("items") or []
    if not items:
        typer.echo("no jobs", err=True)
    for job in items:
        progress = job["progress"]
        counted = f"{progress['done']}/{progress['total']}"
        title = job.get("title") or "-"
        typer.echo(
            f"{job['id']}  {job['status']:<9}  {counted:>7}  "
            f"{job['created_at'][:19]}  {title}"
        )
    if page.get("next_cursor"):
        typer.echo(f"more: digest list --cursor {page['next_cursor']}", err=True)
