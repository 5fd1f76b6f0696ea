"""Fixtures for browser tests: a real Daphne on the test database and headless
Debian Chromium driven by Playwright (never a downloaded browser)."""

import shutil

import pytest

from tests.live import ARTIFACTS, Daphne

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            # The server child process cannot see the test process's memory store;
            # a module whose tests share only the database with it runs in both modes.
            if not getattr(item.module, "EMBEDDED_TOO", False):
                item.add_marker(pytest.mark.production_only)


@pytest.fixture(autouse=True)
def _live_server_helper():
    """Stands in for pytest-django's helper of the same name, which expects its
    own ``live_server`` object; ours is a Daphne process."""
    yield


@pytest.fixture(autouse=True)
def orm_beside_playwright(monkeypatch):
    # Playwright's sync API keeps an event loop running in this thread; the
    # test's own ORM calls are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is needed for the browser tests: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def playwright_browser(chromium_path):
    # Module scope, not session: Playwright's sync API keeps an event loop
    # running in this thread while it is open, which would break the async
    # tests that run after the browser tests in the same worker.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_server(transactional_db):
    """A Daphne process serving the test database; stopped after the test."""
    server = Daphne(name="browser")
    yield server
    server.stop()


@pytest.fixture
def new_context(playwright_browser):
    """Make browser contexts (one per device); all closed after the test."""
    contexts = []

    def make(*, viewport: dict = DESKTOP, **kwargs):
        context = playwright_browser.new_context(viewport=viewport, **kwargs)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """Save a PNG under artifacts/screenshots/ and return its path."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page, name: str):
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
