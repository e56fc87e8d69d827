"""A client for Digest's public HTTP API, as the CLI uses it.

Every failure becomes a `ClientError` whose message is one line a person
can act on: the API's own message for an error answer, or what could not
be reached for a network failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from digest.urls import without_password

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
FINAL_EVENTS = frozenset({"completed", "failed", "cancelled"})
# The server pings an open stream every 15 s; twice that with no byte at
# all means the connection is gone, not merely quiet.
STREAM_READ_TIMEOUT = 45.0
RECONNECT_SECONDS = 0.5
RECONNECT_TRIES = 20

Json = dict[str, Any]


class ClientError(RuntimeError):
    """Something went wrong; the message is one readable line."""


class ApiError(ClientError):
    """The API answered with an error; `details` holds the error's fields
    besides code and message (a 413's `limit_bytes`)."""

    def __init__(
        self, status: int, code: str, message: str, details: Json | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}


@dataclass(frozen=True)
class JobEvent:
    kind: str
    job: Json


class DevTokens:
    """Tokens from the dev profile's `POST /api/dev/token`, kept in a file
    (one per backend URL, since each backend signs with its own secret)."""

    def __init__(self, cache_file: Path, subject: str) -> None:
        self.cache_file = cache_file
        self.subject = subject

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, tokens: dict[str, str]) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the first byte: the file holds bearer tokens.
        fd = os.open(self.cache_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(tokens, out, indent=2)

    def cached(self, base_url: str) -> str | None:
        token = self._read().get(base_url)
        return token if isinstance(token, str) else None

    def forget(self, base_url: str) -> None:
        tokens = self._read()
        if tokens.pop(base_url, None) is not None:
            self._write(tokens)

    def fetch(self, http: httpx.Client, base_url: str) -> str | None:
        """A new token, or None where the backend hands out none (not dev)."""
        answer = http.post("/api/dev/token", json={"sub": self.subject})
        if answer.status_code in (403, 404, 405):
            return None
        if answer.is_error:
            raise api_error(answer)
        token = answer.json().get("token")
        if not isinstance(token, str):
            raise ClientError("the backend's /api/dev/token answer has no token")
        self._write({**self._read(), base_url: token})
        return token


def api_error(answer: httpx.Response, *, token_from: str | None = None) -> ApiError:
    """The answer's error as one line; `token_from` names where the token
    sent came from (--token, DIGEST_TOKEN), None for none or a dev token."""
    code, message, details = "http_error", "", {}
    with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
        error = answer.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = {k: v for k, v in error.items() if k not in ("code", "message")}
    if not message:
        message = f"the backend answered {answer.status_code} {answer.reason_phrase}"
    if message in ("Not Found", "Method Not Allowed"):
        # The route itself is missing, not a job: an older backend.
        request = answer.request
        code = "no_route"
        message = (
            f"the backend has no {request.method} {request.url.path} "
            f"({message}); is it older than this client?"
        )
    if answer.status_code == 401 and token_from is not None:
        message = f"the token given by {token_from} was refused: {message}"
    elif answer.status_code == 401:
        message += " (set DIGEST_TOKEN or pass --token)"
    # One line, whatever the server put in it.
    return ApiError(answer.status_code, code, " ".join(message.split()), details)


class DigestClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        token_from: str | None = None,
        dev_tokens: DevTokens | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # As messages show it: a password in the URL is not printed.
        self.shown_url = without_password(self.base_url)
        self._token = token
        self._token_from = token_from if token is not None else None
        self._dev_tokens = dev_tokens if token is None else None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DigestClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the API --

    def submit_text(self, text: str, **fields: Any) -> Json:
        return self._json("POST", "/api/summaries", json={"text": text, **fields})

    def submit_url(self, url: str, **fields: Any) -> Json:
        return self._json("POST", "/api/summaries", json={"url": url, **fields})

    def submit_file(self, path: Path, content: bytes, **fields: Any) -> Json:
        form = {name: str(value) for name, value in fields.items()}
        files = {"file": (path.name, content, "application/octet-stream")}
        return self._json("POST", "/api/summaries", data=form, files=files)

    def job(self, job_id: str) -> Json:
        return self._json("GET", f"/api/summaries/{job_id}")

    def cancel(self, job_id: str) -> Json:
        return self._json("POST", f"/api/summaries/{job_id}/cancel")

    def jobs(
        self, *, status: str | None = None, cursor: str | None = None, limit: int = 20
    ) -> Json:
        params: dict[str, str | int] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        return self._json("GET", "/api/summaries", params=params)

    def events(self, job_id: str) -> Iterator[JobEvent]:
        """The job's events until it ends. A stream that breaks first is
        opened again; what happened meanwhile arrives as the next event,
        since each one carries the whole job."""
        last_id: str | None = None
        failures = 0
        while True:
            try:
                for event_id, event in self._stream(job_id, last_id):
                    failures = 0
                    last_id = event_id or last_id
                    yield event
                    if event.kind in FINAL_EVENTS:
                        return
                job = self.job(job_id)
            except ApiError:
                raise
            except ClientError:
                # A backend restarting or a dropped connection: try again
                # for a while before giving up.
                failures += 1
                if failures >= RECONNECT_TRIES:
                    raise
                time.sleep(RECONNECT_SECONDS)
                continue
            if job["status"] in TERMINAL:
                # It ended while the stream was down: the job read says how.
                yield JobEvent(_final_event(job["status"]), job)
                return
            time.sleep(RECONNECT_SECONDS)

    # -- plumbing --

    def _json(self, method: str, path: str, **kwargs: Any) -> Json:
        answer = self._send(method, path, **kwargs)
        try:
            body = answer.json()
        except ValueError:
            raise ClientError(
                f"the backend at {self.shown_url} answered {path} with something "
                "other than JSON; is --url the Digest backend?"
            ) from None
        if not isinstance(body, dict):
            raise ClientError(f"unexpected answer from {path}: {body!r}"[:200])
        return body

    def _stream(
        self, job_id: str, last_id: str | None
    ) -> Iterator[tuple[str | None, JobEvent]]:
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        timeout = httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT)
        request = self._http.build_request(
            "GET", f"/api/summaries/{job_id}/events", headers=headers, timeout=timeout
        )
        answer = self._send_request(request, stream=True)
        try:
            yield from parse_sse(answer.iter_lines())
        except httpx.HTTPError as exc:
            raise self._network_error(exc) from None
        finally:
            answer.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._send_request(self._http.build_request(method, path, **kwargs))

    def _send_request(
        self, request: httpx.Request, *, stream: bool = False
    ) -> httpx.Response:
        # A 401 on a cached dev token means it expired or the backend's
        # secret changed: it is dropped and a fresh one tried, once.
        for attempt in range(2):
            token = self._bearer()
            if token:
                request.headers["Authorization"] = f"Bearer {token}"
            try:
                answer = self._http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                raise self._network_error(exc) from None
            if answer.status_code == 401 and self._dev_tokens and token and not attempt:
                answer.close()
                self._dev_tokens.forget(self.base_url)
                continue
            if answer.is_error:
                if stream:
                    answer.read()
                    answer.close()
                raise api_error(answer, token_from=self._token_from)
            return answer
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _bearer(self) -> str | None:
        if self._token is not None or self._dev_tokens is None:
            return self._token
        token = self._dev_tokens.cached(self.base_url)
        if token is None:
            try:
                token = self._dev_tokens.fetch(self._http, self.base_url)
            except httpx.HTTPError as exc:
                raise self._network_error(exc) from None
        return token

    def _network_error(self, exc: httpx.HTTPError) -> ClientError:
        if isinstance(exc, httpx.ConnectError):
            reason = "connection refused" if "refused" in str(exc) else str(exc)
            return ClientError(
                f"cannot reach the backend at {self.shown_url} ({reason}); "
                "is it running? (`digest dev` starts one; --url points elsewhere)"
            )
        if isinstance(exc, httpx.TimeoutException):
            return ClientError(
                f"the backend at {self.shown_url} did not answer in time"
            )
        detail = str(exc) or type(exc).__name__
        return ClientError(f"lost the connection to {self.shown_url} ({detail})")


def _final_event(status: str) -> str:
    return {"succeeded": "completed"}.get(status, status)


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str | None, JobEvent]]:
    """(id, event) for each Server-Sent Event whose data is a job."""
    kind, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event_id, JobEvent(kind, json.loads("\n".join(data)))
            kind, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
