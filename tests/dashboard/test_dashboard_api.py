"""The dashboard's JSON endpoints and rendered pages, over real HTTP.

The executor and the SDK app (dashboard_app.py) run as processes on
loopback, as in production; requests go through httpx like any client's.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import markupsafe
import pytest
from dashboard_stack import Stack

from devserver.testing import start_executor, wait_until

HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)">'
FORGED_LINE = "2026-01-01 00:00:00,000 INFO digest.devserver: forged line"


def post(stack: Stack, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{stack.url}{path}", timeout=30, **kwargs)


def press(stack: Stack, path: str) -> httpx.Response:
    """A button of a form with no fields, as a browser posts it."""
    form = "application/x-www-form-urlencoded"
    return post(stack, path, content=b"", headers={"content-type": form})


def page(stack: Stack, path: str) -> httpx.Response:
    answer = httpx.get(f"{stack.url}{path}", timeout=30)
    assert answer.headers["content-type"].startswith("text/html")
    return answer


def test_runs_list_filters_by_function_status_and_time(stack: Stack) -> None:
    done = stack.run_of(stack.send("dash/paced", {"pause": 0}))
    failed = stack.run_of(stack.send("dash/broken", {}))
    stack.run_until(done, "Completed")
    stack.run_until(failed, "Failed")

    everything = [r["id"] for r in stack.api("/runs")["runs"]]
    assert everything.index(failed) < everything.index(done), "newest first"
    paced = stack.api("/runs?function=dashboard-tests-paced")["runs"]
    assert done in [r["id"] for r in paced]
    assert {r["function"] for r in paced} == {"dashboard-tests-paced"}
    failures = stack.api("/runs?status=Failed")["runs"]
    assert failed in [r["id"] for r in failures]
    assert {r["status"] for r in failures} == {"Failed"}
    assert done in [r["id"] for r in stack.api("/runs?within=1h")["runs"]]
    time.sleep(0.05)
    assert stack.api("/runs?within=10ms")["runs"] == []
    assert len(stack.api("/runs?limit=1")["runs"]) == 1

    row = next(r for r in paced if r["id"] == done)
    assert row["url"] == f"/runs/{done}"
    assert row["event_name"] == "dash/paced"
    assert row["ended"] is True
    assert row["cancellable"] is False


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=Sleeping", "status must be one of"),
        ("within=soon", "within must be a duration"),
        ("limit=0", "limit must be between"),
        ("limit=many", "limit must be a whole number"),
        # One value each, as the filter's controls offer: a repeat is refused
        # rather than read as its last value.
        ("status=Failed&status=Completed", "status is given 2 times"),
        ("status=Failed&status=", "status is given 2 times"),
        ("function=a&function=b", "function is given 2 times"),
        ("within=1h&within=7d", "within is given 2 times"),
        ("limit=1&limit=2", "limit is given 2 times"),
    ],
)
def test_bad_run_filters_are_refused_clearly(
    stack: Stack, query: str, message: str
) -> None:
    answer = httpx.get(f"{stack.url}/dashboard/api/runs?{query}", timeout=30)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_parameter"
    assert message in answer.json()["error"]["message"]
    shown = page(stack, f"/?{query}")
    assert shown.status_code == 400
    assert message in shown.text


@pytest.mark.parametrize("query", ["name=a&name=b", "q=a&q=b", "limit=1&limit=5"])
def test_repeated_event_filters_are_refused(stack: Stack, query: str) -> None:
    answer = httpx.get(f"{stack.url}/dashboard/api/events?{query}", timeout=30)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_parameter"
    name = query.split("=", 1)[0]
    assert f"{name} is given 2 times" in answer.json()["error"]["message"]
    shown = page(stack, f"/events?{query}")
    assert shown.status_code == 400
    assert f"{name} is given 2 times" in shown.text


@pytest.mark.parametrize("run_id", ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-a-run"])
def test_unknown_runs_and_events_are_404(stack: Stack, run_id: str) -> None:
    for path in (f"/runs/{run_id}", f"/events/{run_id}"):
        answer = httpx.get(f"{stack.url}/dashboard/api{path}", timeout=30)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"].endswith("_not_found")
        assert page(stack, path).status_code == 404


@pytest.mark.parametrize(
    ("path", "back"),
    [
        ("/runs/..%2f..", 'href="/">Back to runs'),
        ("/runs/x/y", 'href="/">Back to runs'),
        ("/events/a/b", 'href="/events">Back to events'),
        ("/apps/nobody", 'href="/apps">Back to apps'),
        ("/nowhere", 'href="/">Back to runs'),
    ],
)
def test_unknown_pages_are_an_html_404_in_the_dashboards_style(
    stack: Stack, path: str, back: str
) -> None:
    answer = page(stack, path)
    assert answer.status_code == 404
    assert "<title>Page not found · Digest executor</title>" in answer.text
    assert "/dashboard/static/dashboard.css" in answer.text
    shown = path.replace("%2f", "/")
    assert f"There is no page at {shown}." in answer.text
    assert back in answer.text
    assert "content-security-policy" in answer.headers


def test_unknown_json_endpoints_are_a_json_404(stack: Stack) -> None:
    for path in ("/dashboard/api/nowhere", "/dashboard/api/runs/a/b", "/dashboard/api"):
        answer = httpx.get(f"{stack.url}{path}", timeout=30)
        assert answer.status_code == 404
        error = answer.json()["error"]
        assert error["code"] == "not_found"
        assert f"no endpoint at {path} (GET)" in error["message"]
    posted = post(stack, "/dashboard/api/events/x/send", json={})
    assert posted.status_code == 404
    assert posted.json()["error"]["code"] == "not_found"
    rest = httpx.get(f"{stack.url}/v1/nowhere", timeout=30)
    assert rest.status_code == 404
    assert rest.json() == {"error": "no endpoint at /v1/nowhere", "status": 404}
    # A known path with the wrong method is still a 405, and a stray
    # trailing slash still a redirect.
    wrong = httpx.get(f"{stack.url}/dashboard/api/runs/x/cancel", timeout=30)
    assert wrong.status_code == 405
    assert httpx.get(f"{stack.url}/v1/apps", timeout=30).status_code == 200
    assert httpx.post(f"{stack.url}/v1/apps", timeout=30).status_code == 405
    odd = httpx.get(f"{stack.url}/x%00%ED%A0%80", timeout=30)
    assert odd.status_code == 404
    assert "There is no page at /x\\x00" in odd.text
    slash = httpx.get(f"{stack.url}/events/", timeout=30)
    assert slash.status_code in (301, 307, 308)
    assert slash.headers["location"].endswith("/events")


def test_error_pages_are_titled_by_what_happened(stack: Stack) -> None:
    missing = page(stack, "/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert "<title>Run not found · Digest executor</title>" in missing.text
    assert "<h1>Run not found</h1>" in missing.text
    assert "Not done" not in missing.text
    event = page(stack, "/events/not-an-event")
    assert "<title>Event not found · Digest executor</title>" in event.text
    bad_filter = page(stack, "/?status=Sleeping")
    assert "<title>Filter refused · Digest executor</title>" in bad_filter.text
    refused = post(stack, "/dashboard/api/events", data={"name": "", "data": "{}"})
    assert refused.status_code == 400
    assert "<title>Event refused · Digest executor</title>" in refused.text
    gone = press(stack, "/dashboard/api/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel")
    assert gone.status_code == 404
    assert "<title>Run not found · Digest executor</title>" in gone.text
    nobody = press(stack, "/dashboard/api/apps/nobody/sync")
    assert "<title>App not found · Digest executor</title>" in nobody.text


def test_events_search_by_name_and_payload_text(stack: Stack) -> None:
    tag = secrets.token_hex(4)
    plain = stack.send("dash/unheard", {"note": f"café {tag} 100%"})
    other = stack.send("dash/unheard.other", {"note": "nothing here"})

    by_text = [e["id"] for e in stack.api(f"/events?q={tag}")["events"]]
    assert by_text == [plain]
    accented = stack.api(f"/events?q=café {tag}")["events"]
    assert [e["id"] for e in accented] == [plain]
    # LIKE wildcards in the search are taken literally.
    assert stack.api("/events?q=_%25_%25_")["events"] == []
    assert [e["id"] for e in stack.api(f"/events?q={tag} 100%25")["events"]] == [plain]

    by_name = [e["id"] for e in stack.api("/events?name=unheard.oth")["events"]]
    assert by_name == [other]
    found = stack.api(f"/events?q={tag}")["events"][0]
    assert found["name"] == "dash/unheard"
    assert found["run_count"] == "started no run"
    assert tag in found["preview"]


def test_event_page_lists_its_payload_and_runs(stack: Stack) -> None:
    event_id = stack.send("dash/paced", {"pause": 0, "order": 7})
    run_id = stack.run_of(event_id)
    shown = stack.api(f"/events/{event_id}")
    assert shown["event"]["name"] == "dash/paced"
    assert '"order": 7' in shown["event"]["payload"]
    assert [r["id"] for r in shown["runs"]] == [run_id]
    assert shown["event"]["run_count"] == "started 1 run"
    listed = next(e for e in stack.api("/events")["events"] if e["id"] == event_id)
    assert [r["id"] for r in listed["runs"]] == [run_id]


def test_a_run_of_500_steps(stack: Stack) -> None:
    started = time.monotonic()
    run_id = stack.run_of(stack.send("dash/many", {"count": 500}))
    shown = stack.run_until(run_id, "Completed", "Failed", timeout=600)
    took = time.monotonic() - started
    assert shown["run"]["status"] == "Completed", shown["run"]["error"]
    assert shown["run"]["output"] == str(sum(range(500)))
    steps = shown["steps"]
    assert [s["name"] for s in steps] == [f"n{i}" for i in range(500)]
    assert {s["status"] for s in steps} == {"Completed"}
    assert shown["run"]["step_count"] == "500 steps"
    for step in steps:
        assert 0 <= step["bar_left"] <= 100
        assert 0 < step["bar_width"] <= 100 - step["bar_left"] + 0.01

    fetched = time.monotonic()
    answer = httpx.get(f"{stack.url}/dashboard/api/runs/{run_id}", timeout=30)
    json_ms = (time.monotonic() - fetched) * 1000
    fetched = time.monotonic()
    rendered = page(stack, f"/runs/{run_id}")
    page_ms = (time.monotonic() - fetched) * 1000
    assert rendered.status_code == 200
    assert rendered.text.count('class="step"') == 500 + 1  # and the template
    print(
        f"500-step run: ran in {took:.1f} s; JSON {len(answer.content)} bytes "
        f"in {json_ms:.0f} ms; page {len(rendered.content)} bytes in {page_ms:.0f} ms"
    )


def test_waits_show_what_they_wait_for(stack: Stack) -> None:
    key = secrets.token_hex(4)
    run_id = stack.run_of(stack.send("dash/patient", {"key": key}))
    waiting = wait_until(
        lambda: next(
            (s for s in stack.api(f"/runs/{run_id}")["steps"] if s["kind"] == "wait"),
            None,
        ),
        60,
        "the wait step",
    )
    assert waiting["status"] == "Waiting"
    assert waiting["detail"] == (
        "waits for event dash/approved if async.data.key == event.data.key, "
        "at most until"
    )
    assert waiting["detail_time"] > waiting["started_at"]

    stack.send("dash/approved", {"key": key})
    done = stack.run_until(run_id, "Completed")
    assert done["run"]["output"] == '"approved"'
    assert done["steps"][0]["detail"] == "matched event dash/approved"


def test_html_in_payloads_is_escaped_in_every_page(stack: Stack) -> None:
    event_id = stack.send("dash/echo", {"text": HOSTILE, "fail": True})
    run_id = stack.run_of(event_id)
    stack.run_until(run_id, "Failed")

    pages = [
        f"/runs/{run_id}",
        f"/events/{event_id}",
        "/events",
        "/events?q=onerror",
        "/?function=dashboard-tests-echo",
    ]
    for path in pages:
        shown = page(stack, path)
        assert shown.status_code == 200
        assert "<script>alert" not in shown.text, path
        assert "<img src=x" not in shown.text, path
        assert "script-src 'self'" in shown.headers["content-security-policy"]
    run_page = page(stack, f"/runs/{run_id}").text
    assert str(markupsafe.escape(f"RuntimeError: {HOSTILE}")) in run_page
    assert "&lt;script&gt;" in page(stack, "/events?q=onerror").text
    # The JSON is data for textContent: it carries the text unchanged.
    assert HOSTILE in stack.api(f"/runs/{run_id}")["run"]["error"]


def test_send_event_endpoint(stack: Stack) -> None:
    sent = post(
        stack,
        "/dashboard/api/events",
        json={"name": "dash/paced", "data": {"pause": 0}},
    )
    assert sent.status_code == 201
    event_id = sent.json()["id"]
    assert sent.json()["url"] == f"/events/{event_id}"
    stack.run_until(stack.run_of(event_id), "Completed")
    as_text = post(
        stack,
        "/dashboard/api/events",
        json={"name": "dash/unheard", "data": '{"a": 1}'},
    )
    assert as_text.status_code == 201
    assert '"a": 1' in stack.api(as_text.json()["url"])["event"]["payload"]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"name": "dash/x", "data": "{not json"}, "invalid_json", "not valid JSON"),
        ({"name": "dash/x", "data": "[1, 2]"}, "invalid_event", "JSON object"),
        ({"name": "inngest/x", "data": {}}, "invalid_event", "reserved"),
        ({"data": {}}, "invalid_event", "name is required"),
        ({"name": "", "data": {}}, "invalid_event", "name is required"),
        # JSON, but not an object: said so, with what was sent instead.
        (
            {"name": "dash/x", "data": [1, 2]},
            "invalid_event",
            'data must be a JSON object such as {"key": "value"}, not an array',
        ),
        ({"name": "dash/x", "data": 5}, "invalid_event", "JSON object such as"),
        ({"name": "dash/x", "data": True}, "invalid_event", "not a boolean"),
        ({"name": "dash/x", "data": "[1, 2]"}, "invalid_event", "not an array"),
        ({"name": "dash/x", "data": "5"}, "invalid_event", "not a number"),
        ({"name": "dash/x", "data": '"text"'}, "invalid_event", "not a string"),
        # A name that is there but is not a string is not a missing name.
        (
            {"name": 5, "data": {}},
            "invalid_event",
            'name must be a string such as "app/user.created", not a number',
        ),
        ({"name": ["dash/x"], "data": {}}, "invalid_event", "not an array"),
        ({"name": {"a": 1}, "data": {}}, "invalid_event", "name must be a string"),
        ({"name": False, "data": {}}, "invalid_event", "not a boolean"),
        # A name that would write a forged line into the executor's log.
        (
            {"name": f"dash/x\n{FORGED_LINE}", "data": {}},
            "invalid_event",
            "the name holds a control character (\\n); send a name of "
            "printable characters only",
        ),
        ({"name": "dash/\x1b[2Jx", "data": {}}, "invalid_event", "(\\x1b)"),
        ({"name": "dash/x\r", "data": {}}, "invalid_event", "(\\r)"),
    ],
)
def test_bad_events_are_refused_and_store_nothing(
    stack: Stack, body: dict[str, Any], code: str, message: str
) -> None:
    before = stack.api("/events?limit=1")["events"]
    answer = post(stack, "/dashboard/api/events", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code
    assert message in answer.json()["error"]["message"]
    assert stack.api("/events?limit=1")["events"] == before


def test_a_refused_form_shows_the_reason_and_keeps_the_draft(stack: Stack) -> None:
    answer = post(
        stack,
        "/dashboard/api/events",
        data={"name": "dash/typo", "data": '{"broken": <b>'},
    )
    assert answer.status_code == 400
    assert "the data is not valid JSON" in answer.text
    assert "dash/typo" in answer.text
    assert "{&#34;broken&#34;: &lt;b&gt;" in answer.text


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("name=dash%2Fpaced&name=dash%2Funheard&data=%7B%7D", "name is given 2 times"),
        ("name=dash%2Fpaced&data=%7B%7D&data=%7B%22a%22%3A1%7D", "data is given 2"),
    ],
)
def test_a_repeated_form_field_is_refused(stack: Stack, body: str, said: str) -> None:
    # One value each, as the form offers: not silently read as the last.
    before = stack.api("/events?limit=1")["events"]
    form = "application/x-www-form-urlencoded"
    answer = post(
        stack, "/dashboard/api/events", content=body, headers={"content-type": form}
    )
    assert answer.status_code == 400
    assert said in answer.text
    assert "give it once" in answer.text
    assert stack.api("/events?limit=1")["events"] == before


@pytest.mark.parametrize("kind", ["text/plain", None, "application/json"])
def test_a_body_that_is_not_json_says_what_to_send(
    stack: Stack, kind: str | None
) -> None:
    headers = {"content-type": kind} if kind else {}
    answer = post(
        stack, "/dashboard/api/events", content=b"name=dash/x", headers=headers
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_json"
    message = error["message"]
    assert "not JSON: not JSON" not in message
    assert "send a JSON object as application/json, such as " in message
    assert '{"name": "app/user.created", "data": {"key": "value"}}' in message
    assert "application/x-www-form-urlencoded" in message
    if kind == "text/plain":
        assert message.startswith("the body, sent as 'text/plain', is not JSON (")
    if kind == "application/json":
        assert message.startswith("the body is not valid JSON (")


def test_a_form_name_with_a_line_break_is_refused(stack: Stack) -> None:
    before = stack.api("/events?limit=1")["events"]
    answer = post(
        stack,
        "/dashboard/api/events",
        data={"name": f"dash/paced\n{FORGED_LINE}", "data": "{}"},
    )
    assert answer.status_code == 400
    assert "the name holds a control character" in answer.text
    assert stack.api("/events?limit=1")["events"] == before
    assert FORGED_LINE not in stack.executor.log()


def test_a_form_whose_data_is_not_an_object_says_so(stack: Stack) -> None:
    answer = post(
        stack, "/dashboard/api/events", data={"name": "dash/typo", "data": "[1, 2]"}
    )
    assert answer.status_code == 400
    assert "the data must be a JSON object such as" in answer.text
    assert "not an array" in answer.text
    assert "not valid JSON" not in answer.text


def test_form_actions_redirect_to_their_page(stack: Stack) -> None:
    sent = post(
        stack, "/dashboard/api/events", data={"name": "dash/paced", "data": "{}"}
    )
    assert sent.status_code == 303
    event_id = sent.headers["location"].rsplit("/", 1)[1]
    run_id = stack.run_of(event_id)
    stack.run_until(run_id, "Completed")
    rerun = press(stack, f"/dashboard/api/runs/{run_id}/rerun")
    assert rerun.status_code == 303
    assert rerun.headers["location"].startswith("/runs/")
    refused = press(stack, f"/dashboard/api/runs/{run_id}/cancel")
    assert refused.status_code == 409
    assert "already ended as Completed" in refused.text


def test_cancel_and_rerun_endpoints(stack: Stack) -> None:
    key = secrets.token_hex(4)
    event_id = stack.send("dash/sleepy", {"key": key})
    run_id = stack.run_of(event_id)
    wait_until(
        lambda: any(
            s["status"] == "Sleeping" for s in stack.api(f"/runs/{run_id}")["steps"]
        ),
        60,
        "the run to sleep",
    )
    cancelled = post(stack, f"/dashboard/api/runs/{run_id}/cancel")
    assert cancelled.status_code == 200
    assert stack.api(f"/runs/{run_id}")["run"]["status"] == "Cancelled"
    again = post(stack, f"/dashboard/api/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "run_ended"

    rerun = post(stack, f"/dashboard/api/runs/{run_id}/rerun")
    assert rerun.status_code == 201
    new_id = rerun.json()["id"]
    assert rerun.json()["rerun_of"] == run_id
    assert stack.run_until(new_id, "Running")["event"]["id"] == event_id
    # The rerun is a run like any other: its cancel listener works.
    stack.send("dash/sleepy.stop", {"key": key})
    stack.run_until(new_id, "Cancelled")

    missing = post(stack, "/dashboard/api/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/rerun")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "run_not_found"


def test_actions_from_another_site_are_refused(stack: Stack) -> None:
    before = stack.api("/events?limit=1")["events"]
    answer = post(
        stack,
        "/dashboard/api/events",
        content='{"name": "dash/paced", "data": {}}',
        headers={"origin": "http://evil.example", "content-type": "text/plain"},
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "cross_site"
    assert stack.api("/events?limit=1")["events"] == before
    own = post(
        stack,
        "/dashboard/api/events",
        json={"name": "dash/unheard", "data": {}},
        headers={"origin": stack.url},
    )
    assert own.status_code == 201


def test_apps_show_functions_and_resync(stack: Stack) -> None:
    (app,) = stack.api("/apps")["apps"]
    assert app["name"] == "dashboard-tests"
    assert app["url"] == stack.app.extras["serve_url"]
    assert app["sdk_version"]
    functions = {f["slug"]: f for f in app["functions"]}
    paced = functions["dashboard-tests-paced"]
    assert paced["triggers"] == ["event dash/paced"]
    settings = dict(paced["settings"])
    assert settings["concurrency"] == '[{"limit": 4}]'
    assert '"limit": 100' in settings["throttle"]
    assert (
        "dash/sleepy.stop"
        in dict(functions["dashboard-tests-sleepy"]["settings"])["cancel"]
    )

    synced = post(stack, "/dashboard/api/apps/dashboard-tests/sync")
    assert synced.status_code == 200, synced.text
    assert synced.json()["synced"] is True
    (after,) = stack.api("/apps")["apps"]
    assert after["last_synced_at"] > app["last_synced_at"]
    missing = post(stack, "/dashboard/api/apps/nobody/sync")
    assert missing.status_code == 404
    assert "dashboard-tests-paced" in page(stack, "/apps").text


def test_static_files_are_served_by_the_executor(stack: Stack) -> None:
    for name, kind in [("dashboard.js", "javascript"), ("dashboard.css", "text/css")]:
        answer = httpx.get(f"{stack.url}/dashboard/static/{name}", timeout=30)
        assert answer.status_code == 200
        assert kind in answer.headers["content-type"]
    shown = page(stack, "/").text
    assert 'src="/dashboard/static/dashboard.js"' in shown
    assert "http://" not in shown.split("<main")[0], "no asset from the network"


def test_no_dashboard_in_cloud_mode(tmp_path: Path) -> None:
    executor = start_executor(
        tmp_path,
        extra_args=["--signing-key", "signkey-test-" + secrets.token_hex(32)],
    )
    try:
        for path in ("/", "/dashboard/api/runs", "/dashboard/static/dashboard.js"):
            assert httpx.get(executor.url + path, timeout=30).status_code == 404
    finally:
        executor.stop()
