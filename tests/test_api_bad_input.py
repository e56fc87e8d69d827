"""Bad input gets a clear 4xx, stores nothing, and never a 500."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from digest import stack
from digest.settings import DEV_JWT_SECRET
from tests.databases import DATABASE_OF, ON_BOTH_DATABASES, count_rows

pytestmark = ON_BOTH_DATABASES("lone_backend")


def _job_count(backend: stack.Service) -> int:
    return count_rows(DATABASE_OF[backend.url], "jobs")


def _auth(backend: stack.Service) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.dev_token(backend.url, 'tester')}"}


def _post(
    backend: stack.Service, *, headers: dict[str, str] | None = None, **kwargs: object
) -> httpx.Response:
    return httpx.post(  # type: ignore[arg-type]
        f"{backend.url}/api/summaries",
        timeout=30,
        headers={**_auth(backend), **(headers or {})},
        **kwargs,
    )


BAD_BODIES = [
    pytest.param({"text": ""}, 422, "text", id="empty-text"),
    pytest.param({"text": "   \n\t  "}, 422, "text", id="whitespace-text"),
    pytest.param({}, 422, "text", id="missing-text"),
    pytest.param({"text": "A b.", "url": "https://a.example/"}, 422, "url", id="both"),
    pytest.param({"url": "ftp://a.example/x"}, 422, "scheme", id="ftp-url"),
    pytest.param({"url": "file:///etc/passwd"}, 422, "scheme", id="file-url"),
    pytest.param({"url": "https://"}, 422, "url", id="url-without-host"),
    pytest.param({"url": "http://u:p@a.example/"}, 422, "password", id="url-creds"),
    pytest.param({"url": "a.example/page"}, 422, "no scheme", id="url-no-scheme"),
    pytest.param({"url": "http://a.example:99999/"}, 422, "port", id="url-port"),
    pytest.param({"url": "http://a ex.example/"}, 422, "host", id="url-space"),
    pytest.param({"url": "http://127.0.0.1%2e/"}, 422, "host", id="url-pct-host"),
    pytest.param({"text": 5}, 422, "text", id="text-not-string"),
    pytest.param({"text": "A b c d.", "colour": "red"}, 422, "colour", id="unknown"),
    pytest.param(
        {"text": "A b c d.", "max_sentences": 0}, 422, "max_sentences", id="k0"
    ),
    pytest.param(
        {"text": "A b c d.", "max_sentences": 51}, 422, "max_sentences", id="k51"
    ),
    pytest.param(
        {"text": "A b c d.", "max_sentences": "5"}, 422, "max_sentences", id="kstr"
    ),
    pytest.param(
        {"text": "A b c d.", "max_sentences": 2.5}, 422, "max_sentences", id="kfloat"
    ),
    pytest.param({"text": "A b c d.", "format": "pdf"}, 422, "format", id="format"),
    pytest.param({"text": "A b c d.", "title": 7}, 422, "title", id="title-int"),
    pytest.param(
        {"text": "A b c d.", "title": "x" * 301}, 422, "title", id="title-long"
    ),
    pytest.param({"text": "nul \u0000 here"}, 422, "text", id="nul"),
    pytest.param({"text": "\u200b\u200b"}, 422, "text", id="zero-width-only"),
    pytest.param({"text": "... !!! ---"}, 422, "text", id="punctuation-only"),
    pytest.param([{"text": "a list"}], 400, "object", id="list-body"),
    pytest.param("just a string", 400, "not a string", id="string-body"),
    pytest.param(None, 400, "not null", id="null-body"),
]


@pytest.mark.parametrize(("body", "status", "names"), BAD_BODIES)
def test_bad_body_is_refused_and_nothing_is_stored(
    lone_backend: stack.Service, body: object, status: int, names: str
) -> None:
    before = _job_count(lone_backend)
    if body is None:
        answer = _post(
            lone_backend, content=b"null", headers={"content-type": "application/json"}
        )
    else:
        answer = _post(lone_backend, json=body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"]
    assert names in error["message"]
    assert _job_count(lone_backend) == before


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b'{"text": "a"', b"[" * 100000, b"\xff\xfe{}"],
    ids=["broken", "empty", "truncated", "deep", "not-utf8"],
)
def test_invalid_json_is_a_400(lone_backend: stack.Service, raw: bytes) -> None:
    before = _job_count(lone_backend)
    answer = _post(
        lone_backend, content=raw, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_json"
    assert _job_count(lone_backend) == before


def test_lone_surrogate_is_refused(lone_backend: stack.Service) -> None:
    answer = _post(
        lone_backend,
        content=b'{"text": "broken \\ud800 text"}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert "surrogate" in answer.json()["error"]["message"]


def test_content_type_is_case_insensitive(lone_backend: stack.Service) -> None:
    answer = _post(
        lone_backend,
        content=b'{"text": "Media types ignore case in their names."}',
        headers={"content-type": "Application/JSON; charset=UTF-8"},
    )
    assert answer.status_code == 202


def test_job_ids_ignore_case(lone_backend: stack.Service) -> None:
    job_id = _post(lone_backend, json={"text": "Ids are case blind."}).json()["id"]
    answer = httpx.get(
        f"{lone_backend.url}/api/summaries/{job_id.lower()}",
        headers=_auth(lone_backend),
    )
    assert answer.json()["id"] == job_id


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", ""]
)
def test_wrong_content_type_is_a_415(
    lone_backend: stack.Service, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    answer = _post(lone_backend, content=b'{"text": "hello"}', headers=headers)
    assert answer.status_code == 415
    assert "application/json" in answer.json()["error"]["message"]


def test_text_over_the_limit_is_a_413(lone_backend: stack.Service) -> None:
    before = _job_count(lone_backend)
    answer = _post(lone_backend, json={"text": "word " * 400_001})
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["limit_bytes"] == 2_000_000
    assert _job_count(lone_backend) == before


def test_escaped_text_over_the_limit_is_a_413(lone_backend: stack.Service) -> None:
    # 2,000,001 bytes of text, sent mostly as \u escapes: the body is large
    # but allowed; the text itself is what is over the limit.
    text = "é" * 1_000_001
    answer = _post(
        lone_backend,
        content=('{"text": "' + "\\u00e9" * 1_000_001 + '"}').encode(),
        headers={"content-type": "application/json"},
    )
    assert len(text.encode()) > 2_000_000
    assert answer.status_code == 413


def test_unknown_job_is_a_404(lone_backend: stack.Service) -> None:
    for job_id in ["01JZZZZZZZZZZZZZZZZZZZZZZZ", "nope", "x" * 500]:
        answer = httpx.get(
            f"{lone_backend.url}/api/summaries/{job_id}",
            timeout=10,
            headers=_auth(lone_backend),
        )
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"


def test_unknown_route_and_method_answer_json(lone_backend: stack.Service) -> None:
    answer = httpx.get(f"{lone_backend.url}/api/nothing", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    answer = httpx.delete(f"{lone_backend.url}/api/summaries", timeout=10)
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"


def test_accepted_even_when_the_executor_is_down(lone_backend: stack.Service) -> None:
    answer = _post(lone_backend, json={"text": "One short sentence to keep here."})
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "queued"
    assert answer.headers["location"] == body["links"]["self"]
    job = httpx.get(
        lone_backend.url + body["links"]["self"],
        timeout=10,
        headers=_auth(lone_backend),
    ).json()
    assert job["status"] == "queued"
    assert job["progress"] == {"done": 0, "total": 4, "step": None}


# Ids no job can have: PostgreSQL refuses a NUL outright, so these must be
# answered before the database is asked.
NOT_JOB_IDS = [
    "%00",
    "a%00b",
    "01JZZZZZZZZZZZZZZZZZZZZZ%00Z",
    "01IZZZZZZZZZZZZZZZZZZZZZZZ",
]


@pytest.mark.parametrize("job_id", NOT_JOB_IDS)
@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("POST", "/cancel"), ("GET", "/events")]
)
def test_id_that_cannot_be_a_job_is_a_404(
    lone_backend: stack.Service, job_id: str, method: str, suffix: str
) -> None:
    answer = httpx.request(
        method,
        f"{lone_backend.url}/api/summaries/{job_id}{suffix}",
        timeout=10,
        headers=_auth(lone_backend),
    )
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["code"] == "not_found"


def test_cursor_with_a_nul_in_its_job_id_is_a_422(lone_backend: stack.Service) -> None:
    raw = json.dumps(["2025-01-01T00:00:00+00:00", "a\u0000b"]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    answer = httpx.get(
        f"{lone_backend.url}/api/summaries",
        params={"cursor": cursor},
        timeout=10,
        headers=_auth(lone_backend),
    )
    assert answer.status_code == 422, answer.text
    assert "cursor" in answer.json()["error"]["message"]


BAD_SUBJECTS = ["a\u0000b", "\u0000", "tab\tuser", "del\u007f", "lone \ud800"]


@pytest.mark.parametrize("sub", BAD_SUBJECTS)
def test_token_whose_sub_has_control_characters_is_a_401(
    lone_backend: stack.Service, sub: str
) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"sub": sub, "iat": now, "exp": now + 600}, DEV_JWT_SECRET, algorithm="HS256"
    )
    headers = {"Authorization": f"Bearer {token}"}
    before = _job_count(lone_backend)
    for method in ["POST", "GET"]:
        answer = httpx.request(
            method,
            f"{lone_backend.url}/api/summaries",
            json={"text": "A user id with a NUL in it."} if method == "POST" else None,
            timeout=10,
            headers=headers,
        )
        assert answer.status_code == 401, answer.text
        assert "control characters" in answer.json()["error"]["message"]
    assert _job_count(lone_backend) == before


@pytest.mark.parametrize("sub", BAD_SUBJECTS[:4])
def test_dev_token_route_refuses_control_characters(
    lone_backend: stack.Service, sub: str
) -> None:
    answer = httpx.post(
        f"{lone_backend.url}/api/dev/token", json={"sub": sub}, timeout=10
    )
    assert answer.status_code == 422, answer.text
    assert "control characters" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code", "names"),
    [
        pytest.param(b"", "application/json", 400, "invalid_json", "empty", id="empty"),
        pytest.param(
            b"  \n", "application/json", 400, "invalid_json", "empty", id="blank"
        ),
        pytest.param(
            b"[]", "application/json", 400, "invalid_json", "an array", id="list"
        ),
        pytest.param(
            b"null", "application/json", 400, "invalid_json", "null", id="null"
        ),
        pytest.param(
            b'"dana"', "application/json", 400, "invalid_json", "a string", id="string"
        ),
        pytest.param(
            b'{"sub": "dana"}',
            "text/plain",
            415,
            "unsupported_media_type",
            "'text/plain'",
            id="text-plain",
        ),
        pytest.param(
            b"sub=dana",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            "application/json",
            id="form",
        ),
        pytest.param(
            b"", None, 415, "unsupported_media_type", "no Content-Type", id="bare-post"
        ),
    ],
)
def test_dev_token_body_that_is_not_a_json_object_is_refused_as_elsewhere(
    lone_backend: stack.Service,
    content: bytes,
    content_type: str | None,
    status: int,
    code: str,
    names: str,
) -> None:
    # As on POST /api/summaries: not JSON (or empty: 'sub' has no default)
    # is a 400, a body not sent as JSON a 415; only a bad field is a 422.
    headers = {"content-type": content_type} if content_type else {}
    answer = httpx.post(
        f"{lone_backend.url}/api/dev/token",
        content=content,
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert names in error["message"]
    # Each says what to send instead.
    assert '{"sub": "local-user"}' in error["message"] or (
        "Content-Type: application/json" in error["message"]
    )


def test_dev_token_body_is_still_documented(lone_backend: stack.Service) -> None:
    document = httpx.get(f"{lone_backend.url}/openapi.json", timeout=10).json()
    operation = document["paths"]["/api/dev/token"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["sub"]
    assert schema["additionalProperties"] is False
    assert {"400", "415", "422"} <= set(operation["responses"])


def _raw_post(
    backend: stack.Service,
    *,
    content_length: str,
    body: bytes,
    content_type: str = "application/json",
    close_after_body: bool = False,
) -> bytes:
    """POST /api/summaries over a plain socket, with whatever Content-Length
    is asked for: every HTTP client corrects a false one."""
    address = urlsplit(backend.url)
    head = (
        "POST /api/summaries HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: {_auth(backend)['Authorization']}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {content_length}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        sock.sendall(head + body)
        if close_after_body:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _status_and_json(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    found: dict[str, object] = json.loads(body)
    return status, found


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "multipart/form-data; boundary=x"],
    ids=["json", "upload"],
)
def test_content_length_over_the_limit_is_named_as_the_header(
    lone_backend: stack.Service, content_type: str
) -> None:
    # The header alone is over the cap: the body is not read, so the answer
    # cannot know whether the header is false, and says both ways out.
    before = _job_count(lone_backend)
    status, found = _status_and_json(
        _raw_post(
            lone_backend,
            content_length="99999999",
            body=b'{"text": "Only a few bytes."}',
            content_type=content_type,
        )
    )
    assert status == 413
    error = found["error"]
    assert isinstance(error, dict)
    assert error["code"] == "payload_too_large"
    assert error["message"].startswith(
        "the Content-Length header declares 99999999 bytes"
    )
    assert "with a Content-Length that matches the body" in error["message"]
    assert error["limit_bytes"] == 2_000_000
    assert _job_count(lone_backend) == before


def test_content_length_far_over_the_limit_names_one_limit(
    lone_backend: stack.Service,
) -> None:
    # One sentence: what the header declares, the document limit, and what
    # to do; not the body cap that JSON escapes add up to besides.
    status, found = _status_and_json(
        _raw_post(lone_backend, content_length=str(10**12), body=b"{}")
    )
    assert status == 413
    error = found["error"]
    assert isinstance(error, dict)
    assert error["message"] == (
        "the Content-Length header declares 1000000000000 bytes, more than the "
        "2000000 bytes a document may hold, so the body was not read; send a "
        "shorter document or split it, with a Content-Length that matches the body"
    )


def test_multipart_body_cut_short_is_named_as_such(
    lone_backend: stack.Service,
) -> None:
    whole = (
        b"--x\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
        b"A document that is cut short in the middle of its"
    )
    before = _job_count(lone_backend)
    status, found = _status_and_json(
        _raw_post(
            lone_backend,
            content_length=str(len(whole)),
            body=whole,
            content_type="multipart/form-data; boundary=x",
        )
    )
    assert status == 400, found
    error = found["error"]
    assert isinstance(error, dict)
    message = str(error["message"])
    assert message.startswith("the multipart body is malformed or cut short"), message
    assert "'--x--'" in message
    assert "'file' is required" not in message
    assert _job_count(lone_backend) == before


def test_json_nested_too_deeply_says_so(lone_backend: stack.Service) -> None:
    answer = _post(
        lone_backend,
        content=b'{"text": ' + b"[" * 30000 + b"]" * 30000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert "too deeply nested" in message
    assert "recursion" not in message


def test_body_with_both_sources_names_the_rule_alone(
    lone_backend: stack.Service,
) -> None:
    answer = _post(lone_backend, json={"url": "https://a.example/", "text": "A b."})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["message"] == (
        "send exactly one of 'text' (the document) or 'url' (where to fetch it)"
    )


def test_wrong_method_names_the_allowed_ones(lone_backend: stack.Service) -> None:
    answer = httpx.get(f"{lone_backend.url}/api/dev/token", timeout=10)
    assert answer.status_code == 405
    error = answer.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == (
        "/api/dev/token does not answer GET; it answers POST: "
        'POST a JSON object such as {"sub": "local-user"}'
    )
    answer = httpx.delete(f"{lone_backend.url}/api/summaries", timeout=10)
    assert answer.status_code == 405
    message = answer.json()["error"]["message"]
    assert message == "/api/summaries does not answer DELETE; it answers GET or POST"
    assert answer.headers["allow"] == "GET, POST"


def test_body_shorter_than_its_content_length_is_no_server_error(
    lone_backend: stack.Service,
) -> None:
    # The client sends fewer bytes than it declared, then closes its side:
    # the server can only see the body end early. The answer cannot reach
    # a closed connection; the log says what was wrong, with no traceback.
    log_path = lone_backend.log_path
    seen = log_path.stat().st_size
    before = _job_count(lone_backend)
    body = b'{"text": "A body shorter than its header says."}'
    _raw_post(
        lone_backend,
        content_length=str(len(body) + 50),
        body=body,
        close_after_body=True,
    )
    expected = (
        f"the body ended after {len(body)} bytes, short of the {len(body) + 50} "
        "bytes its Content-Length header declares"
    )

    def logged() -> str:
        with log_path.open("rb") as log:
            log.seek(seen)
            return log.read().decode(errors="replace")

    deadline = time.monotonic() + 10
    while expected not in logged() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = logged()
    assert expected in text, text
    assert "Traceback" not in text
    assert "unexpected error" not in text
    assert _job_count(lone_backend) == before


def test_content_length_that_is_not_a_number_is_a_400(
    lone_backend: stack.Service,
) -> None:
    # uvicorn refuses the request before the app sees it (with its own
    # plain-text 400, not the API's JSON): never a 413 about the text.
    for declared in ["abc", "1e3", "-5", "36, 36"]:
        answer = _raw_post(lone_backend, content_length=declared, body=b"{}")
        assert answer.startswith(b"HTTP/1.1 400 "), (declared, answer[:200])


@pytest.fixture(scope="module")
def impatient_backend(
    lone_backend: stack.Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack.Service]:
    """A second backend on the lone backend's database (so on each database
    in turn) that waits one second for the next chunk of a body."""
    home = tmp_path_factory.mktemp("impatient")
    database_url = DATABASE_OF[lone_backend.url]
    backend = stack.start_backend(
        executor_url=f"http://{stack.LOOPBACK}:{stack.free_port()}",
        database_url=database_url,
        log_path=home / "backend.log",
        env={"BODY_IDLE_SECONDS": "1"},
    )
    DATABASE_OF[backend.url] = database_url
    yield backend
    backend.stop()


UPLOAD_START = (
    b"--x\r\n"
    b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n"
    b"Only the start of a docu"
)


@pytest.mark.parametrize(
    ("path", "content_type", "start"),
    [
        ("/api/summaries", "application/json", b'{"text": "'),
        ("/api/summaries", "multipart/form-data; boundary=x", UPLOAD_START),
        # The SDK's endpoint reads its body itself, and is open to anyone.
        ("/api/inngest?fnId=x&stepId=step", "application/json", b'{"ev'),
    ],
    ids=["json", "upload", "serve-endpoint"],
)
def test_body_that_stops_arriving_is_a_408(
    impatient_backend: stack.Service, path: str, content_type: str, start: bytes
) -> None:
    # The client declares more than it sends, then waits with the connection
    # open: the server answers within BODY_IDLE_SECONDS and closes it,
    # rather than holding it for as long as the client likes.
    before = _job_count(impatient_backend)
    declared = len(start) + 90
    address = urlsplit(impatient_backend.url)
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: {_auth(impatient_backend)['Authorization']}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.settimeout(10)
        sock.sendall(head + start)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pytest.fail(f"no answer, and the connection still open: {answer!r}")
    assert time.monotonic() - started < 8
    status, found = _status_and_json(answer)
    assert status == 408, answer
    assert b"connection: close" in answer.lower()
    error = found["error"]
    assert isinstance(error, dict)
    assert error["code"] == "body_timeout"
    assert error["message"].startswith(
        f"the body stopped arriving after {len(start)} of the {declared} bytes "
        "its Content-Length declares"
    ), error
    assert "send the whole body" in error["message"]
    assert _job_count(impatient_backend) == before
    log = impatient_backend.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    assert "unexpected error" not in log
