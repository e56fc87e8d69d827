"""The web page in a real headless Chromium, against a real stack.

Playwright drives Debian's Chromium (/usr/bin/chromium; `.ci/run` installs
it). Each test gets a fresh browser context, so a fresh user with its own
dev token; a screenshot of each test's last state is kept in
tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    FilePayload,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.conftest import CORPUS, Stack, normalised
from tests.corpus_server import serve_corpus, stack_that_fetches_from

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root, and nothing that reaches for the network: this machine
# has none, and each refused connection would only slow the browser down.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
# Big enough that its job runs for many seconds (about 180 steps), so that
# a reload or a cancel lands while it is still running.
BIG_COPIES = 30


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Generous waits: on a loaded two-core machine even a small job can take
    # several seconds, and a wait that times out says nothing more than that.
    expect.set_options(timeout=60_000)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(apt-get install -y chromium; .ci/run does it)"
        )
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
    )
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def corpus_url() -> Iterator[str]:
    with serve_corpus() as url:
        yield url


@pytest.fixture(scope="module")
def web_stack(
    tmp_path_factory: pytest.TempPathFactory, corpus_url: str
) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("web-stack")
    with stack_that_fetches_from(corpus_url, home) as running:
        yield running


@pytest.fixture
def page(
    browser: Browser, web_stack: Stack, request: pytest.FixtureRequest
) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, base_url=web_stack.backend.url)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    ARTIFACTS.mkdir(exist_ok=True)
    opened.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()
    assert not errors, f"the page raised: {errors}"


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def paste(page: Page, text: str) -> None:
    # Setting the value is what a paste does; typing 1.5 MB key by key
    # would only measure the test driver.
    page.locator("#text").evaluate("(el, text) => { el.value = text; }", text)


def submit_text(page: Page, text: str, title: str) -> str:
    paste(page, text)
    page.fill("#title", title)
    return click_submit(page)


def click_submit(page: Page) -> str:
    """Submit the form; the new job's id, once the page shows it in its URL."""
    before = page.url
    page.click("#submit")
    page.wait_for_function("before => location.href !== before", arg=before)
    expect(page).to_have_url(re.compile(r"#job=[0-9A-Z]+$"))
    job_id = page.url.rsplit("=", 1)[1]
    # From here on, what the panel shows is this job's state.
    expect(page.locator("#job-id")).to_have_text(job_id)
    return job_id


def done_count(page: Page) -> int:
    return int(page.get_attribute("#job-bar", "aria-valuenow") or 0)


