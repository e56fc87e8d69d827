"""`step.ai.infer` (the AIGateway op) on the embedded executor: the
executor sends the model request, memoises the provider's answer as the
step's result, and hands a failure to the function as a StepError.

The model is tests/fake_model_server.py, a stand-in for a hosted model.
The official server retries a refused request (401) with its backoff and
ignores `retry-after`; the embedded one does neither (devserver/aigateway.py),
so the tests that pin that run on the embedded executor only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from devserver.testing import run_steps, wait_for_run
from tests.conformance.conftest import EXTERNAL_URL, App, Executor, serve_app
from tests.fake_model_server import (
    FakeModelServer,
    Reply,
    files_containing,
    stand_in_model,
)

API_KEY = "sk-conformance-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    with stand_in_model() as fake:
        yield fake


@pytest.fixture(scope="module")
def app(
    executor: Executor,
    model: FakeModelServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[App]:
    env = {"MODEL_URL": model.url, "MODEL_KEY": API_KEY}
    served = serve_app("ai_infer", executor, tmp_path_factory.mktemp("ai"), env=env)
    yield served
    served.process.stop()


def test_answer_is_the_step_result_and_the_run_goes_on(
    app: App, model: FakeModelServer, key: Callable[[], str]
) -> None:
    model.reset()
    k = key()
    run = wait_for_run(app.executor.url, app.send("ai_infer/ask", {"key": k}))

    assert run["status"] == "Completed", run
    assert run["output"] == {"text": "Two plus two. Is four."}
    assert app.marks(k, "after") == ["ran"]
    assert len(model.seen) == 1
    assert model.seen[0].authorization == f"Bearer {API_KEY}"
    assert model.seen[0].body["model"] == "stand-in-model"
    steps = {s["name"]: s for s in run_steps(app.executor.url, run["run_id"])}
    assert steps["infer"]["op"] == "AIGateway"
    assert steps["infer"]["output"]["choices"][0]["message"]["content"] == (
        "Two plus two. Is four."
    )


def test_server_error_is_retried_then_answered(
    app: App, model: FakeModelServer, key: Callable[[], str]
) -> None:
    model.reset(Reply(503))
    k = key()
    run = wait_for_run(app.executor.url, app.send("ai_infer/ask", {"key": k}))

    assert run["status"] == "Completed", run
    assert [seen.status for seen in model.seen] == [503, 200]


@pytest.mark.skipif(bool(EXTERNAL_URL), reason="embedded executor behaviour")
def test_refused_key_reaches_the_function_at_once_without_the_key(
    app: App, model: FakeModelServer, key: Callable[[], str]
) -> None:
    model.reset(Reply(401, echo_key=True))
    k = key()
    run = wait_for_run(app.executor.url, app.send("ai_infer/ask", {"key": k}))

    assert run["status"] == "Completed", run
    assert run["output"]["error"] == "AIGatewayError"
    assert "401" in run["output"]["message"]
    assert len(model.seen) == 1
    steps = {s["name"]: s for s in run_steps(app.executor.url, run["run_id"])}
    assert steps["infer"]["attempts"] == 1
    assert API_KEY not in str(steps["infer"]["error"])
    assert "[redacted]" in steps["infer"]["error"]["stack"]


@pytest.mark.skipif(bool(EXTERNAL_URL), reason="embedded executor behaviour")
def test_retry_after_from_the_provider_is_honoured(
    app: App, model: FakeModelServer, key: Callable[[], str]
) -> None:
    model.reset(Reply(429, {"retry-after": "2"}))
    k = key()
    run = wait_for_run(app.executor.url, app.send("ai_infer/ask", {"key": k}))

    assert run["status"] == "Completed", run
    assert [seen.status for seen in model.seen] == [429, 200]
    assert model.seen[1].at - model.seen[0].at >= 1.5


@pytest.mark.skipif(bool(EXTERNAL_URL), reason="reads the executor's files")
def test_key_is_in_no_executor_file(executor: Executor, model: FakeModelServer) -> None:
    assert executor.data_dir is not None
    assert files_containing(executor.data_dir, API_KEY) == []
