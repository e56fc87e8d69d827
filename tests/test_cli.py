"""`digest summarize`, `status`, `cancel` and `list` against a real stack.

Each command runs as its own process, as a person would run it, with the
backend's URL from the PUBLIC_URL setting and its dev token fetched and
cached under DIGEST_HOME.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.api.body import ENVELOPE_BYTES, ESCAPE_ALLOWANCE
from backend.api.upload import FORMAT_OF_SUFFIX
from digest import stack
from digest.client import parse_sse
from digest.settings import get_settings
from tests.conftest import CORPUS, TERMINAL, Stack, normalised
from tests.corpus_server import serve_corpus, stack_that_fetches_from

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def doc_server() -> Iterator[str]:
    with serve_corpus() as url:
        yield url


@pytest.fixture(scope="module")
def cli_stack(
    tmp_path_factory: pytest.TempPathFactory, doc_server: str
) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("cli-stack")
    with stack_that_fetches_from(doc_server, home) as running:
        yield running


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One DIGEST_HOME for the module: the commands share a cached token,
    so jobs made by one command are seen by the next."""
    return tmp_path_factory.mktemp("cli-home")


def run_cli(
    args: list[str],
    *,
    backend: str,
    home: Path,
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DIGEST_TOKEN", "APP_ENV")
    }
    env.update(
        {
            "PUBLIC_URL": backend,
            "DIGEST_HOME": str(home),
            "PYTHONPATH": str(ROOT),
            "COLUMNS": "100",
            **(extra_env or {}),
        }
    )
    # The home folder as working directory: no dotenv file of the
    # repository's is read, so only the settings above count.
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli(cli_stack: Stack, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), backend=cli_stack.backend.url, home=home)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def refused_input(result: subprocess.CompletedProcess[str]) -> str:
    """The error line of input the client refuses itself: exit code 2, as
    for a bad option."""
    line = one_error_line(result)
    assert result.returncode == 2, result
    return line


@pytest.fixture
def no_backend() -> str:
    """A URL where nothing listens: a command that refuses its input there
    with its own message, not "cannot reach", sent nothing."""
    return f"http://{stack.LOOPBACK}:{stack.free_port()}"


