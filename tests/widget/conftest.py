import pytest
from django.conf import settings
from django.core.cache import cache

from widget.selectors import widget_account_forget


@pytest.fixture(autouse=True)
def fresh_widget_state(clean_store):
    """Rate-limit counters and memoised account data start empty in every test.

    The counters live in the presence store, which ``clean_store`` empties; the
    memory cache of the embedded mode (API throttles) is cleared here (never the
    shared Redis database)."""
    if settings.EMBEDDED:
        cache.clear()
    widget_account_forget()
    yield
    widget_account_forget()
