import pytest
from django.conf import settings
from django.core.cache import cache

from widget import asgi
from widget.selectors import widget_account_forget


@pytest.fixture(autouse=True)
def fresh_widget_state(clean_store):
    """Rate-limit counters, memoised account data and reused answers start empty in every test.

    In production mode the counters live under the test's Redis prefix, which
    ``clean_store`` already empties; the memory cache of the embedded mode is
    cleared here (never the shared Redis database)."""
    if settings.EMBEDDED:
        cache.clear()
    widget_account_forget()
    asgi._recent.clear()
    yield
    widget_account_forget()
    asgi._recent.clear()
