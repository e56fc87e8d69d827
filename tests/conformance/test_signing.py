"""Cloud mode: signed calls, checked answers, bearers, event keys, rotation.

The signing primitives are checked against the worked examples of protocol
sections 5.1 and 5.2 and against the SDK's own functions (the ground
truth). The end-to-end tests start an executor with keys (`own_executor`,
so they skip against an external executor) and serve the `signing` app in
cloud mode (`is_production=True`), where the real SDK checks every
signature the executor sends and signs what it answers.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from inngest._internal import net, server_lib, transforms

from devserver.__main__ import parse_args
from devserver.config import ExecutorConfig
from devserver.signing import (
    RequestSigner,
    SignatureError,
    SigningKeys,
    bearer_token,
    canonicalize,
    fingerprint,
    sign_request,
    strip_prefix,
)
from devserver.testing import (
    ENDED,
    ServiceProcess,
    free_port,
    send_event,
    start_app,
    wait_for_functions,
    wait_until,
)
from tests.conformance.conftest import HERE, Executor

# Protocol 5.1 / 5.2 worked examples.
EXAMPLE_KEY = (
    "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff"
)
EXAMPLE_BEARER = "e4bf4a2e7f55c7eb954b6e72f8f69628fbc409fe7da6d0f6958770987dcf0e02"
EXAMPLE_BODY = b'{"steps": {}, "event": {"name": "app/x", "data": {}}}'
EXAMPLE_CANONICAL = b'{"event":{"data":{},"name":"app/x"},"steps":{}}'
EXAMPLE_SIGNATURE = (
    "t=1700000000&s=3a36a1d66bf024bfbbe0d05cd56f62ac3d7905054521a79065818c792ab67066"
)

EVENT_KEY = "event-key-" + "c0ffee" * 4
STEPS_FN = "signing-steps"
Start = Callable[..., Executor]


def new_key() -> str:
    return "signkey-test-" + secrets.token_hex(32)


def bearer(key: str) -> dict[str, str]:
    # The SDK's own hash, not the executor's, so the two are compared.
    return {"authorization": f"Bearer {transforms.hash_signing_key(key)}"}


# --- signing primitives ------------------------------------------------------


def test_bearer_matches_protocol_example() -> None:
    assert bearer_token(EXAMPLE_KEY) == EXAMPLE_BEARER
    assert transforms.hash_signing_key(EXAMPLE_KEY) == EXAMPLE_BEARER
    assert fingerprint(EXAMPLE_KEY) == "sha256:" + EXAMPLE_BEARER[:8]


def test_request_signature_matches_protocol_example() -> None:
    assert canonicalize(EXAMPLE_BODY) == EXAMPLE_CANONICAL
    assert canonicalize(b"") == b""
    assert sign_request(EXAMPLE_BODY, EXAMPLE_KEY, t=1700000000) == EXAMPLE_SIGNATURE
    assert net.sign_request(EXAMPLE_BODY, EXAMPLE_KEY, 1700000000) == (
        EXAMPLE_SIGNATURE
    )
    # Whatever formatting is sent, the canonical form is what is signed.
    assert sign_request(EXAMPLE_CANONICAL, EXAMPLE_KEY, t=1700000000) == (
        EXAMPLE_SIGNATURE
    )


def test_sdk_accepts_our_signature_with_its_key_or_fallback() -> None:
    body = b'{"event": {"name": "a/b", "data": {"n": 1.5, "s": "\\u00e9"}}}'
    header = {"x-inngest-signature": sign_request(body, EXAMPLE_KEY)}
    for primary, fallback in ((EXAMPLE_KEY, None), (new_key(), EXAMPLE_KEY)):
        assert (
            net.validate_request_sig(
                body=body,
                headers=header,
                mode=server_lib.ServerKind.CLOUD,
                signing_key=primary,
                signing_key_fallback=fallback,
            )
            == EXAMPLE_KEY
        )


def test_answer_signatures_are_checked() -> None:
    old, new = new_key(), new_key()
    keys = SigningKeys(new, old)
    body = b'{"a": 1}'
    # Signed by the SDK with either key: accepted, and we learn which.
    assert keys.verify_answer(body, net.sign_response(body, new)) == new
    assert keys.verify_answer(body, net.sign_response(body, old)) == old
    refused = {
        "another key": net.sign_response(body, new_key()),
        "another body": net.sign_response(b'{"a": 2}', new),
        "stale": net.sign_response(body, new, 1_000_000),
        "no t": "s=" + net.sign_response(body, new).split("s=")[1],
        "no s": "t=1700000000",
        "missing": None,
    }
    accepted = [why for why, header in refused.items() if _verifies(keys, body, header)]
    assert accepted == []
    with pytest.raises(SignatureError, match="300 s"):
        keys.verify_answer(body, net.sign_response(body, new, 2_000), now=2_301)
    keys.verify_answer(body, net.sign_response(body, new, 2_000), now=2_300)


def _verifies(keys: SigningKeys, body: bytes, header: str | None) -> bool:
    try:
        keys.verify_answer(body, header)
    except SignatureError:
        return False
    return True


def test_bearer_forms() -> None:
    main, fallback = new_key(), new_key()
    keys = SigningKeys(main, fallback)
    for token in (
        transforms.hash_signing_key(main),
        transforms.hash_signing_key(fallback),
        strip_prefix(main),
        main,
        transforms.hash_signing_key(main).upper(),
    ):
        assert keys.accepts_bearer(f"Bearer {token}"), token
    for header in (
        None,
        "",
        "Bearer ",
        f"Bearer {transforms.hash_signing_key(new_key())}",
        f"Basic {transforms.hash_signing_key(main)}",
    ):
        assert not keys.accepts_bearer(header), header


def test_keys_stay_out_of_reprs_and_errors() -> None:
    key, fallback = new_key(), new_key()
    config = ExecutorConfig(
        signing_key=key, signing_key_fallback=fallback, event_keys=[EVENT_KEY]
    )
    texts = [repr(config), repr(SigningKeys(key, fallback))]
    with pytest.raises(ValueError, match="sha256") as bad:
        SigningKeys("signkey-test-not-hex-secret")
    texts.append(str(bad.value))
    for text in texts:
        for secret in (strip_prefix(key), strip_prefix(fallback), EVENT_KEY):
            assert secret not in text
        assert "not-hex-secret" not in text


def test_keys_come_from_env_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    env_key, env_fallback, flag_key = new_key(), new_key(), new_key()
    monkeypatch.setenv("INNGEST_SIGNING_KEY", env_key)
    monkeypatch.setenv("INNGEST_SIGNING_KEY_FALLBACK", env_fallback)
    monkeypatch.setenv("INNGEST_EVENT_KEY", "env-event-key")
    from_env, _ = parse_args([])
    assert (from_env.signing_key, from_env.signing_key_fallback) == (
        env_key,
        env_fallback,
    )
    assert from_env.event_keys == ["env-event-key"]
    assert from_env.server_kind == "cloud"
    flagged, _ = parse_args(["--signing-key", flag_key, "--event-key", "a"])
    assert (flagged.signing_key, flagged.event_keys) == (flag_key, ["a"])
    for name in ("INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK"):
        monkeypatch.setenv(name, "")
    assert parse_args([])[0].server_kind == "dev"


async def test_requests_are_signed_and_fall_back_to_the_second_key() -> None:
    old, new = new_key(), new_key()
    seen: list[httpx.Request] = []

    def app_holding_old_key(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        verified = net.validate_request_sig(
            body=request.content,
            headers=dict(request.headers),
            mode=server_lib.ServerKind.CLOUD,
            signing_key=old,
            signing_key_fallback=None,
        )
        return httpx.Response(401 if isinstance(verified, Exception) else 200)

    signer = RequestSigner(SigningKeys(new, old))
    payload = {"event": {"data": {"big": 2**60, "f": 1.0}}}
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(app_holding_old_key)
    ) as client:
        first = await signer.send(client, "POST", "http://app/api?fnId=a", payload, {})
        again = await signer.send(client, "POST", "http://app/api?fnId=b", payload, {})
        with pytest.raises(SignatureError, match="canonical"):
            await signer.send(client, "POST", "http://app/api", {"n": math.nan}, {})
    assert (first.status_code, again.status_code) == (200, 200)
    # New key refused, old accepted, then the old key straight away.
    assert len(seen) == 3
    # Sent as written (JCS would round the integer), signed canonically.
    assert json.loads(seen[0].content) == payload


def test_streamed_and_refused_answers() -> None:
    key = new_key()
    signer = RequestSigner(SigningKeys(key))
    # A streamed answer is signed before its body exists: over `null`.
    streamed = {"x-inngest-signature": net.sign_response(b"null", key)}
    assert signer.check_answer(201, streamed, b"   {}") is None
    refused = signer.check_answer(401, {}, b'{"message": "Unauthorized"}')
    assert refused is not None
    assert refused.error is not None
    assert refused.error["name"] == "SignatureRejectedError"


# --- end to end ---------------------------------------------------------------


def get_data(executor_url: str, path: str, key: str) -> Any:
    response = httpx.get(executor_url + path, headers=bearer(key), timeout=10)
    response.raise_for_status()
    return response.json()["data"]


def wait_run(executor_url: str, event_id: str, key: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        runs = get_data(executor_url, f"/v1/events/{event_id}/runs", key)
        return runs[0] if runs and runs[0]["status"] in ENDED else None

    return wait_until(ended, 20, f"the run of event {event_id} to end")


def serve_signing_app(
    executor: Executor,
    root: Path,
    key: str,
    *,
    fallback: str | None = None,
    port: int | None = None,
) -> ServiceProcess:
    """The `signing` app in cloud mode, holding `key` (and `fallback`)."""
    markers = root / "markers"
    markers.mkdir(parents=True, exist_ok=True)
    env = {
        "EXECUTOR_URL": executor.url,
        "MARKER_DIR": str(markers),
        "PYTHONPATH": str(HERE),
        "INNGEST_SIGNING_KEY": key,
        "INNGEST_EVENT_KEY": EVENT_KEY,
    }
    if fallback:
        env["INNGEST_SIGNING_KEY_FALLBACK"] = fallback
    return start_app("apps.signing:app", cwd=HERE, log_dir=root, port=port, env=env)


def start_synced(
    own_executor: Start,
    root: Path,
    executor_keys: list[str],
    app_key: str,
    app_fallback: str | None = None,
) -> tuple[Executor, ServiceProcess]:
    """An executor with keys that syncs the cloud app itself (`-u`)."""
    port = free_port()
    args = ["--signing-key", executor_keys[0], "--event-key", EVENT_KEY]
    if len(executor_keys) > 1:
        args += ["--signing-key-fallback", executor_keys[1]]
    args += ["-u", f"http://127.0.0.1:{port}/api/inngest"]
    executor = own_executor(*args)
    app = serve_signing_app(executor, root, app_key, fallback=app_fallback, port=port)
    wait_for_functions(executor.url, [STEPS_FN])
    return executor, app


def marks(root: Path, key: str, step: str) -> list[str]:
    path = root / "markers" / f"{key}.{step}"
    return path.read_text().splitlines() if path.exists() else []


def test_multi_step_run_completes_in_cloud_mode(
    own_executor: Start, tmp_path: Path
) -> None:
    key = new_key()
    executor, app = start_synced(own_executor, tmp_path, [key], key)
    try:
        k = secrets.token_hex(6)
        event_id = send_event(
            executor.url, "signing/steps", {"key": k}, event_key=EVENT_KEY
        )
        run = wait_run(executor.url, event_id, key)
        assert run["status"] == "Completed", run
        assert run["output"] == {"one": 1, "two": 2, "sent": 1}
        assert marks(tmp_path, k, "first") == ["ran"]
        assert marks(tmp_path, k, "second") == ["ran"]
        # The event the run sent through the SDK (event key from its env).
        events = get_data(executor.url, "/v1/events?name=signing/done", key)
        assert [e["data"] for e in events] == [{"key": k}]
        health = httpx.get(executor.url + "/health", timeout=5)
        assert health.headers["x-inngest-server-kind"] == "cloud"
    finally:
        app.stop()
    assert executor.process is not None
    log = executor.process.log()
    assert "cloud mode: signing key " + fingerprint(key) in log
    assert strip_prefix(key) not in log
    assert EVENT_KEY not in log


def test_app_with_another_key_cannot_sync(own_executor: Start, tmp_path: Path) -> None:
    executor_key, app_key = new_key(), new_key()
    executor = own_executor("--signing-key", executor_key, "--event-key", EVENT_KEY)
    app = serve_signing_app(executor, tmp_path, app_key)
    try:
        serve_url = app.extras["serve_url"]
        body = canonicalize(f'{{"url": "{serve_url}"}}'.encode())
        put = httpx.put(
            serve_url,
            content=body,
            headers={
                "content-type": "application/json",
                "x-inngest-server-kind": "cloud",
                "x-inngest-signature": sign_request(body, executor_key),
            },
            timeout=30,
        )
        # The SDK relays the register answer to whoever sent the PUT.
        assert "Authentication failed" in put.json().get("error", ""), put.text
        functions = httpx.get(executor.url + "/dev", timeout=5).json()["functions"]
        assert functions == []
    finally:
        app.stop()
    payload = {"appname": "x", "url": "http://127.0.0.1:9/x", "functions": []}
    register = executor.url + "/fn/register"
    for headers in ({}, bearer(app_key), {"authorization": strip_prefix(executor_key)}):
        refused = httpx.post(register, json=payload, headers=headers, timeout=5)
        assert refused.status_code == 401, headers
        assert refused.headers["x-inngest-server-kind"] == "cloud"
    accepted = httpx.post(
        register, json=payload, headers=bearer(executor_key), timeout=5
    )
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize(
    ("executor_keys", "app_keys"),
    [
        pytest.param(["new", "old"], ["old"], id="executor-rotated-first"),
        pytest.param(["old"], ["new", "old"], id="app-rotated-first"),
    ],
)
def test_rotation_with_fallback_key(
    own_executor: Start, tmp_path: Path, executor_keys: list[str], app_keys: list[str]
) -> None:
    named = {"old": new_key(), "new": new_key()}
    app_fallback = named[app_keys[1]] if len(app_keys) > 1 else None
    executor, app = start_synced(
        own_executor,
        tmp_path,
        [named[k] for k in executor_keys],
        named[app_keys[0]],
        app_fallback,
    )
    try:
        k = secrets.token_hex(6)
        event_id = send_event(
            executor.url, "signing/steps", {"key": k}, event_key=EVENT_KEY
        )
        run = wait_run(executor.url, event_id, named["old"])
        assert run["status"] == "Completed", run
        assert run["output"] == {"one": 1, "two": 2, "sent": 1}
    finally:
        app.stop()


def test_call_signed_with_a_key_the_app_lacks_fails_the_attempts(
    own_executor: Start, tmp_path: Path
) -> None:
    executor_key, app_key = new_key(), new_key()
    # Synced while the executor still had the app's key as fallback...
    executor, app = start_synced(
        own_executor, tmp_path, [executor_key, app_key], app_key
    )
    try:
        # ...then the rotation ended on the executor only.
        assert executor.process is not None
        executor.process.stop()
        executor.restart("--signing-key", executor_key, "--event-key", EVENT_KEY)
        k = secrets.token_hex(6)
        event_id = send_event(
            executor.url, "signing/steps", {"key": k}, event_key=EVENT_KEY
        )
        run = wait_run(executor.url, event_id, executor_key)
    finally:
        app.stop()
    assert run["status"] == "Failed"
    assert run["output"]["name"] == "SignatureRejectedError"
    assert "signing key" in run["output"]["message"]
    # retries=1 in the app: both attempts were made and refused.
    assert run["last_error"]["attempt"] == 1
    assert marks(tmp_path, k, "first") == []


def test_forged_stale_or_missing_answer_signature_fails_the_attempts(
    own_executor: Start, tmp_path: Path
) -> None:
    key = new_key()
    executor = own_executor("--signing-key", key, "--event-key", EVENT_KEY)
    forger = start_app(
        "apps.signing_forger:app",
        cwd=HERE,
        log_dir=tmp_path,
        env={"PYTHONPATH": str(HERE), "FORGER_KEY": key},
    )
    try:
        url = forger.extras["serve_url"]
        modes = ["good", "forged", "stale", "unsigned"]
        functions = [
            {
                "id": f"forger-{mode}",
                "name": mode,
                "triggers": [{"event": f"forger/{mode}"}],
                "steps": {
                    "step": {
                        "id": "step",
                        "name": "step",
                        "retries": {"attempts": 1},
                        "runtime": {
                            "type": "http",
                            "url": f"{url}?fnId=forger-{mode}&stepId=step",
                        },
                    }
                },
            }
            for mode in modes
        ]
        registered = httpx.post(
            executor.url + "/fn/register",
            json={"appname": "forger", "url": url, "functions": functions},
            headers=bearer(key),
            timeout=5,
        )
        assert registered.status_code == 200, registered.text
        event_ids = {
            mode: send_event(executor.url, f"forger/{mode}", {}, event_key=EVENT_KEY)
            for mode in modes
        }
        runs = {
            mode: wait_run(executor.url, eid, key) for mode, eid in event_ids.items()
        }
    finally:
        forger.stop()
    assert runs["good"]["status"] == "Completed"
    assert runs["good"]["output"] == {"mode": "good"}
    reasons = {"forged": "does not match", "stale": "600 s old", "unsigned": "no x-"}
    for mode, reason in reasons.items():
        run = runs[mode]
        assert run["status"] == "Failed", run
        assert run["output"]["name"] == "SignatureVerificationError", run
        assert reason in run["output"]["message"], run
        assert run["last_error"]["attempt"] == 1, run


def test_event_key_and_bearer_required_in_cloud_mode(own_executor: Start) -> None:
    key, fallback = new_key(), new_key()
    executor = own_executor(
        "--signing-key",
        key,
        "--signing-key-fallback",
        fallback,
        "--event-key",
        EVENT_KEY,
    )
    events = [{"name": "auth/x", "data": {}}]
    unknown = httpx.post(f"{executor.url}/e/not-the-key", json=events, timeout=5)
    assert unknown.status_code == 401
    assert unknown.json() == {
        "status": 401,
        "message": "",
        "error": "Event key not found",
    }
    known = httpx.post(f"{executor.url}/e/{EVENT_KEY}", json=events, timeout=5)
    assert known.status_code == 200
    assert len(known.json()["ids"]) == 1

    url = executor.url + "/v1/events"
    for headers in (
        {},
        bearer(new_key()),
        {"authorization": "Bearer x"},
        {"authorization": f"Basic {transforms.hash_signing_key(key)}"},
    ):
        refused = httpx.get(url, headers=headers, timeout=5)
        assert refused.status_code == 401, headers
        assert refused.json()["status"] == 401
    assert httpx.get(executor.url + "/v0/runs/x/batch", timeout=5).status_code == 401
    for headers in (
        bearer(key),
        bearer(fallback),
        {"authorization": f"Bearer {strip_prefix(key)}"},
    ):
        ok = httpx.get(url, headers=headers, timeout=5)
        assert ok.status_code == 200, headers
        assert [e["name"] for e in ok.json()["data"]] == ["auth/x"]
    assert httpx.get(executor.url + "/health", timeout=5).status_code == 200
    assert executor.process is not None
    log = executor.process.log()
    hashed = hashlib.sha256(b"not-the-key").hexdigest()[:8]
    assert f"unknown event key sha256:{hashed}" in log
    assert "not-the-key" not in log


def test_dev_mode_accepts_any_event_key_and_no_bearer(executor: Executor) -> None:
    sent = httpx.post(
        f"{executor.url}/e/any-key-at-all",
        json=[{"name": "auth/dev", "data": {}}],
        timeout=5,
    )
    assert sent.status_code == 200
    assert sent.headers["x-inngest-server-kind"] == "dev"
    listed = httpx.get(f"{executor.url}/v1/events?name=auth/dev", timeout=5)
    assert listed.status_code == 200
