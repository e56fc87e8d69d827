"""Documents from uploaded files and from URLs, end to end; SSRF refused.

Private, link-local and metadata ranges are proved refused by the policy
itself with an injected resolver (test_address_policy.py), so that no test
ever sends a packet beyond loopback. Every server here listens on
127.0.0.1. The backend may fetch from the `site` server's port (and from
one closed port) only because the tests' setting
FETCH_ALLOW_LOOPBACK_FOR_TESTS names them; the `trap` server's port
is not named, and it must never see a request.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest import stack
from tests.conftest import CORPUS, Stack, normalised, start_stack

PROSE = (CORPUS / "pep-0257.rst").read_text(encoding="utf-8")
PARAGRAPHS = [p for p in PROSE.split("\n\n") if len(p) > 200 and "::" not in p][:12]
PAGE = (
    "<!doctype html><html><head><title>Docstrings</title>"
    "<script>var tracking = 1;</script></head><body><nav>Home | About</nav>"
    "<article>"
    + "".join(f"<p>{html.escape(p)}</p>" for p in PARAGRAPHS)
    + "</article><footer>Copyright nobody</footer></body></html>"
)


class Site(BaseHTTPRequestHandler):
    trap_url = ""

    def log_message(self, *_args: Any) -> None:
        pass

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        if path == "/page.html":
            self._send(200, "text/html; charset=utf-8", PAGE.encode())
        elif path == "/doc.md":
            self._send(200, "text/markdown", PROSE.encode())
        elif path == "/hop":
            self.send_response(302)
            self.send_header("Location", "/doc.md")
            self.end_headers()
        elif path == "/to-loopback":
            self.send_response(302)
            self.send_header("Location", f"{self.trap_url}/secret")
            self.end_headers()
        elif path == "/image.png":
            self._send(200, "image/png", b"\x89PNG\r\n\x1a\n" + bytes(64))
        elif path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            block = b"All work and no play makes a dull summary. " * 1500
            try:
                while True:
                    self.wfile.write(block)
            except OSError:
                return
        else:
            self._send(404, "text/plain", b"no such page")


class Trap(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *_args: Any) -> None:
        pass

    def do_GET(self) -> None:
        Trap.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"secret")


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((stack.LOOPBACK, 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    trap = _serve(Trap)
    Site.trap_url = f"http://{stack.LOOPBACK}:{trap.server_port}"
    site = _serve(Site)
    yield {
        "site": f"http://{stack.LOOPBACK}:{site.server_port}",
        "site_port": site.server_port,
        "trap_port": trap.server_port,
        "closed_port": stack.free_port(),
    }
    site.shutdown()
    trap.shutdown()


@pytest.fixture(scope="module")
def fetching_stack(
    tmp_path_factory: pytest.TempPathFactory, servers: dict[str, Any]
) -> Iterator[Stack]:
    allowed = f"{servers['site_port']},{servers['closed_port']}"
    running = start_stack(
        tmp_path_factory.mktemp("sources"),
        backend_env={"FETCH_ALLOW_LOOPBACK_FOR_TESTS": allowed},
    )
    yield running
    running.backend.stop()
    running.executor.stop()


def _from_url(stack_: Stack, url: str) -> dict[str, Any]:
    with stack_.api as http:
        answer = http.post("/api/summaries", json={"url": url, "max_sentences": 3})
    assert answer.status_code == 202, answer.text
    return stack_.wait(answer.json()["id"])


def test_html_page_is_summarised_from_its_prose(
    fetching_stack: Stack, servers: dict[str, Any]
) -> None:
    url = f"{servers['site']}/page.html"
    job = _from_url(fetching_stack, url)
    assert job["status"] == "succeeded", job
    assert job["url"] == url
    source = normalised(" ".join(PARAGRAPHS))
    for sentence in job["sentences"]:
        assert normalised(sentence) in source, sentence
    assert "tracking" not in job["summary"]


@pytest.mark.parametrize("path", ["/doc.md", "/hop"])
def test_text_document_and_redirect_within_allowed(
    fetching_stack: Stack, servers: dict[str, Any], path: str
) -> None:
    job = _from_url(fetching_stack, servers["site"] + path)
    assert job["status"] == "succeeded", job


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("http://127.0.0.1:{trap_port}/secret", "loopback"),
        ("http://localhost:{trap_port}/secret", "loopback"),
        ("http://[::1]:{trap_port}/secret", "loopback"),
        ("{site}/to-loopback", "redirects to"),
    ],
    ids=["ip", "localhost", "ipv6", "redirect"],
)
def test_ssrf_attempts_fail_the_job_with_the_rule(
    fetching_stack: Stack, servers: dict[str, Any], target: str, says: str
) -> None:
    before = len(Trap.hits)
    job = _from_url(fetching_stack, target.format(**servers))
    assert job["status"] == "failed", job
    assert says in job["error"]
    assert "only public addresses are fetched" in job["error"]
    assert len(Trap.hits) == before


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/huge", "more than 5 MB"),
        ("/image.png", "image/png"),
        ("/nothing-here", "answered 404"),
    ],
)
def test_unusable_answers_fail_the_job_with_a_reason(
    fetching_stack: Stack, servers: dict[str, Any], path: str, says: str
) -> None:
    job = _from_url(fetching_stack, servers["site"] + path)
    assert job["status"] == "failed", job
    assert says in job["error"]


def test_unreachable_url_fails_after_its_retries(
    fetching_stack: Stack, servers: dict[str, Any]
) -> None:
    job = _from_url(fetching_stack, f"http://127.0.0.1:{servers['closed_port']}/")
    assert job["status"] == "failed", job
    assert "could not reach" in job["error"]


def _upload(stack_: Stack, name: str, content: bytes, **fields: str) -> httpx.Response:
    with stack_.api as http:
        return http.post("/api/summaries", files={"file": (name, content)}, data=fields)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("pep.rst", PROSE.encode()),
        ("notes.md", PROSE.encode("utf-16")),
        ("plain.txt", ("Caf\xe9 culture. " + PROSE).encode("latin-1", "replace")),
        ("page.html", PAGE.encode()),
    ],
    ids=["rst", "utf16-md", "latin1-txt", "html"],
)
def test_uploaded_files_are_summarised(
    fetching_stack: Stack, name: str, content: bytes
) -> None:
    answer = _upload(fetching_stack, name, content, title=name, max_sentences="2")
    assert answer.status_code == 202, answer.text
    job = fetching_stack.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["title"] == name
    assert 1 <= len(job["sentences"]) <= 2


@pytest.mark.parametrize(
    ("name", "content", "fields", "status", "says"),
    [
        ("doc.pdf", b"%PDF-1.4", {}, 415, ".html"),
        ("noext", b"Some text here.", {}, 415, "not a type"),
        ("big.txt", b"word " * 400_001, {}, 413, "at most"),
        ("empty.txt", b"", {}, 422, "empty"),
        ("bin.txt", bytes(range(256)) * 8, {}, 422, "not text"),
        ("dots.txt", b"... --- !!!", {}, 422, "no words"),
        ("ok.txt", b"Fine text.", {"max_sentences": "lots"}, 422, "max_sentences"),
        ("ok.txt", b"Fine text.", {"max_sentences": "0"}, 422, "max_sentences"),
        ("ok.txt", b"Fine text.", {"colour": "red"}, 422, "colour"),
        ("ok.txt", b"Fine text.", {"format": "pdf"}, 422, "format"),
        ("p.html", b"<p>Hello there.</p>", {"format": "rst"}, 422, "format"),
    ],
)
def test_bad_uploads_are_refused(
    fetching_stack: Stack,
    name: str,
    content: bytes,
    fields: dict[str, str],
    status: int,
    says: str,
) -> None:
    answer = _upload(fetching_stack, name, content, **fields)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]["message"]


# Latin-1 prose with one NUL (character 30 of 60); every other character prints.
LATIN1_WITH_NUL = (
    "Caf\xe9 cr\xe8me: the r\xe9sum\xe9 lists \x00 "
    "every na\xefve fa\xe7ade in Z\xfcrich."
).encode("latin-1")


def test_refused_bytes_name_their_own_reason() -> None:
    from functions.sources.decode import NotText, decode_text

    with pytest.raises(NotText) as nul:
        decode_text(LATIN1_WITH_NUL)
    says = str(nul.value)
    assert "control characters" not in says
    assert "character 30 of 60 is a NUL" in says
    assert "send the document as plain text without NUL bytes" in says

    with pytest.raises(NotText) as control:
        decode_text(bytes(range(1, 32)) * 10)
    says = str(control.value)
    assert "NUL" not in says
    assert "read as UTF-8, 260 of its 310 characters are control characters" in says
    assert "send the document as plain text" in says


def test_latin1_upload_with_one_nul_is_refused_for_the_nul(
    fetching_stack: Stack,
) -> None:
    answer = _upload(fetching_stack, "cafe.txt", LATIN1_WITH_NUL)
    assert answer.status_code == 422, answer.text
    says = answer.json()["error"]["message"]
    assert "is a NUL" in says, says
    assert "control characters" not in says, says


def test_upload_without_a_file_part_is_a_422(fetching_stack: Stack) -> None:
    with fetching_stack.api as http:
        answer = http.post("/api/summaries", files={"other": ("a.txt", b"x")})
    assert answer.status_code == 422
    with fetching_stack.api as http:
        answer = http.post(
            "/api/summaries",
            content=b"--x\r\nbroken",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
    assert answer.status_code in {400, 422}, answer.text
    assert answer.json()["error"]["code"]


def test_nothing_was_sent_to_the_trap(servers: dict[str, Any]) -> None:
    assert Trap.hits == []


def test_backend_log_has_no_traceback(fetching_stack: Stack) -> None:
    log = Path(fetching_stack.backend.log_path).read_text()
    assert "Traceback" not in log
