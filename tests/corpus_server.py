"""The test corpus over HTTP on a loopback port, for URL sources."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from digest import stack
from tests.conftest import CORPUS, Stack, start_stack


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_corpus() -> Iterator[str]:
    """The corpus folder's URL while the server runs."""
    handler = functools.partial(_QuietHandler, directory=str(CORPUS))
    server = http.server.ThreadingHTTPServer((stack.LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{stack.LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def stack_that_fetches_from(corpus_url: str, home: Path) -> Iterator[Stack]:
    """A stack whose URL fetcher may reach the corpus server (the backend
    refuses loopback addresses otherwise)."""
    port = corpus_url.rsplit(":", 1)[1]
    running = start_stack(home, backend_env={"FETCH_ALLOW_LOOPBACK_FOR_TESTS": port})
    try:
        yield running
    finally:
        running.backend.stop()
        running.executor.stop()
