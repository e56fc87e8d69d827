"""The executor's dashboard in a real headless Chromium, against real runs.

Playwright drives Debian's Chromium as tests/test_web.py does. The SDK app
(dashboard_app.py) runs under uvicorn and the embedded executor calls it
over HTTP; nothing is mocked. Screenshots of the run page, at desktop and
phone width, are kept in tests/artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from dashboard_stack import Stack
from playwright.sync_api import Browser, Dialog, Locator, Page, ViewportSize, expect

from tests import test_web
from tests.test_web import ARTIFACTS, DESKTOP, PHONE, shoot

# The same Chromium as the web page's tests, launched the same way.
playwright = test_web.playwright
browser = test_web.browser

HOSTILE = '<script>alert("script ran")</script><img src=x onerror="alert(\'img ran\')">'


@pytest.fixture
def dialogs() -> list[str]:
    """Every alert, confirm or prompt a page opened (none should)."""
    return []


@pytest.fixture
def page(browser: Browser, stack: Stack, dialogs: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, base_url=stack.url)
    context.set_default_timeout(60_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", refuse)
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"
    assert not dialogs, f"a page opened dialogs: {dialogs}"


def step_row(page: Page, name: str) -> Locator:
    return page.locator("ol.steps > li.step").filter(
        has=page.locator(".step-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def run_id_of(page: Page) -> str:
    return page.url.rstrip("/").rsplit("/", 1)[1]


def test_an_event_sent_from_the_form_starts_a_run_whose_steps_fill_in(
    page: Page, stack: Stack
) -> None:
    runs_list = page.context.new_page()
    runs_list.goto("/?function=dashboard-tests-paced")
    expect(runs_list.locator("#live")).to_have_text("live")
    before = runs_list.locator("[data-list=runs] > li").count()

    page.goto("/events")
    form = page.locator("form.send")
    form.locator("input[name=name]").fill("dash/paced")
    # Four seconds per step: the run page is open long before the run ends.
    form.locator("textarea[name=data]").fill('{"pause": 4}')
    form.get_by_role("button", name="Send event").click()
    expect(page).to_have_url(re.compile(r"/events/[0-9A-Z]{26}$"))
    expect(page.locator("h1")).to_have_text("dash/paced")

    # The run shows up on the run list that was already open, by polling.
    expect(runs_list.locator("[data-list=runs] > li")).to_have_count(before + 1)
    runs_list.close()

    run_link = page.locator("[data-list=runs] > li a.fn")
    expect(run_link).to_have_text("dashboard-tests-paced")
    run_link.click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9A-Z]{26}$"))
    assert step_row(page, "store").count() == 0, "the run ended before the page opened"

    # Steps appear and complete while the page stays open.
    expect(step_row(page, "fetch").locator(".badge")).to_have_text("Completed")
    expect(step_row(page, "parse")).to_be_visible()
    expect(step_row(page, "store").locator(".badge")).to_have_text("Completed")
    expect(page.locator("h1 .badge")).to_have_text("Completed")
    expect(page.locator("#live")).to_have_text("finished")
    expect(step_row(page, "store").locator("[data-field=output]")).to_have_text(
        '"store done"'
    )
    expect(page.locator("pre[data-field=output]").first).to_contain_text("fetch done")
    expect(step_row(page, "store").locator("[data-field=attempt]")).to_have_text(
        "attempt 1"
    )


def test_a_failed_run_shows_its_error(page: Page, stack: Stack) -> None:
    stack.send("dash/broken", {"what": "invoice 42"})
    page.goto("/")
    page.select_option("select[name=function]", "dashboard-tests-broken")
    expect(page).to_have_url(re.compile(r"function=dashboard-tests-broken"))
    page.select_option("select[name=status]", "Failed")
    expect(page).to_have_url(re.compile(r"status=Failed"))
    first = page.locator("[data-list=runs] > li").first
    expect(first.locator(".badge")).to_have_text("Failed")
    first.locator("a.fn").click()

    expect(page.locator("h1 .badge")).to_have_text("Failed")
    problem = page.locator("section.problem")
    expect(problem.locator("h2")).to_have_text("Error")
    expect(problem.locator("pre")).to_contain_text(
        "ValueError: cannot parse invoice 42"
    )
    parse = step_row(page, "parse")
    expect(parse.locator(".badge")).to_have_text("Failed")
    expect(parse.locator("pre.error-text")).to_contain_text("cannot parse invoice 42")
    # Nothing left to cancel on an ended run.
    expect(page.get_by_role("button", name="Cancel run")).to_be_hidden()


def test_a_sleeping_run_can_be_cancelled(page: Page, stack: Stack) -> None:
    run_id = stack.run_of(stack.send("dash/sleepy", {"key": "cancel-me"}))
    page.goto(f"/runs/{run_id}")
    nap = step_row(page, "nap")
    expect(nap.locator(".badge")).to_have_text("Sleeping")
    expect(nap.locator(".detail")).to_contain_text("sleeps until")

    page.get_by_role("button", name="Cancel run").click()
    expect(page).to_have_url(re.compile(f"/runs/{run_id}$"))
    expect(page.locator("h1 .badge")).to_have_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel run")).to_be_hidden()
    assert stack.api(f"/runs/{run_id}")["run"]["status"] == "Cancelled"


def test_a_finished_run_can_be_rerun_with_the_same_event(
    page: Page, stack: Stack
) -> None:
    event_id = stack.send("dash/paced", {"pause": 0})
    first = stack.run_of(event_id)
    stack.run_until(first, "Completed")
    page.goto(f"/runs/{first}")
    expect(page.locator("h1 .badge")).to_have_text("Completed")

    page.get_by_role("button", name="Rerun").click()
    expect(page).not_to_have_url(re.compile(f"/runs/{first}$"))
    expect(page).to_have_url(re.compile(r"/runs/[0-9A-Z]{26}$"))
    second = run_id_of(page)
    expect(page.locator("h1 .badge")).to_have_text("Completed")
    expect(step_row(page, "store").locator(".badge")).to_have_text("Completed")

    again = stack.api(f"/runs/{second}")
    assert again["event"]["id"] == event_id
    runs = [r["id"] for r in stack.api(f"/events/{event_id}")["runs"]]
    assert runs == [first, second]


def test_html_in_payloads_is_shown_as_text_and_never_runs(
    page: Page, stack: Stack, dialogs: list[str]
) -> None:
    event_id = stack.send("dash/echo", {"text": HOSTILE, "fail": True})
    run_id = stack.run_of(event_id)
    stack.run_until(run_id, "Failed")

    page.goto(f"/runs/{run_id}")
    expect(page.locator("h1 .badge")).to_have_text("Failed")
    expect(step_row(page, "repeat").locator("[data-field=output]")).to_contain_text(
        "<script>alert"
    )
    expect(page.locator("section.problem pre")).to_contain_text(HOSTILE)
    page.goto(f"/events/{event_id}")
    expect(page.locator("pre").first).to_contain_text("onerror")
    page.goto("/events?q=onerror")
    # The list is filled by the script too: wait for one poll to be applied.
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("[data-list=events] > li code.preview").first).to_contain_text(
        "<img src=x"
    )
    assert page.locator("main img, main script").count() == 0
    assert dialogs == []


@pytest.mark.parametrize(
    ("width", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)]
)
def test_run_page_screenshots(
    browser: Browser, stack: Stack, width: str, viewport: ViewportSize
) -> None:
    """A failed run, a sleeping one and the lists, saved as images to look at."""
    failed = stack.run_of(
        stack.send("dash/echo", {"text": "The parser gave up on line 3.", "fail": True})
    )
    sleeping = stack.run_of(stack.send("dash/sleepy", {"key": f"shot-{width}"}))
    stack.run_until(failed, "Failed")
    stack.run_until(sleeping, "Running")
    context = browser.new_context(viewport=viewport, base_url=stack.url)
    opened = context.new_page()
    try:
        for path, name, ready in [
            (f"/runs/{failed}", "run", "finished"),
            (f"/runs/{sleeping}", "sleeping-run", "live"),
            ("/", "runs", "live"),
            ("/events", "events", "live"),
            ("/apps", "apps", None),
        ]:
            opened.goto(path)
            if ready is not None:
                expect(opened.locator("#live")).to_have_text(ready)
            overflow = opened.evaluate(
                "(el => el.scrollWidth - el.clientWidth)(document.documentElement)"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow} px"
            shoot(opened, f"dashboard-{name}-{width}")
            print(f"screenshot: {ARTIFACTS / f'dashboard-{name}-{width}.png'}")
    finally:
        context.close()
