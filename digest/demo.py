"""`digest demo`: one real document through the whole stack.

client -> backend -> event -> executor -> step functions -> result, with
every part a real process talking HTTP on loopback ports.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from digest import stack
from digest.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEFAULT_DOCUMENT = EXAMPLES / "pep-0257.rst"
TERMINAL = {"succeeded", "failed", "cancelled"}


class DemoFailed(RuntimeError):
    pass


@contextlib.contextmanager
def running_stack(settings: Settings, console: Console) -> Iterator[str]:
    """The backend's URL: one already running, or a stack started for us."""
    if stack.answers(f"{settings.public_url}/readyz"):
        console.print(f"using the backend already running at {settings.public_url}")
        yield settings.public_url
        return

    with tempfile.TemporaryDirectory(prefix="digest-demo-") as folder:
        started = stack.start_local_stack(Path(folder))
        console.print(f"executor  {started.executor.url}  (pid {started.executor.pid})")
        console.print(f"backend   {started.backend.url}  (pid {started.backend.pid})")
        try:
            yield started.backend.url
        except BaseException:
            for service in (started.backend, started.executor):
                console.print(f"[dim]--- {service.name} log ---[/dim]")
                console.print(service.log_tail(), markup=False, highlight=False)
            raise
        finally:
            started.stop()


def read_document(path: Path) -> str:
    """The document's text, or DemoFailed saying why it cannot be used."""
    if not path.is_file():
        raise DemoFailed(f"no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DemoFailed(
            f"{path} is not UTF-8 text; give a plain text, Markdown or reST file"
        ) from None
    except OSError as exc:
        raise DemoFailed(f"cannot read {path}: {exc.strerror}") from None
    if not any(char.isalnum() for char in text):
        raise DemoFailed(f"{path} has no words to summarise")
    return text


def summarise(
    backend_url: str,
    title: str,
    text: str,
    console: Console,
    *,
    max_sentences: int = 5,
    timeout: float = 300.0,
) -> dict[str, Any]:
    try:
        token = stack.dev_token(backend_url, "demo")
    except stack.StackError as exc:
        raise DemoFailed(str(exc)) from None
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=backend_url, timeout=30, headers=auth) as http:
        answer = http.post(
            "/api/summaries",
            json={"text": text, "title": title, "max_sentences": max_sentences},
        )
        if answer.status_code != 202:
            raise DemoFailed(f"the backend refused the document: {answer.text}")
        job_id = answer.json()["id"]
        console.print(f"job       {job_id}  queued ({len(text)} characters)")
        return _follow(http, job_id, console, timeout=timeout)


def _follow(
    http: httpx.Client, job_id: str, console: Console, *, timeout: float
) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TaskProgressColumn(),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("queued", total=None)
        reported = 0
        while True:
            job = http.get(f"/api/summaries/{job_id}").json()
            progress = job["progress"]
            step = progress["step"] or job["status"]
            if progress["done"] > reported:
                # One line per change, so the steps show in a log as well as
                # on a terminal; parallel steps may finish between two polls.
                reported = progress["done"]
                bar.console.print(
                    f"  step {step:<22} done  ({reported}/{progress['total']})",
                    highlight=False,
                )
            bar.update(
                task,
                description=f"{job['status']}: {step}",
                completed=progress["done"],
                total=progress["total"],
            )
            if job["status"] in TERMINAL:
                return dict(job)
            if time.monotonic() > deadline:
                raise DemoFailed(f"job {job_id} did not finish within {timeout:.0f}s")
            time.sleep(0.05)


def run_demo(settings: Settings, document: Path, text: str, console: Console) -> int:
    with running_stack(settings, console) as backend_url:
        job = summarise(backend_url, document.name, text, console)
    if job["status"] != "succeeded":
        console.print(f"[red]job {job['id']} {job['status']}:[/red] {job['error']}")
        return 1
    console.print()
    console.print(f"[bold]Summary of {document.name}[/bold]")
    for sentence in job["sentences"]:
        console.print(f"  - {sentence}", highlight=False)
    return 0