def wait_for_progress(page: Page, *, above: int = 0, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = done_count(page)
        if done > above:
            return done
        time.sleep(0.05)
    raise AssertionError(f"progress stayed at {done_count(page)}")


def api_job(stack: Stack, job_id: str, user_token: str) -> dict[str, object]:
    answer = httpx.get(
        f"{stack.backend.url}/api/summaries/{job_id}",
        headers={"Authorization": f"Bearer {user_token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    job: dict[str, object] = answer.json()
    return job


def page_token(page: Page) -> str:
    token = page.evaluate("localStorage.getItem('digest.token')")
    assert isinstance(token, str), "the page holds no dev token"
    return token


def test_summarise_a_pasted_document(page: Page) -> None:
    document = (CORPUS / "pep-0008.rst").read_text()
    page.goto("/")
    title = 'PEP 8 <img src=x onerror="document.title=1">'
    job_id = submit_text(page, document, title)

    seen: set[int] = set()
    status = page.locator("#job-status")
    deadline = time.monotonic() + 90
    while status.text_content() != "succeeded" and time.monotonic() < deadline:
        seen.add(done_count(page))
        # Empty until the job's first read comes back.
        assert status.text_content() in ("", "queued", "running", "succeeded")
        time.sleep(0.05)
    expect(status).to_have_text("succeeded")
    total = int(page.get_attribute("#job-bar", "aria-valuemax") or 0)
    # The bar moved through states between nothing and everything.
    assert any(0 < done < total for done in seen), (seen, total)
    expect(page.locator("#job-step")).to_contain_text("succeeded")
    expect(page.locator("#job-id")).to_have_text(job_id)

    sentences = page.locator("#summary li").all_text_contents()
    assert 1 <= len(sentences) <= 5
    source = normalised(document)
    for sentence in sentences:
        assert normalised(sentence) in source

    # The title is shown as the text it is, never as markup.
    expect(page.locator("#job-title")).to_have_text(title)
    assert page.locator("#job-title img").count() == 0
    assert page.title() == "Digest"
    shoot(page, "summary-desktop")

    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways at phone width"
    expect(page.locator("#summary li").first).to_be_visible()
    shoot(page, "summary-phone")


def test_reload_mid_job_picks_it_up(page: Page) -> None:
    big = (CORPUS / "pep-0008.rst").read_bytes() * BIG_COPIES
    page.goto("/")
    page.check('input[name="source"][value="file"]')
    upload = FilePayload(name="pep-0008-big.rst", mimeType="text/plain", buffer=big)
    page.set_input_files("#file", files=[upload])
    job_id = click_submit(page)
    before = wait_for_progress(page)
    expect(page.locator("#job-status")).to_have_text("running")

    page.reload()
    expect(page).to_have_url(re.compile(f"#job={job_id}$"))
    expect(page.locator("#job-id")).to_have_text(job_id)
    expect(page.locator("#job-title")).to_have_text("pep-0008-big.rst")
    # The stream is followed again: the count goes on from where it was.
    after = wait_for_progress(page, above=before)
    assert after > before
    shoot(page, "reloaded-mid-job")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#summary li").first).to_be_visible()


def test_cancel_a_running_job(page: Page, web_stack: Stack) -> None:
    big = (CORPUS / "pep-0008.rst").read_text() * BIG_COPIES
    page.goto("/")
    job_id = submit_text(page, big, "to be cancelled")
    wait_for_progress(page)
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("cancelled")
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#job-step")).to_contain_text("cancelled")
    assert api_job(web_stack, job_id, page_token(page))["status"] == "cancelled"


def test_summarise_a_url(page: Page, corpus_url: str) -> None:
    page.goto("/")
    page.check('input[name="source"][value="url"]')
    expect(page.locator("#text")).to_be_hidden()
    page.fill("#url", f"{corpus_url}/pep-0257.rst")
    page.fill("#title", "Docstring conventions")
    click_submit(page)
    expect(page.locator("#job-status")).to_have_text("succeeded")
    source = normalised((CORPUS / "pep-0257.rst").read_text())
    for sentence in page.locator("#summary li").all_text_contents():
        assert normalised(sentence) in source


def test_past_jobs_are_listed_and_open(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#history-note")).to_have_text("No summaries yet.")
    first = submit_text(page, (CORPUS / "pep-0020.rst").read_text(), "The Zen")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    second = submit_text(page, (CORPUS / "pep-0257.rst").read_text(), "Docstrings")
    expect(page.locator("#job-status")).to_have_text("succeeded")

    # Newest first, and the list survives a visit to the bare page.
    page.goto("/")
    links = page.locator(".job-link")
    expect(links).to_have_count(2)
    assert [links.nth(i).get_attribute("data-id") for i in (0, 1)] == [second, first]
    expect(page.locator("#job")).to_be_hidden()

    page.click(f'.job-link[data-id="{first}"]')
    expect(page).to_have_url(re.compile(f"#job={first}$"))
    expect(page.locator("#job-title")).to_have_text("The Zen")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#summary li").first).to_be_visible()
    expect(page.locator(f'.job-link[data-id="{first}"]')).to_have_attribute(
        "aria-current", "true"
    )
    shoot(page, "history")


def test_a_stale_token_is_replaced(page: Page) -> None:
    page.goto("/")
    first = submit_text(page, (CORPUS / "pep-0020.rst").read_text(), "Before")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    # As if the token had expired or the server's key had changed.
    page.evaluate("localStorage.setItem('digest.token', 'stale')")
    page.goto("/")
    # Same user, new token: the earlier job is still this browser's.
    expect(page.locator(f'.job-link[data-id="{first}"]')).to_be_visible()
    assert page_token(page) != "stale"


def test_a_refused_document_shows_the_reason(page: Page) -> None:
    page.goto("/")
    page.click("#submit")
    expect(page.locator("#form-error")).to_have_text(
        "Paste the text to summarise first."
    )
    paste(page, "... !!! ...")
    page.click("#submit")
    # The API's own message, as it wrote it.
    expect(page.locator("#form-error")).to_contain_text("has no words")
    expect(page).not_to_have_url(re.compile("#job="))
