"""Pure parts of the executor: wire shapes, event ids, durations, URLs."""

from __future__ import annotations

import base64
import logging

import pytest

from devserver import events as ev
from devserver import wire
from devserver.clock import parse_duration_ms
from devserver.executor import step_url
from devserver.logtext import escaped, get_logger
from devserver.retry import backoff_ms, max_attempts


def test_seeded_ids_are_deterministic_and_distinct() -> None:
    seed = "1796311217970," + base64.b64encode(bytes(range(10))).decode()
    first = ev.internal_ids(3, seed)
    assert first == ev.internal_ids(3, seed)
    assert len(set(first)) == 3
    assert all(ev.is_ulid(i) for i in first)
    assert len(set(ev.internal_ids(2, "garbage"))) == 2


@pytest.mark.parametrize(
    ("text", "ms"),
    [("5s", 5_000), ("1m", 60_000), ("2h45m", 9_900_000), ("1w", 604_800_000)],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


def test_step_url_replaces_step_id() -> None:
    url = "http://h:1/api/inngest?fnId=app-fn&stepId=step"
    assert step_url(url, "abc") == "http://h:1/api/inngest?fnId=app-fn&stepId=abc"


def test_call_body_has_the_strict_types_the_sdk_wants() -> None:
    event = {"name": "a/b", "data": {}, "id": "x", "ts": 12.0}
    body = wire.build_call_body(
        run_id="r",
        event=event,
        events=[event],
        memo={"s1": {"data": 1}, "target": {"data": 2}},
        stack=["s1"],
        step_id="target",
        attempt=0,
        max_attempts=5,
        disable_immediate_execution=False,
    )
    assert isinstance(body["event"]["ts"], int)
    assert body["use_api"] is False
    assert body["ctx"]["stack"] == {"stack": ["s1"], "current": 1}
    # A targeted call never carries its own memo.
    assert "target" not in body["steps"]


def test_answers_are_classified() -> None:
    sdk = {"x-inngest-sdk": "inngest-py:v0.5.19"}
    assert wire.interpret(200, sdk, b"[1]").output == [1]
    assert wire.interpret(200, {}, b"[1]").outcome is wire.Outcome.ERROR
    html = wire.interpret(502, {}, b"<html>bad gateway</html>")
    assert html.error is not None
    assert html.error["name"] == "InvalidResponseError"
    fatal = wire.interpret(
        500, {**sdk, "x-inngest-no-retry": "true"}, b'{"name": "E", "message": "m"}'
    )
    assert fatal.no_retry
    streamed = wire.interpret(
        201,
        {},
        b'  {"status": 206, "headers": {}, '
        b'"body": "[{\\"id\\": \\"a\\", \\"op\\": \\"StepPlanned\\"}]"}',
    )
    assert [op.id for op in streamed.ops] == ["a"]


def test_retry_policy() -> None:
    assert max_attempts({}, 4) == 5
    assert max_attempts({"steps": {"step": {"retries": {"attempts": 0}}}}, 4) == 1
    assert backoff_ms(3, 0.2) == 200
    assert 120_000 <= backoff_ms(3, None) <= 150_000


def test_log_records_escape_control_characters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert escaped("a\nb\r\tc\x1b[2J\x7f\u2028d") == "a\\nb\\r\\tc\\x1b[2J\\x7f\\u2028d"
    assert escaped("app/user.created") == "app/user.created"
    logger = get_logger("digest.devserver.test-logtext")
    with caplog.at_level(logging.INFO, logger="digest.devserver.test-logtext"):
        logger.info("event %s started", "x\nforged")
    assert caplog.records[0].getMessage() == "event x\\nforged started"
