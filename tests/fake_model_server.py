"""A stand-in for a hosted language model: an OpenAI-compatible
`/v1/chat/completions` on a loopback port, with scripted misbehaviour.

No hosted model is reachable from the tests, so this is the one boundary
they fake. It answers like a real provider, over real HTTP: each request
takes the next scripted `Reply` (a status, headers, a delay, a broken
body), and once the script is used up it answers with a chat completion
made of the document's own first sentences, so that a summary can be
traced back to its source. Every request is recorded, with how many were
in flight at once.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import Stack, start_stack

LOOPBACK = "127.0.0.1"
_DOCUMENT = re.compile(r"<document>\s*(.*?)\s*</document>", re.S)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# One chunk at llm_settings' context size, so requests come in a known
# order: the chunk's map step, then `combine`.
SHORT_DOCUMENT = (
    "Digest turns a slow request into a durable background job. The client "
    "gets an answer at once and follows the job as it runs. Each step is "
    "retried on its own when it fails. A failed job says why in a sentence."
)


@dataclass(frozen=True)
class Reply:
    """How to answer one request; the defaults are a good chat completion."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Raw bytes to send instead of a chat completion.
    body: bytes | None = None
    # Seconds to wait before answering (a slow model).
    delay: float = 0.0
    # A 401 body that quotes the key it refused, as some providers do.
    echo_key: bool = False


@dataclass
class Seen:
    at: float
    authorization: str
    body: dict[str, Any]
    status: int


class FakeModelServer:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self.port = 0
        # Bumped by reset(): a slow request from before it (one its client
        # gave up on) is not counted among the requests after it.
        self._generation = 0

    @property
    def url(self) -> str:
        """The base URL, as LLM_BASE_URL takes it."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    def reset(self, *replies: Reply) -> None:
        with self._lock:
            self.script = deque(replies)
            self.seen = []
            self.most_in_flight = 0
            self._generation += 1

    def _next(self) -> tuple[Reply, int]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            reply = self.script.popleft() if self.script else Reply()
            return reply, self._generation

    def _done(self, seen: Seen, generation: int) -> None:
        with self._lock:
            self.in_flight -= 1
            if generation == self._generation:
                self.seen.append(seen)

    def answer(
        self, authorization: str, raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        reply, generation = self._next()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        time.sleep(reply.delay)
        if reply.echo_key:
            key = authorization.removeprefix("Bearer ")
            content = json.dumps(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {key}.",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                }
            ).encode()
        elif reply.body is not None:
            content = reply.body
        else:
            content = json.dumps(_completion(body)).encode()
        self._done(
            Seen(time.monotonic(), authorization, body, reply.status), generation
        )
        return reply.status, reply.headers, content


def _completion(request: dict[str, Any]) -> dict[str, Any]:
    """A chat completion whose text comes from the request's document."""
    prompt = str((request.get("messages") or [{}])[-1].get("content", ""))
    found = _DOCUMENT.search(prompt)
    document = found.group(1) if found else prompt
    if "[part 1]" in document:
        # The reduce step: one point per part, its first sentence.
        parts = re.split(r"\[part \d+\]\s*", document)
        lines = [_SENTENCE.split(part.strip())[0] for part in parts if part.strip()]
        text = "\n".join(lines)
    else:
        text = " ".join(_SENTENCE.split(document.strip())[:2])
    return {
        "id": "chatcmpl-stand-in",
        "object": "chat.completion",
        "model": request.get("model", "stand-in"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _handler(server: FakeModelServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {}, b'{"error": {"message": "no such route"}}')
                return
            status, headers, content = server.answer(
                self.headers.get("authorization", ""), raw
            )
            self._send(status, headers, content)

        def _send(self, status: int, headers: dict[str, str], content: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(content)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def stand_in_model() -> Iterator[FakeModelServer]:
    """A FakeModelServer on a free loopback port while the block runs."""
    fake = FakeModelServer()
    httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), _handler(fake))
    httpd.daemon_threads = True
    fake.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def llm_settings(fake: FakeModelServer, api_key: str, **extra: str) -> dict[str, str]:
    """Backend settings that point the `llm` summariser at `fake`, with a
    small context window so that a short document makes several chunks."""
    return {
        "SUMMARIZER": "llm",
        "LLM_BASE_URL": fake.url,
        "LLM_MODEL": "stand-in-model",
        "LLM_API_KEY": api_key,
        "LLM_CONTEXT_TOKENS": "1024",
        "LLM_MAX_OUTPUT_TOKENS": "128",
        "LLM_MAX_CONCURRENCY": "2",
        "LLM_TIMEOUT_SECONDS": "2",
        **extra,
    }


def files_containing(root: Path, secret: str) -> list[Path]:
    """Every file under `root` (databases, their WAL files, logs) whose
    bytes contain `secret`."""
    needle = secret.encode()
    return [
        path
        for path in sorted(root.rglob("*"))
        if path.is_file() and needle in path.read_bytes()
    ]


@contextlib.contextmanager
def stack_with_stand_in(
    home: Path, api_key: str, **settings: str
) -> Iterator[tuple[Stack, FakeModelServer]]:
    """An executor and a backend whose `llm` summariser calls a stand-in."""
    with stand_in_model() as fake:
        running = start_stack(home, backend_env=llm_settings(fake, api_key, **settings))
        try:
            yield running, fake
        finally:
            running.backend.stop()
            running.executor.stop()


def steps_by_name(stack: Stack, job_id: str) -> dict[str, dict[str, Any]]:
    """The steps of the job's one run, by step name."""
    runs = stack.runs_of(job_id)
    assert len(runs) == 1, runs
    steps = stack.executor_get(f"/v1/runs/{runs[0]['run_id']}/steps")
    return {str(step["name"]): step for step in steps}