def wait_status(cli_stack: Stack, home: Path, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        result = cli(cli_stack, home, "status", job_id, "--json")
        assert result.returncode == 0, result.stderr
        job: dict[str, Any] = json.loads(result.stdout)
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end")


def test_summarize_wait_prints_the_summary(cli_stack: Stack, home: Path) -> None:
    document = CORPUS / "pep-0257.rst"
    result = cli(cli_stack, home, "summarize", str(document), "--wait")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Summary of pep-0257.rst"
    sentences = [line.removeprefix("  - ") for line in lines[1:]]
    assert 1 <= len(sentences) <= 5
    source = normalised(document.read_text())
    for sentence in sentences:
        assert normalised(sentence) in source
    # The progress bar went to stderr, so stdout holds only the summary.
    assert "succeeded" in result.stderr


def test_summarize_json_output_parses(cli_stack: Stack, home: Path) -> None:
    document = str(CORPUS / "pep-0020.rst")
    queued = cli(cli_stack, home, "summarize", document, "--json")
    assert queued.returncode == 0, queued.stderr
    accepted = json.loads(queued.stdout)
    assert accepted["status"] == "queued"
    assert accepted["links"]["self"].endswith(accepted["id"])

    done = cli(
        cli_stack,
        home,
        "summarize",
        document,
        "--wait",
        "--json",
        "--title",
        "The Zen",
        "--max-sentences",
        "2",
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "succeeded"
    assert job["title"] == "The Zen"
    assert 1 <= len(job["sentences"]) <= 2


def test_summarize_a_url(cli_stack: Stack, home: Path, doc_server: str) -> None:
    result = cli(
        cli_stack, home, "summarize", f"{doc_server}/pep-0257.rst", "--wait", "--json"
    )
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["status"] == "succeeded", job
    source = normalised((CORPUS / "pep-0257.rst").read_text())
    assert all(normalised(s) in source for s in job["sentences"])


def test_files_the_server_must_convert_are_uploaded(
    cli_stack: Stack, home: Path, tmp_path: Path
) -> None:
    zen = (CORPUS / "pep-0020.rst").read_text()
    latin = tmp_path / "zen-latin-1.txt"
    latin.write_bytes(("Café notes. " + zen).encode("latin-1"))
    page = tmp_path / "zen.html"
    paragraphs = "".join(f"<p>{line}</p>" for line in zen.splitlines() if line)
    page.write_text(f"<html><body><h1>Zen</h1>{paragraphs}</body></html>")
    for path in (latin, page):
        result = cli(cli_stack, home, "summarize", str(path), "--wait", "--json")
        assert result.returncode == 0, result.stderr
        job = json.loads(result.stdout)
        assert job["status"] == "succeeded", job
        assert job["title"] == path.name
        assert "<p>" not in " ".join(job["sentences"])


def test_status_and_list(cli_stack: Stack, home: Path) -> None:
    result = cli(cli_stack, home, "summarize", str(CORPUS / "pep-0020.rst"))
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[0]
    job = wait_status(cli_stack, home, job_id)
    assert job["status"] == "succeeded"

    status = cli(cli_stack, home, "status", job_id)
    assert status.returncode == 0, status.stderr
    assert f"id       {job_id}" in status.stdout
    assert "status   succeeded" in status.stdout
    assert "  - " in status.stdout

    listed = cli(cli_stack, home, "list")
    assert listed.returncode == 0, listed.stderr
    assert job_id in listed.stdout
    done = cli(cli_stack, home, "list", "--status", "succeeded", "--json")
    assert done.returncode == 0, done.stderr
    page = json.loads(done.stdout)
    assert job_id in [item["id"] for item in page["items"]]
    assert {item["status"] for item in page["items"]} == {"succeeded"}

    wrong = cli(cli_stack, home, "list", "--status", "finished")
    assert wrong.returncode == 2
    assert "finished" in wrong.stderr


def test_cancel_a_running_job(cli_stack: Stack, home: Path, tmp_path: Path) -> None:
    big = tmp_path / "pep-0008-x30.rst"
    big.write_text((CORPUS / "pep-0008.rst").read_text() * 30)
    result = cli(cli_stack, home, "summarize", str(big))
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[0]

    cancelled = cli(cli_stack, home, "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.split() == [job_id, "cancelled"]
    assert wait_status(cli_stack, home, job_id)["status"] == "cancelled"

    again = cli(cli_stack, home, "cancel", job_id)
    assert "already ended" in one_error_line(again)
    assert again.returncode == 1


def test_api_errors_are_one_line(cli_stack: Stack, home: Path, tmp_path: Path) -> None:
    for command in ("status", "cancel"):
        missing = cli(cli_stack, home, command, "01NOSUCHJOB")
        line = one_error_line(missing)
        assert "no summary job with id '01NOSUCHJOB'" in line
        assert "`digest list`" in line
        assert missing.returncode == 1

    no_file = cli(cli_stack, home, "summarize", str(tmp_path / "absent.txt"))
    assert "no such file" in refused_input(no_file)


def test_a_file_type_the_api_refuses_is_never_sent(
    no_backend: str, tmp_path: Path
) -> None:
    # Not UTF-8, so it would be uploaded, and the upload route reads files
    # by their extension only.
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.7\n\xe2\xe3\xcf\xd3\n")
    result = run_cli(["summarize", str(pdf)], backend=no_backend, home=tmp_path)
    line = refused_input(result)
    assert str(pdf) in line
    assert all(suffix in line for suffix in FORMAT_OF_SUFFIX)


def test_an_empty_file_is_named_not_the_api_field(
    cli_stack: Stack, home: Path, tmp_path: Path
) -> None:
    for content in ("", "   \n"):
        notes = tmp_path / "notes.txt"
        notes.write_text(content)
        line = one_error_line(cli(cli_stack, home, "summarize", str(notes)))
        assert f"{notes} is empty" in line
        assert "'text'" not in line


def test_a_file_over_the_limit_is_named_with_the_limit(
    cli_stack: Stack, home: Path, tmp_path: Path
) -> None:
    limit = get_settings().max_text_bytes
    utf8 = tmp_path / "long.md"
    utf8.write_bytes(b"Word. " * (limit // 6 + 1))
    # Not UTF-8: uploaded, so the backend's upload route answers instead.
    latin = tmp_path / "long-latin-1.txt"
    latin.write_bytes("Café. ".encode("latin-1") * (limit // 6 + 1))
    for path in (utf8, latin):
        result = cli(cli_stack, home, "summarize", str(path))
        line = one_error_line(result)
        assert f"{path} is too large" in line
        assert f"at most {limit:,}" in line
        assert "'text'" not in line
        assert "'file'" not in line


def test_an_empty_job_id_is_refused(no_backend: str, tmp_path: Path) -> None:
    for command in ("status", "cancel"):
        result = run_cli([command, ""], backend=no_backend, home=tmp_path)
        line = refused_input(result)
        assert "job id is empty" in line
        assert "digest list" in line


def test_a_backend_url_that_is_not_a_url_is_refused(
    no_backend: str, tmp_path: Path
) -> None:
    result = run_cli(["list", "--url", "notaurl"], backend=no_backend, home=tmp_path)
    line = refused_input(result)
    assert "--url 'notaurl' is not a URL" in line
    assert "http://127.0.0.1:8000" in line
    from_setting = run_cli(["list"], backend="notaurl", home=tmp_path)
    assert "PUBLIC_URL 'notaurl' is not a URL" in refused_input(from_setting)


def test_a_folder_is_refused_as_a_folder(no_backend: str, tmp_path: Path) -> None:
    result = run_cli(["summarize", str(tmp_path)], backend=no_backend, home=tmp_path)
    line = refused_input(result)
    assert f"{tmp_path} is a folder" in line
    assert "no such file" not in line


def test_a_url_that_is_not_http_is_refused(no_backend: str, tmp_path: Path) -> None:
    source = "ftp://ftp.example.com/notes.txt"
    result = run_cli(["summarize", source], backend=no_backend, home=tmp_path)
    line = refused_input(result)
    assert "only http:// and https://" in line
    assert "not ftp://" in line
    assert "no such file" not in line


def test_a_bad_token_is_one_line(cli_stack: Stack, home: Path) -> None:
    result = cli(cli_stack, home, "list", "--token", "not-a-jwt")
    line = one_error_line(result)
    # The token was given: no advice to give one.
    assert "the token given by --token was refused: " in line
    assert "pass --token" not in line
    from_setting = run_cli(
        ["list"],
        backend=cli_stack.backend.url,
        home=home,
        extra_env={"DIGEST_TOKEN": "not-a-jwt"},
    )
    line = one_error_line(from_setting)
    assert "the token given by DIGEST_TOKEN was refused: " in line
    assert "set DIGEST_TOKEN" not in line


def test_the_dev_token_is_cached_per_backend(cli_stack: Stack, home: Path) -> None:
    assert cli(cli_stack, home, "list").returncode == 0
    cached = json.loads((home / "cli-tokens.json").read_text())
    assert set(cached) == {cli_stack.backend.url}
    assert (home / "cli-tokens.json").stat().st_mode & 0o077 == 0


def test_a_stale_cached_token_is_replaced(cli_stack: Stack, home: Path) -> None:
    cache = home / "cli-tokens.json"
    assert cli(cli_stack, home, "list").returncode == 0
    cache.write_text(json.dumps({cli_stack.backend.url: "stale"}))
    result = cli(cli_stack, home, "list")
    assert result.returncode == 0, result.stderr
    assert json.loads(cache.read_text())[cli_stack.backend.url] != "stale"


def test_backend_down_is_one_line(tmp_path: Path) -> None:
    nobody = f"http://{stack.LOOPBACK}:{stack.free_port()}"
    for args in (["status", "01ANY"], ["summarize", str(CORPUS / "pep-0020.rst")]):
        result = run_cli(args, backend=nobody, home=tmp_path)
        line = one_error_line(result)
        assert f"cannot reach the backend at {nobody}" in line
        assert result.returncode == 1


def test_server_sent_events_are_parsed() -> None:
    job = {"id": "01X", "status": "running"}
    lines = [
        ": ping",
        "event: progress",
        "id: 4",
        f"data: {json.dumps(job)}",
        "",
        "event: completed",
        'data: {"id": "01X",',
        'data:  "status": "succeeded"}',
        "",
    ]
    events = list(parse_sse(iter(lines)))
    assert [(i, e.kind) for i, e in events] == [("4", "progress"), ("4", "completed")]
    assert events[0][1].job == job
    assert events[1][1].job == {"id": "01X", "status": "succeeded"}


def test_a_file_too_large_for_any_route_is_refused_unread(
    no_backend: str, tmp_path: Path
) -> None:
    # Over what even a JSON body of escaped text may be: refused from its
    # size alone. Sparse, so nothing but its size says it is not empty.
    cap = get_settings().max_text_bytes * ESCAPE_ALLOWANCE + ENVELOPE_BYTES
    for size in (cap + 1, 1 << 30):
        sparse = tmp_path / "sparse.txt"
        with sparse.open("wb") as file:
            file.truncate(size)
        started = time.monotonic()
        result = run_cli(["summarize", str(sparse)], backend=no_backend, home=tmp_path)
        line = refused_input(result)
        assert f"{sparse} is too large ({size:,} bytes;" in line
        assert "empty" not in line
        assert time.monotonic() - started < 30


def test_nul_bytes_are_named_with_the_file(no_backend: str, tmp_path: Path) -> None:
    zeros = tmp_path / "zeros.txt"
    zeros.write_bytes(bytes(4096))
    line = refused_input(
        run_cli(["summarize", str(zeros)], backend=no_backend, home=tmp_path)
    )
    assert f"{zeros} holds a NUL byte at offset 0: it is not a text document" in line
    assert "empty" not in line
    notes = tmp_path / "notes.md"
    notes.write_bytes(b"Hello world.\x00 And more words.")
    line = refused_input(
        run_cli(["summarize", str(notes)], backend=no_backend, home=tmp_path)
    )
    assert f"{notes} holds a NUL byte at offset 12" in line
    assert "'text'" not in line


def test_a_password_in_the_backend_url_is_masked(tmp_path: Path) -> None:
    port = stack.free_port()
    secret_url = f"http://u:secretpw@{stack.LOOPBACK}:{port}"
    masked = f"http://u:***@{stack.LOOPBACK}:{port}"
    given = run_cli(["list", "--url", secret_url], backend="unused", home=tmp_path)
    from_setting = run_cli(["list"], backend=secret_url, home=tmp_path)
    for result in (given, from_setting):
        line = one_error_line(result)
        assert f"cannot reach the backend at {masked}" in line
        assert "secretpw" not in result.stderr
    not_a_url = run_cli(
        ["list", "--url", "http://u:secretpw@:1"], backend="unused", home=tmp_path
    )
    assert "is not a URL" in refused_input(not_a_url)
    assert "secretpw" not in not_a_url.stderr


def test_a_url_without_a_host_is_refused(no_backend: str, tmp_path: Path) -> None:
    for source, problem in (
        ("http://", "names no host"),
        ("https://example.com:99999/notes.txt", "port 99999"),
    ):
        result = run_cli(["summarize", source], backend=no_backend, home=tmp_path)
        line = refused_input(result)
        assert f"{source!r} is not a URL Digest can fetch" in line
        assert problem in line
        assert "https://example.com/notes.txt" in line


def test_bad_option_values_are_one_line(no_backend: str, tmp_path: Path) -> None:
    document = str(CORPUS / "pep-0020.rst")
    for args, expected in (
        (["list", "--status", "bogus"], "--status must be one of queued, "),
        (["list", "--limit", "0"], "--limit must be a whole number from 1 to 100"),
        (
            ["summarize", document, "--max-sentences", "0"],
            "--max-sentences must be a whole number from 1 to 50, not '0'",
        ),
        (["summarize", document, "--max-sentences", "many"], "not 'many'"),
    ):
        line = refused_input(run_cli(args, backend=no_backend, home=tmp_path))
        assert expected in line
    status = run_cli(["list", "--status", "bogus"], backend=no_backend, home=tmp_path)
    assert refused_input(status).endswith("not 'bogus'")
